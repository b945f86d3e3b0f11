//! The hub's cache layout, as `huggingface_hub` writes it, so that files fetched by Python tools
//! are reused and Hearth's downloads serve them too:
//!
//! ```text
//! HF_HUB_CACHE/models--OWNER--REPO/
//!   refs/REVISION                 the commit the revision pointed at
//!   blobs/SHA256                  a file's content, named by its LFS hash (ETag)
//!   blobs/SHA256.incomplete       a download in progress (resumed from its length)
//!   snapshots/COMMIT/PATH         a relative link to ../../blobs/SHA256
//! ```

use std::path::{Path, PathBuf};

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    /// The folder of `repo` (`OWNER/REPO`) under the cache `dir`.
    pub fn new(dir: &Path, repo: &str) -> Self {
        Self { root: dir.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    /// The repository's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The commit `revision` pointed at when it was last resolved.
    pub fn commit_of(&self, revision: &str) -> Option<String> {
        let c = std::fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        let c = c.trim();
        (!c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric())).then(|| c.to_string())
    }

    /// Records that `revision` points at `commit`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn set_ref(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        if revision == commit {
            return Ok(());
        }
        let refs = self.root.join("refs");
        std::fs::create_dir_all(&refs)?;
        std::fs::write(refs.join(revision), commit)
    }

    /// Where a blob lives once complete.
    pub fn blob(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(sha256)
    }

    /// The lock a process holds while it downloads a blob, where `huggingface_hub` keeps its
    /// own (`.locks/models--O--R/SHA.lock` beside the repositories; both take `flock`).
    pub fn lock(&self, sha256: &str) -> PathBuf {
        let name = self.root.file_name().unwrap_or_default();
        let dir = self.root.parent().unwrap_or(&self.root).join(".locks").join(name);
        dir.join(format!("{sha256}.lock"))
    }

    /// Where a blob is written while it downloads.
    pub fn incomplete(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{sha256}.incomplete"))
    }

    /// The snapshot path of `file` at `commit`.
    pub fn snapshot(&self, commit: &str, file: &str) -> PathBuf {
        self.root.join("snapshots").join(commit).join(file)
    }

    /// Links the snapshot path of `file` at `commit` to its blob (relative, as the hub's
    /// client does), replacing a stale link.
    ///
    /// # Errors
    /// When the folders or the link cannot be made.
    pub fn link_snapshot(&self, commit: &str, file: &str, sha256: &str) -> std::io::Result<PathBuf> {
        let path = self.snapshot(commit, file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let depth = file.split('/').count() + 1;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(sha256);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => std::fs::remove_file(&path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        link_or_copy(&target, &path, &self.blob(sha256))?;
        Ok(path)
    }
}

/// A symbolic link at `link` to `target`; a copy of `source` where links are not possible.
///
/// # Errors
/// When neither works.
pub fn link_or_copy(target: &Path, link: &Path, source: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        if std::os::unix::fs::symlink(target, link).is_ok() {
            return Ok(());
        }
    }
    let _ = target;
    std::fs::copy(source, link).map(drop)
}

/// The hub cache folder from the environment's values, as `huggingface_hub` picks it:
/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn cache_dir(
    hub_cache: Option<&str>,
    hf_home: Option<&str>,
    xdg_cache: Option<&str>,
    home: Option<&str>,
) -> PathBuf {
    let set = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(d) = set(hub_cache) {
        return d;
    }
    if let Some(h) = set(hf_home) {
        return h.join("hub");
    }
    let cache = set(xdg_cache).unwrap_or_else(|| set(home).unwrap_or_else(|| PathBuf::from("/tmp")).join(".cache"));
    cache.join("huggingface").join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_hub_client() {
        let c = RepoCache::new(Path::new("/c"), "bartowski/M-GGUF");
        assert_eq!(c.root(), Path::new("/c/models--bartowski--M-GGUF"));
        assert_eq!(c.blob("ab"), Path::new("/c/models--bartowski--M-GGUF/blobs/ab"));
        assert_eq!(
            c.snapshot("c0ffee", "sub/m.gguf"),
            Path::new("/c/models--bartowski--M-GGUF/snapshots/c0ffee/sub/m.gguf")
        );
    }

    #[test]
    fn snapshot_links_resolve_to_the_blob() {
        let dir = std::env::temp_dir().join(format!("hearth-hubcache-{}", std::process::id()));
        let c = RepoCache::new(&dir, "o/r");
        std::fs::create_dir_all(c.blob("x").parent().unwrap()).unwrap();
        std::fs::write(c.blob("abc"), b"weights").unwrap();
        let p = c.link_snapshot("1234", "deep/m.gguf", "abc").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"weights");
        c.set_ref("main", "1234").unwrap();
        assert_eq!(c.commit_of("main").as_deref(), Some("1234"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cache_folder_precedence() {
        assert_eq!(cache_dir(Some("/a"), Some("/h"), None, Some("/u")), PathBuf::from("/a"));
        assert_eq!(cache_dir(None, Some("/h"), None, Some("/u")), PathBuf::from("/h/hub"));
        assert_eq!(cache_dir(None, None, Some("/x"), Some("/u")), PathBuf::from("/x/huggingface/hub"));
        assert_eq!(cache_dir(None, None, None, Some("/u")), PathBuf::from("/u/.cache/huggingface/hub"));
    }
}
