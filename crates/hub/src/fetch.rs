//! The hub client: settings, requests with the token where it belongs, the model API and
//! `resolve` metadata.

use crate::select::RepoFile;
use crate::{PullError, Reference};
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION};
use reqwest::StatusCode;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

/// Relative redirects of the hub's own followed for one request (renamed repositories).
const MAX_HUB_REDIRECTS: usize = 5;

/// Where the hub is and who asks it.
#[derive(Clone)]
pub struct HubSettings {
    /// The hub's address (`HF_ENDPOINT`, a mirror or proxy), without a trailing `/`.
    pub endpoint: String,
    /// `HF_TOKEN`; sent to the endpoint only, never logged.
    pub token: Option<String>,
    /// The hub cache folder ([`crate::cache::cache_dir`]).
    pub cache: PathBuf,
}

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("token", &token)
            .field("cache", &self.cache)
            .finish()
    }
}

/// What a pull is doing, for a progress bar or Ollama's NDJSON lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The files are known.
    Resolved {
        /// The commit the revision points at.
        commit: String,
        /// Each file and its size.
        files: Vec<(String, u64)>,
        /// Why the quantisation is not the one asked for.
        note: Option<String>,
    },
    /// A file is in the cache already: no bytes fetched.
    Cached {
        /// The file.
        file: String,
        /// Its SHA-256.
        sha256: String,
        /// Its size.
        size: u64,
    },
    /// Bytes of a file so far (at most a few times a second).
    Downloading {
        /// The file.
        file: String,
        /// Its SHA-256.
        sha256: String,
        /// Bytes on disk.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A file is being checked.
    Verifying {
        /// The file.
        file: String,
    },
}

/// A pulled model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Its id in the models folder.
    pub id: String,
    /// Its files there (the parts of a split model in order).
    pub paths: Vec<PathBuf>,
    /// The quantisation.
    pub quant: String,
    /// Bytes fetched from the hub (0 when all came from the cache).
    pub fetched: u64,
    /// Why the quantisation is not the one asked for.
    pub note: Option<String>,
}

/// A client of one hub.
#[derive(Debug, Clone)]
pub struct Hub {
    pub(crate) settings: HubSettings,
    http: reqwest::Client,
}

static TLS: Once = Once::new();

/// Makes ring the process's TLS crypto provider (once): every `reqwest` client of the process
/// shares this crate's TLS set-up, so one built elsewhere needs it too.
pub fn install_crypto() {
    TLS.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A file's place on the hub, from `HEAD resolve/...`.
pub(crate) struct Resolved {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) url: String,
    pub(crate) same_host: bool,
}

impl Hub {
    /// A client of the hub `settings` name.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: HubSettings) -> Result<Self, PullError> {
        install_crypto();
        let endpoint = settings.endpoint.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION"), "; hf_hub-compatible"))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| PullError::Network { endpoint: endpoint.clone(), source })?;
        Ok(Self { settings: HubSettings { endpoint, ..settings }, http })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.settings.token {
            Some(t) => req.header(AUTHORIZATION, format!("Bearer {t}")),
            None => req,
        }
    }

    /// Sends `method url` to the hub with the token, following the hub's own relative
    /// redirects (a renamed repository) as `huggingface_hub` does; a redirect elsewhere, or one
    /// that names the file's hash (`X-Linked-Etag`, the bytes' place), is the answer.
    async fn ask(&self, method: reqwest::Method, url: &str) -> Result<reqwest::Response, PullError> {
        let mut url = url.to_string();
        for _ in 0..MAX_HUB_REDIRECTS {
            let req = self.http.request(method.clone(), &url).header("Accept-Encoding", "identity");
            let resp = self.auth(req).send().await.map_err(|e| self.network(e))?;
            let h = resp.headers();
            match header(h, LOCATION.as_str()) {
                Some(to)
                    if resp.status().is_redirection() && to.starts_with('/') && !h.contains_key("x-linked-etag") =>
                {
                    url = format!("{}{to}", origin(&self.settings.endpoint));
                }
                _ => return Ok(resp),
            }
        }
        Err(PullError::Malformed(url))
    }

    pub(crate) fn network(&self, source: reqwest::Error) -> PullError {
        PullError::Network { endpoint: self.settings.endpoint.clone(), source }
    }

    fn refused(&self, status: StatusCode, r: &Reference, url: &str) -> PullError {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PullError::Unauthorized {
                repo: r.repo.clone(),
                status: status.as_u16(),
                token: self.settings.token.is_some(),
            },
            StatusCode::NOT_FOUND => PullError::NoRepo { repo: r.repo.clone(), revision: r.revision.clone() },
            s => PullError::Status { status: s.as_u16(), url: url.to_string() },
        }
    }

    /// The commit `r`'s revision points at, and the repository's files (the model API).
    ///
    /// # Errors
    /// What the hub refuses, or a malformed answer.
    pub async fn files(&self, r: &Reference) -> Result<(String, Vec<RepoFile>), PullError> {
        let url = format!("{}/api/models/{}/revision/{}?blobs=true", self.settings.endpoint, r.repo, r.revision);
        let resp = self.ask(reqwest::Method::GET, &url).await?;
        if !resp.status().is_success() {
            return Err(self.refused(resp.status(), r, &url));
        }
        let v: serde_json::Value = resp.json().await.map_err(|_| PullError::Malformed(url.clone()))?;
        // Both become paths in the cache: a commit is hex, a file a relative path of plain names.
        let commit = v["sha"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| PullError::Malformed(url.clone()))?;
        let siblings = v["siblings"].as_array().ok_or_else(|| PullError::Malformed(url.clone()))?;
        let files = siblings
            .iter()
            .filter_map(|s| {
                let name = s["rfilename"].as_str().filter(|n| crate::reference::safe_path(n))?;
                Some(RepoFile {
                    name: name.to_string(),
                    size: s["lfs"]["size"].as_u64().or_else(|| s["size"].as_u64()),
                    sha256: s["lfs"]["sha256"].as_str().map(str::to_string),
                })
            })
            .collect();
        Ok((commit.to_string(), files))
    }

    /// `HEAD resolve/COMMIT/FILE` without following its redirect: the file's hash, size, and
    /// where its bytes are.
    pub(crate) async fn resolve(&self, r: &Reference, commit: &str, f: &RepoFile) -> Result<Resolved, PullError> {
        let url = format!("{}/{}/resolve/{commit}/{}", self.settings.endpoint, r.repo, f.name);
        let resp = self.ask(reqwest::Method::HEAD, &url).await?;
        let status = resp.status();
        if !(status.is_success() || status.is_redirection()) {
            return Err(match status {
                StatusCode::NOT_FOUND => PullError::NoSuchFile { repo: r.repo.clone(), file: f.name.clone() },
                s => self.refused(s, r, &url),
            });
        }
        let h = resp.headers();
        let etag = header(h, "x-linked-etag")
            .or_else(|| header(h, "etag"))
            .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string());
        let sha256 = f
            .sha256
            .clone()
            .or(etag)
            .filter(|s| is_sha256(s))
            .ok_or_else(|| PullError::Unverifiable(f.name.clone()))?;
        let size = header(h, "x-linked-size").and_then(|s| s.parse().ok()).or(f.size).unwrap_or(0);
        let (url, same_host) = match header(h, LOCATION.as_str()) {
            Some(loc) if status.is_redirection() => self.absolute(&loc),
            _ => (resp.url().to_string(), true),
        };
        Ok(Resolved { sha256, size, url, same_host })
    }

    /// A redirect target as an absolute URL, and whether it is on the hub's own host (only
    /// then does it get the token).
    fn absolute(&self, location: &str) -> (String, bool) {
        if location.starts_with('/') {
            return (format!("{}{location}", origin(&self.settings.endpoint)), true);
        }
        let same = origin(location) == origin(&self.settings.endpoint);
        (location.to_string(), same)
    }

    pub(crate) fn get(&self, at: &Resolved) -> reqwest::RequestBuilder {
        let req = self.http.get(&at.url).header("Accept-Encoding", "identity");
        if at.same_host {
            self.auth(req)
        } else {
            req
        }
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or(url, |i| &url[..after + i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin("https://huggingface.co/api/x"), "https://huggingface.co");
        assert_eq!(origin("http://127.0.0.1:9/"), "http://127.0.0.1:9");
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let s = HubSettings { endpoint: "e".into(), token: Some("hf_secret".into()), cache: PathBuf::new() };
        assert!(!format!("{s:?}").contains("hf_secret"));
    }
}
