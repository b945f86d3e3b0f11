//! The models folder is live: a model file that appears is served once it is whole and
//! unchanged between two looks; one that goes away leaves the list at once and is unloaded
//! once no request uses it.

use crate::manager::ModelManager;
use crate::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

/// Name, length and modification time of every GGUF file in a folder: when it is what it was,
/// nothing needs reading.
pub(crate) type Signature = Vec<(PathBuf, u64, u64)>;

fn signature(dir: &Path) -> Signature {
    let mut out: Signature = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.path().extension().is_some_and(|x| x == "gguf")
                        || e.file_name() == crate::registry::PULLED_ALIASES
                })
                .filter_map(|e| {
                    let md = std::fs::metadata(e.path()).ok()?;
                    let t = md.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
                    Some((e.path(), md.len(), t.as_nanos() as u64))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

impl ModelManager {
    /// Brings the registry up to date with its folder (called every second by the reaper):
    /// reads the folder again only when a file changed, serves a new model once a second look
    /// finds it unchanged, and unloads idle models whose files are gone.
    pub async fn refresh(&self) {
        self.refresh_with(false).await;
    }

    /// [`ModelManager::refresh`] that serves new files at once: for a caller that knows they
    /// are complete (a pull that renamed them into place).
    pub async fn refresh_now(&self) {
        self.refresh_with(true).await;
    }

    async fn refresh_with(&self, trust: bool) {
        let current = self.registry();
        let Some(dir) = current.dir().map(Path::to_path_buf) else { return };
        let sig = tokio::task::spawn_blocking(move || signature(&dir)).await.unwrap_or_default();
        let waiting = !self.arriving.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        if !self.note_signature(sig) && !waiting && !trust {
            self.unload_orphans(&current).await;
            return;
        }
        let old = current.clone();
        let Ok(Some(Ok(scanned))) = tokio::task::spawn_blocking(move || old.rescan()).await else {
            return;
        };
        let next = self.settle(&current, scanned, trust);
        for gone in current.models().filter(|m| next.resolve(&m.id).is_err()) {
            tracing::info!(model = %gone.id, "model file removed from the models folder");
        }
        self.set_registry(next);
        self.unload_orphans(&self.registry()).await;
    }

    /// Records the folder's signature; whether it changed.
    fn note_signature(&self, sig: Signature) -> bool {
        let mut last = self.signature.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = last.as_ref() != Some(&sig);
        *last = Some(sig);
        changed
    }

    /// `scanned` keeping the models served already and new ones a second scan found unchanged.
    fn settle(&self, current: &Registry, scanned: Registry, trust: bool) -> Registry {
        let mut arriving = self.arriving.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = std::collections::HashMap::new();
        let next = scanned.keeping(|m| {
            if current.resolve(&m.id).is_ok_and(|c| c.path == m.path) {
                return true;
            }
            let mark = (m.size_bytes, m.created);
            seen.insert(m.path.clone(), mark);
            let settled = trust || arriving.get(&m.path) == Some(&mark);
            if settled {
                tracing::info!(model = %m.id, path = %m.path.display(), "new model in the models folder");
            }
            settled
        });
        seen.retain(|p, _| next.models().all(|m| &m.path != p));
        *arriving = seen;
        next
    }

    /// Unloads loaded models the registry no longer lists, once idle.
    async fn unload_orphans(&self, registry: &Registry) {
        for h in self.loaded() {
            if registry.resolve(&h.info.id).is_err() && !h.in_use() && self.remove(&h.info.id).await {
                tracing::info!(model = %h.info.id, "unloaded a model whose file is gone");
            }
        }
    }
}
