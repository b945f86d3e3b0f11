//! A pull, from reference to a model in the models folder: choose the files, fetch each blob
//! into the hub cache (`crate::download`), and publish them into the folder.

use crate::cache::{link_or_copy, RepoCache};
use crate::fetch::{Hub, Progress, Pulled};
use crate::select::{self, Choice};
use crate::{download, PullError, Reference};
use hearth_engine::registry::split_part;
use std::path::{Path, PathBuf};

impl Hub {
    /// Fetches `r` into the hub cache (what is there already is reused) and links it into
    /// `models_dir` once every file is verified.
    ///
    /// # Errors
    /// Any [`PullError`]; no file of a failed pull is left in `models_dir`.
    pub async fn pull(
        &self,
        r: &Reference,
        models_dir: &Path,
        on: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Pulled, PullError> {
        let (commit, files) = self.files(r).await?;
        let Choice { files, quant, note } = select::choose(&files, r)?;
        let cache = RepoCache::new(&self.settings.cache, &r.repo);
        let mut resolved = Vec::new();
        for f in &files {
            resolved.push(self.resolve(r, &commit, f).await?);
        }
        let listed = files.iter().zip(&resolved).map(|(f, at)| (f.name.clone(), at.size)).collect();
        on(Progress::Resolved { commit: commit.clone(), files: listed, note: note.clone() });
        let mut fetched = 0;
        let mut snapshots = Vec::new();
        for (f, at) in files.iter().zip(&resolved) {
            fetched += download::blob(self, &cache, &f.name, at, on).await?;
            let snap = cache.link_snapshot(&commit, &f.name, &at.sha256).map_err(|e| PullError::io(cache.root(), e))?;
            snapshots.push(snap);
        }
        cache.set_ref(&r.revision, &commit).map_err(|e| PullError::io(cache.root(), e))?;
        let paths = publish(models_dir, &cache, &r.repo, &snapshots)?;
        let id = model_id(&paths[0]);
        tracing::info!(reference = %r, id = %id, fetched, "pulled");
        Ok(Pulled { id, paths, quant, fetched, note })
    }
}

/// Links each snapshot file into `models_dir` under its own name: first as a hidden name, then
/// renamed, so the folder never shows a file that is not complete. A name that a file of
/// another repository (or one of the user's) already has is kept by it: this repository's
/// files then go under names that start with `OWNER--REPO--`.
fn publish(models_dir: &Path, cache: &RepoCache, repo: &str, snapshots: &[PathBuf]) -> Result<Vec<PathBuf>, PullError> {
    std::fs::create_dir_all(models_dir).map_err(|e| PullError::io(models_dir, e))?;
    let name_of = |snap: &PathBuf| snap.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ours = std::fs::canonicalize(cache.root()).unwrap_or_else(|_| cache.root().to_path_buf());
    let taken = snapshots.iter().any(|s| {
        let dest = models_dir.join(name_of(s));
        dest.symlink_metadata().is_ok() && !std::fs::canonicalize(&dest).is_ok_and(|t| t.starts_with(&ours))
    });
    let prefix = if taken { format!("{}--", repo.replace('/', "--")) } else { String::new() };
    let mut out = Vec::new();
    // Later parts first: the first part is what makes the model visible.
    for snap in snapshots.iter().rev() {
        let name = format!("{prefix}{}", name_of(snap));
        let (tmp, dest) = (models_dir.join(format!(".{name}.pulling")), models_dir.join(&name));
        let _ = std::fs::remove_file(&tmp);
        let target = std::fs::canonicalize(snap).map_err(|e| PullError::io(snap, e))?;
        link_or_copy(&target, &tmp, &target).map_err(|e| PullError::io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| PullError::io(&dest, e))?;
        out.push(dest);
    }
    out.reverse();
    Ok(out)
}

/// The id a model file is served under: its stem, without a split part's suffix.
pub(crate) fn model_id(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    split_part(&stem).map_or_else(|| stem.clone(), |(base, _, _)| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stems_without_the_split_part() {
        assert_eq!(model_id(Path::new("/m/a-Q8_0-00001-of-00002.gguf")), "a-Q8_0");
        assert_eq!(model_id(Path::new("/m/SmolLM2.Q4_1.gguf")), "SmolLM2.Q4_1");
    }
}
