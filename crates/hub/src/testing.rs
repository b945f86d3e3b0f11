//! A hub on loopback for tests (feature `testing`): it speaks the parts of the hub's protocol a
//! pull uses (the model API with `blobs=true`; `HEAD`/`GET resolve/REVISION/FILE` with
//! `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size` and a redirect to another path that serves
//! the bytes with `Range`), and records every request. It can cut a download half-way once,
//! send bytes at a set pace, advertise a wrong hash, and refuse a private repository without
//! the right token.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The commit every revision of the loopback hub points at.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// The token the private repository takes.
pub const TOKEN: &str = "hf_loopback_token";

/// A file the hub serves.
#[derive(Clone)]
pub struct HubFile {
    /// Its bytes.
    pub bytes: Bytes,
    /// The SHA-256 the hub advertises (the real one unless a test lies).
    pub sha256: String,
}

impl HubFile {
    /// A file with its true hash.
    pub fn new(bytes: Bytes) -> Self {
        let sha256 = hex(&Sha256::digest(&bytes));
        Self { bytes, sha256 }
    }
}

/// One request the hub saw: method, path and `Range` header.
pub type Seen = (String, String, Option<String>);

/// The hub's repositories and what happened.
#[derive(Default)]
pub struct LoopbackHub {
    /// `OWNER/REPO` -> path -> file. A repository whose owner is `private` needs [`TOKEN`].
    pub repos: BTreeMap<String, BTreeMap<String, HubFile>>,
    /// Cut the next download of a blob after half its bytes.
    pub cut_next: AtomicBool,
    /// Send blob bytes at about this many per second (0: as fast as the connection goes).
    pub pace: AtomicUsize,
    /// Renamed repositories, old `OWNER/REPO` -> new: the hub answers the old name's model API
    /// and `resolve` with a relative 307 to the new one.
    pub renamed: BTreeMap<String, String>,
    /// Every request, in order.
    pub seen: Mutex<Vec<Seen>>,
}

impl LoopbackHub {
    /// Requests for blob bytes so far.
    pub fn downloads(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|s| s.0 == "GET" && s.1.starts_with("/cdn/"))
            .cloned()
            .collect()
    }

    fn file(&self, sha: &str) -> Option<HubFile> {
        self.repos
            .values()
            .flat_map(BTreeMap::values)
            .find(|f| hex(&Sha256::digest(&f.bytes)) == sha || f.sha256 == sha)
            .cloned()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serves `hub` on a free loopback port; returns its address (`http://127.0.0.1:PORT`).
///
/// # Panics
/// When no port can be bound.
pub async fn serve(hub: Arc<LoopbackHub>) -> String {
    let app = Router::new()
        .route("/api/models/{owner}/{repo}/revision/{rev}", get(model_api))
        .route("/{owner}/{repo}/resolve/{rev}/{*file}", get(resolve).head(resolve))
        .route("/cdn/{sha}", get(blob))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), record))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn record(
    State(hub): State<Arc<LoopbackHub>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let seen = (req.method().to_string(), req.uri().path().to_string(), range);
    hub.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(seen);
    next.run(req).await
}

fn allowed(repo: &str, headers: &HeaderMap) -> Result<(), StatusCode> {
    if !repo.starts_with("private/") {
        return Ok(());
    }
    match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        Some(_) => Err(StatusCode::FORBIDDEN),
        None => Err(StatusCode::UNAUTHORIZED),
    }
}

/// The hub's answer for a renamed repository: a relative redirect to the same path under
/// its new name.
fn moved(hub: &LoopbackHub, name: &str, uri: &axum::http::Uri) -> Option<Response> {
    let to = hub.renamed.get(name)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str()).replacen(name, to, 1);
    Some((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, path)]).into_response())
}

async fn model_api(
    State(hub): State<Arc<LoopbackHub>>,
    Path((owner, repo, _rev)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let name = format!("{owner}/{repo}");
    if let Some(r) = moved(&hub, &name, &uri) {
        return r;
    }
    if let Err(s) = allowed(&name, &headers) {
        return (s, r#"{"error":"Invalid credentials in Authorization header"}"#).into_response();
    }
    let Some(files) = hub.repos.get(&name) else {
        return (StatusCode::NOT_FOUND, r#"{"error":"Repository not found"}"#).into_response();
    };
    let siblings: Vec<_> = files
        .iter()
        .map(|(n, f)| {
            let size = f.bytes.len();
            serde_json::json!({"rfilename": n, "size": size, "lfs": {"sha256": f.sha256, "size": size, "pointerSize": 134}})
        })
        .collect();
    axum::Json(serde_json::json!({"id": name, "sha": COMMIT, "siblings": siblings})).into_response()
}

async fn resolve(
    State(hub): State<Arc<LoopbackHub>>,
    Path((owner, repo, _rev, file)): Path<(String, String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let name = format!("{owner}/{repo}");
    if let Some(r) = moved(&hub, &name, &uri) {
        return r;
    }
    if let Err(s) = allowed(&name, &headers) {
        return s.into_response();
    }
    let Some(f) = hub.repos.get(&name).and_then(|r| r.get(&file)) else {
        return (StatusCode::NOT_FOUND, [("x-error-code", "EntryNotFound")]).into_response();
    };
    let sha = hex(&Sha256::digest(&f.bytes));
    let headers = [
        (header::LOCATION.as_str(), format!("/cdn/{sha}")),
        ("x-repo-commit", COMMIT.to_string()),
        ("x-linked-etag", format!("\"{}\"", f.sha256)),
        ("x-linked-size", f.bytes.len().to_string()),
        (header::ETAG.as_str(), "\"0000\"".to_string()),
    ];
    let mut resp = (StatusCode::FOUND, Body::empty()).into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (header::HeaderName::try_from(k), header::HeaderValue::try_from(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// `bytes` at about `per_second` (0: at once), in 64 KiB chunks.
fn paced(bytes: Bytes, per_second: usize) -> Body {
    const CHUNK: usize = 64 << 10;
    if per_second == 0 {
        return Body::from(bytes);
    }
    let gap = std::time::Duration::from_secs_f64(CHUNK as f64 / per_second as f64);
    let chunks: Vec<Bytes> =
        (0..bytes.len()).step_by(CHUNK).map(|i| bytes.slice(i..(i + CHUNK).min(bytes.len()))).collect();
    Body::from_stream(futures::stream::iter(chunks).then(move |c| async move {
        tokio::time::sleep(gap).await;
        Ok::<_, std::io::Error>(c)
    }))
}

async fn blob(State(hub): State<Arc<LoopbackHub>>, Path(sha): Path<String>, headers: HeaderMap) -> Response {
    let Some(f) = hub.file(&sha) else { return StatusCode::NOT_FOUND.into_response() };
    let len = f.bytes.len();
    let from = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    if from.is_some_and(|n| n >= len) {
        return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{len}"))])
            .into_response();
    }
    let start = from.unwrap_or(0);
    let body = f.bytes.slice(start..);
    let status = if from.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let range = format!("bytes {start}-{}/{len}", len.saturating_sub(1));
    let body = if hub.cut_next.swap(false, Ordering::SeqCst) {
        // Half the bytes, then the connection drops (the length promised the rest).
        let half = body.slice(..body.len() / 2);
        let cut = futures::stream::iter([Ok(half), Err(std::io::Error::other("cut"))]);
        Body::from_stream(cut)
    } else {
        paced(body, hub.pace.load(Ordering::SeqCst))
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len - start));
    if let Ok(v) = header::HeaderValue::try_from(range) {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(header::ACCEPT_RANGES, header::HeaderValue::from_static("bytes"));
    resp
}
