//! API keys, rate limits and browser access.

use clap::{ArgAction, Args};
use std::path::PathBuf;

/// A secret from the command line or environment; never printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// API keys, rate limits and browser access.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// API key(s) clients must send as `Authorization: Bearer KEY` (comma-separated). With no
    /// key here and no keys file, the API is open to anyone who can reach the port.
    #[arg(long = "api-key", env = "HEARTH_API_KEY", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<Secret>,
    /// File of named keys, one per line: `name:key` or `name:sha256:HEX` (see `hearth
    /// hash-key`), optionally `:rpm=N:tpm=N` for that key's limits.
    #[arg(long, env = "HEARTH_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Answer /health, /health/live and /health/ready without a key (probes send none).
    #[arg(long, env = "HEARTH_PUBLIC_HEALTH", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_health: bool,
    /// Answer /metrics without a key (default: a key is needed, e.g. a scraper's bearer token).
    #[arg(long, env = "HEARTH_PUBLIC_METRICS", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_metrics: bool,
    /// Answer /openapi.json and /docs (Swagger UI) without a key.
    #[arg(long, env = "HEARTH_PUBLIC_DOCS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_docs: bool,
    /// With keys configured, the fraction (0-1] of each shared pool one non-admin key may hold:
    /// requests in flight (--max-concurrent-requests), uploads being read, documents queued
    /// for ingestion. Beyond it that key gets 429 while others are still served.
    #[arg(long, env = "HEARTH_KEY_SHARE", default_value_t = hearth_server::Limits::default().key_share)]
    pub key_share: f64,
    /// Requests per minute per key, for keys that set none (0 = unlimited).
    #[arg(long, env = "HEARTH_RATE_LIMIT_RPM", default_value_t = 0)]
    pub rate_limit_rpm: u32,
    /// Tokens (prompt + generated) per minute per key, for keys that set none (0 = unlimited).
    #[arg(long, env = "HEARTH_RATE_LIMIT_TPM", default_value_t = 0)]
    pub rate_limit_tpm: u64,
    /// Origins allowed to call from a browser (comma-separated, `*` for any). Default: none,
    /// so only pages served from the same origin can call.
    #[arg(long, env = "HEARTH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl AuthArgs {
    /// The keys of `--api-key` and the keys file, hashed.
    pub(super) fn config(&self) -> anyhow::Result<hearth_server::http::auth::AuthConfig> {
        let d = crate::config::keys::DefaultLimits { rpm: self.rate_limit_rpm, tpm: self.rate_limit_tpm };
        let mut keys: Vec<_> = self
            .api_keys
            .iter()
            .filter(|k| !k.0.trim().is_empty())
            .map(|k| crate::config::keys::from_flag(k.0.trim(), d))
            .collect();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the API keys file {}: {e}", path.display()))?;
            let from_file = crate::config::keys::parse(&text, d)?;
            anyhow::ensure!(!from_file.is_empty(), "the API keys file {} holds no key", path.display());
            keys.extend(from_file);
        }
        // Keys own what they create by name: two keys must never share one.
        let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!("two API keys are named {:?} (keys file and --api-key, or the same key twice)", w[0]);
        }
        Ok(hearth_server::http::auth::AuthConfig {
            keys,
            public_health: self.public_health,
            public_metrics: self.public_metrics,
            public_docs: self.public_docs,
        })
    }
}
