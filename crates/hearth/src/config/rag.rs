//! Retrieval over documents: where the store is and what it accepts.

use super::units::Bytes;
use clap::Args;
use hearth_rag::location::StoreLocation;
use hearth_server::services::retrieval::DEFAULT_MAX_UPLOAD_BYTES;
use std::path::Path;

/// Retrieval over documents (collections, uploads, search).
#[derive(Debug, Clone, Args)]
pub struct RagArgs {
    /// The document store: a SQLite file, or `postgres://user:password@host:port/db` for
    /// PostgreSQL with pgvector (shared by several replicas). Default: $HEARTH_HOME/rag.sqlite.
    #[arg(long, env = "HEARTH_VECTOR_STORE")]
    pub vector_store: Option<String>,
    /// Embedding model for documents and queries. Default: all-MiniLM-L6-v2.Q8_0 if present,
    /// else the only embedding model; with none, retrieval is off.
    #[arg(long, env = "HEARTH_RAG_EMBEDDING_MODEL")]
    pub rag_embedding_model: Option<String>,
    /// Largest upload (all files of one request together), e.g. `32MiB`.
    #[arg(long, env = "HEARTH_MAX_UPLOAD_SIZE", default_value_t = Bytes(DEFAULT_MAX_UPLOAD_BYTES as u64))]
    pub max_upload_size: Bytes,
}

impl RagArgs {
    /// The store named by `--vector-store`, else a SQLite file in `home`.
    pub(super) fn store(&self, home: &Path) -> StoreLocation {
        self.vector_store
            .as_deref()
            .filter(|s| !s.is_empty())
            .map_or_else(|| StoreLocation::Sqlite(home.join("rag.sqlite")), StoreLocation::parse)
    }

    /// The upload limit in bytes.
    pub(super) fn upload_limit(&self) -> anyhow::Result<usize> {
        usize::try_from(self.max_upload_size.0)
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| anyhow::anyhow!("--max-upload-size must be a size above 0, like 32MiB"))
    }
}
