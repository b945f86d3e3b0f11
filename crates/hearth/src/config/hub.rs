//! Where models are pulled from: the Hugging Face hub's settings, read from the variables its
//! own client reads (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HOME`).

use clap::Args;
use hearth_hub::{cache::cache_dir, HubSettings};
use std::path::PathBuf;

/// The hub a model reference is pulled from.
#[derive(Clone, Args)]
pub struct HubArgs {
    /// The Hugging Face hub, or a mirror or proxy that speaks its protocol.
    #[arg(long = "hf-endpoint", env = "HF_ENDPOINT", default_value = "https://huggingface.co")]
    pub endpoint: String,
    /// Token for private or gated repositories; sent to the endpoint only, never logged.
    #[arg(long = "hf-token", env = "HF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The hub cache, shared with Python tools (a file they fetched is not fetched again).
    /// Default: $HF_HOME/hub, else ~/.cache/huggingface/hub.
    #[arg(long = "hf-hub-cache", env = "HF_HUB_CACHE")]
    pub hub_cache: Option<PathBuf>,
    /// Hugging Face's home folder; the hub cache is its `hub` folder.
    #[arg(long = "hf-home", env = "HF_HOME")]
    pub hf_home: Option<PathBuf>,
}

impl std::fmt::Debug for HubArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubArgs")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("hub_cache", &self.hub_cache)
            .field("hf_home", &self.hf_home)
            .finish()
    }
}

impl HubArgs {
    /// The settings a hub client takes.
    pub fn settings(&self) -> HubSettings {
        let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        let var = |k: &str| std::env::var(k).ok();
        let cache = cache_dir(
            text(&self.hub_cache).as_deref(),
            text(&self.hf_home).as_deref(),
            var("XDG_CACHE_HOME").as_deref(),
            var("HOME").as_deref(),
        );
        HubSettings { endpoint: self.endpoint.clone(), token: self.token.clone().filter(|t| !t.is_empty()), cache }
    }
}
