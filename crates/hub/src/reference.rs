//! What `hearth pull` accepts: `hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]` or
//! `OWNER/REPO/FILE.gguf` (each optionally `@REVISION`).

use crate::PullError;

/// A model on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `OWNER/REPO`.
    pub repo: String,
    /// The quantisation asked for (`Q4_K_M`), matched case-insensitively against file names.
    pub quant: Option<String>,
    /// One file of the repository, named exactly.
    pub file: Option<String>,
    /// A branch, tag or commit; `main` when not given.
    pub revision: String,
}

/// The revision the hub serves by default.
pub const DEFAULT_REVISION: &str = "main";

const HOST_PREFIXES: &[&str] = &["https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/"];

impl std::str::FromStr for Reference {
    type Err = PullError;

    fn from_str(s: &str) -> Result<Self, PullError> {
        let bad = || PullError::BadReference(s.to_string());
        let mut rest = s.trim();
        for p in HOST_PREFIXES {
            if let Some(r) = rest.strip_prefix(p) {
                rest = r;
                break;
            }
        }
        let (rest, revision) = match rest.split_once('@') {
            Some((r, rev)) if valid_part(rev) => (r, rev.to_string()),
            Some(_) => return Err(bad()),
            None => (rest, DEFAULT_REVISION.to_string()),
        };
        let (path, quant) = match rest.rsplit_once(':') {
            Some((p, q)) if valid_part(q) => (p, Some(q.to_string())),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (repo, file) = match parts.as_slice() {
            [owner, name] => (format!("{owner}/{name}"), None),
            [owner, name, file @ ..] if quant.is_none() && file.last().is_some_and(|f| f.ends_with(".gguf")) => {
                (format!("{owner}/{name}"), Some(file.join("/")))
            }
            _ => return Err(bad()),
        };
        let ok = safe_path(&repo) && file.as_deref().is_none_or(safe_path);
        if !ok {
            return Err(bad());
        }
        Ok(Self { repo, quant, file, revision })
    }
}

/// A relative path of plain names (what a repository file may be called here): no `..`, no
/// leading `/`, nothing but the hub's name characters.
pub(crate) fn safe_path(p: &str) -> bool {
    p.split('/').all(valid_part)
}

/// A name segment as the hub allows it: letters, digits, `-`, `_`, `.`, not `.` or `..`.
fn valid_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 96
        && p != "."
        && p != ".."
        && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(file) = &self.file {
            write!(f, "/{file}")?;
        }
        if let Some(q) = &self.quant {
            write!(f, ":{q}")?;
        }
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

impl Reference {
    /// The names a client may use for this model once pulled as `quant`: with and without
    /// `hf.co/`, with the tag as given and as chosen, and bare when none was given.
    pub fn names(&self, quant: &str) -> Vec<String> {
        let base = match &self.file {
            Some(f) => format!("{}/{f}", self.repo),
            None => self.repo.clone(),
        };
        let mut tags: Vec<Option<String>> = vec![Some(quant.to_string())];
        match &self.quant {
            Some(q) => tags.push(Some(q.clone())),
            None => tags.extend([None, Some("latest".into())]),
        }
        let mut out = Vec::new();
        for tag in tags {
            let name = tag.map_or_else(|| base.clone(), |t| format!("{base}:{t}"));
            for n in [format!("hf.co/{name}"), name] {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }
}

/// Whether `s` names a hub model rather than a local model id (it has a `/`).
pub fn is_hub_reference(s: &str) -> bool {
    s.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn the_three_forms_and_a_revision() {
        let a = r("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:q4_k_m");
        assert_eq!(
            (a.repo.as_str(), a.quant.as_deref(), a.file.as_deref()),
            ("bartowski/SmolLM2-135M-Instruct-GGUF", Some("q4_k_m"), None)
        );
        assert_eq!(a.revision, "main");
        let b = r("owner/repo");
        assert_eq!((b.quant, b.file), (None, None));
        let c = r("owner/repo/sub/model-Q8_0.gguf@v2");
        assert_eq!((c.file.as_deref(), c.revision.as_str()), (Some("sub/model-Q8_0.gguf"), "v2"));
        assert_eq!(r("https://huggingface.co/owner/repo:Q5_K_M").to_string(), "owner/repo:Q5_K_M");
    }

    #[test]
    fn names_a_pulled_model_answers_to() {
        let n = r("hf.co/o/r").names("Q4_K_M");
        assert!(n.contains(&"hf.co/o/r:Q4_K_M".to_string()) && n.contains(&"o/r".to_string()), "{n:?}");
        assert!(n.contains(&"hf.co/o/r:latest".to_string()));
        let n = r("o/r:q8_0").names("Q8_0");
        assert!(n.contains(&"o/r:q8_0".to_string()) && n.contains(&"hf.co/o/r:Q8_0".to_string()), "{n:?}");
    }

    #[test]
    fn repository_paths_stay_inside() {
        assert!(safe_path("sub/m-Q4_K_M.gguf"));
        for bad in ["../x.gguf", "/etc/x.gguf", "a//b.gguf", "a/./b.gguf", "a\\b.gguf"] {
            assert!(!safe_path(bad), "{bad}");
        }
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in
            ["", "repo", "owner/", "/repo", "owner/repo:", "o/r/../x.gguf", "o/r/file.bin", "o w/r", "o/r:q/x", "o/r@"]
        {
            assert!(matches!(bad.parse::<Reference>(), Err(PullError::BadReference(_))), "{bad:?}");
        }
    }
}
