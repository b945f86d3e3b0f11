//! Hearth's folders: its home and the models folder, for every command that touches them.

use clap::Args;
use std::path::PathBuf;

/// Where Hearth keeps models and caches.
#[derive(Debug, Clone, Default, Args)]
pub struct FolderArgs {
    /// Hearth's home directory (models, caches). Default: ~/.cache/hearth.
    #[arg(long, env = "HEARTH_HOME")]
    pub home: Option<PathBuf>,
    /// Directory scanned for *.gguf files (watched: models copied or pulled in are served
    /// without a restart). Default: $HEARTH_HOME/models.
    #[arg(long, env = "HEARTH_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
}

impl FolderArgs {
    /// `$HEARTH_HOME` as configured, else ~/.cache/hearth.
    pub fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/hearth")
        })
    }

    /// The models directory.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(|| self.home().join("models"))
    }
}
