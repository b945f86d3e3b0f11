//! [`EngineConfig`] and its builder.

use crate::error::EmbedError;
use std::path::PathBuf;

/// How an [`crate::EmbeddingEngine`] loads and runs models.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Models loaded by `EmbeddingEngine::new`; the first is the default model.
    pub model_paths: Vec<PathBuf>,
    /// CPU threads for llama.cpp.
    pub threads: usize,
    /// Tokens packed into one decode call (across inputs and calls); a longer input goes alone.
    pub batch_tokens: usize,
    /// Inputs one decode call evaluates at most.
    pub batch_inputs: usize,
    /// Scale embeddings to unit length (sentence-transformers' default).
    pub normalize: bool,
    /// Cut inputs longer than the model's window instead of failing.
    pub truncate: bool,
    /// Calls that may wait per model before new ones fail with an overload error.
    pub max_queue: usize,
}

impl EngineConfig {
    /// A builder with the defaults: all cores, 256-token batches of up to 32 inputs,
    /// normalised, no truncation.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder::default()
    }
}

/// Builds an [`EngineConfig`]; [`EngineConfigBuilder::build`] checks it.
#[derive(Debug, Clone)]
pub struct EngineConfigBuilder {
    cfg: EngineConfig,
}

impl Default for EngineConfigBuilder {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cfg: EngineConfig {
                model_paths: Vec::new(),
                threads,
                batch_tokens: 256,
                batch_inputs: 32,
                normalize: true,
                truncate: false,
                max_queue: 1024,
            },
        }
    }
}

impl EngineConfigBuilder {
    /// Adds a GGUF model to load (the first one added is the default model).
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cfg.model_paths.push(path.into());
        self
    }

    /// CPU threads for llama.cpp.
    pub fn threads(mut self, n: usize) -> Self {
        self.cfg.threads = n;
        self
    }

    /// Tokens per decode call.
    pub fn batch_tokens(mut self, n: usize) -> Self {
        self.cfg.batch_tokens = n;
        self
    }

    /// Inputs per decode call.
    pub fn batch_inputs(mut self, n: usize) -> Self {
        self.cfg.batch_inputs = n;
        self
    }

    /// Whether embeddings are scaled to unit length.
    pub fn normalize(mut self, on: bool) -> Self {
        self.cfg.normalize = on;
        self
    }

    /// Whether over-long inputs are cut instead of refused.
    pub fn truncate(mut self, on: bool) -> Self {
        self.cfg.truncate = on;
        self
    }

    /// Calls that may wait per model.
    pub fn max_queue(mut self, n: usize) -> Self {
        self.cfg.max_queue = n;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`EmbedError::Config`] for zero or out-of-range values.
    pub fn build(self) -> Result<EngineConfig, EmbedError> {
        let c = &self.cfg;
        let bad = |m: &str| Err(EmbedError::Config(m.to_string()));
        if !(1..=1024).contains(&c.threads) {
            return bad("threads must be 1..=1024");
        }
        if !(1..=256).contains(&c.batch_inputs) {
            return bad("batch_inputs must be 1..=256");
        }
        if !(1..=65536).contains(&c.batch_tokens) {
            return bad("batch_tokens must be 1..=65536");
        }
        if c.max_queue == 0 {
            return bad("max_queue must be at least 1");
        }
        Ok(self.cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_checks_values() {
        assert!(EngineConfig::builder().build().is_ok());
        assert!(EngineConfig::builder().threads(0).build().is_err());
        assert!(EngineConfig::builder().batch_tokens(0).build().is_err());
        assert!(EngineConfig::builder().batch_inputs(257).build().is_err());
        assert!(EngineConfig::builder().batch_tokens(256).batch_inputs(32).build().is_ok());
        let c = EngineConfig::builder().model_path("/a").model_path("/b").normalize(false).build().unwrap();
        assert_eq!(c.model_paths.len(), 2);
        assert!(!c.normalize);
    }
}
