//! The models folder is live: a model file that appears is served once it is whole and
//! unchanged between two looks; one that goes away leaves the list at once and is unloaded
//! once no request uses it.

use crate::registry::Registry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Name, length and modification time of every GGUF file in a folder: when it is what it was,
/// nothing needs reading.
type Signature = Vec<(PathBuf, u64, u64)>;

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

/// What the models folder looked like at the last look, owned by the manager.
#[derive(Default)]
pub(crate) struct FolderWatch {
    /// Files seen by a scan but not yet served: size and time, to be unchanged at the next scan.
    arriving: Mutex<HashMap<PathBuf, (u64, u64)>>,
    /// The folder as the last look found it (no reading while it stays so).
    signature: Mutex<Option<Signature>>,
}

impl FolderWatch {
    /// The registry the folder of `current` holds now, when it changed: the folder is read
    /// again only when a file changed, and a new model is served once a second look finds it
    /// unchanged (at once with `trust`: a caller that knows the files are complete).
    pub(crate) async fn look(&self, current: &Arc<Registry>, trust: bool) -> Option<Registry> {
        let dir = current.dir().map(Path::to_path_buf)?;
        let sig = tokio::task::spawn_blocking(move || signature(&dir)).await.unwrap_or_default();
        let waiting = !self.arriving.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        if !self.note_signature(sig) && !waiting && !trust {
            return None;
        }
        let old = current.clone();
        let Ok(Some(Ok(scanned))) = tokio::task::spawn_blocking(move || old.rescan()).await else {
            return None;
        };
        let next = self.settle(current, scanned, trust);
        for gone in current.models().filter(|m| next.resolve(&m.id).is_err()) {
            tracing::info!(model = %gone.id, "model file removed from the models folder");
        }
        Some(next)
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
}
