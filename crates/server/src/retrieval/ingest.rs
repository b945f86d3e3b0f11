//! The ingestion job: chunk by the embedding model's tokens, embed in batches (the embedding
//! worker packs them with other requests), store in one transaction.

use super::schema::Stored;
use crate::http::error::ApiError;
use crate::services::owner::Principal;
use crate::services::retrieval::Rag;
use crate::services::state::AppState;
use hearth_engine::embed::l2_normalize;
use hearth_engine::{EmbedInput, EmbedRequest, ModelHandle};
use hearth_rag::chunk::{self, Chunk};
use hearth_rag::parse::ParsedDocument;
use hearth_rag::store::{NewChunk, NewDocument, PutOutcome};
use std::collections::HashMap;
use std::sync::Arc;

/// Chunks embedded per request to the embedding worker.
const EMBED_BATCH: usize = 32;

/// A parsed upload waiting for its job.
pub struct Upload {
    /// Collection.
    pub collection: String,
    /// The document's metadata and hash.
    pub doc: NewDocument,
    /// Its parsed text.
    pub parsed: ParsedDocument,
}

/// Runs `who`'s job to the end, recording progress and the outcome.
pub async fn run(app: AppState, rag: Arc<Rag>, (job, who): (String, Principal), up: Upload) {
    let _slot = rag.ingest_slot().await;
    rag.update_job(&job, |j| j.status = "running").await;
    match ingest(&app, &rag, (&job, &who), up).await {
        Ok(stored) => {
            rag.update_job(&job, |j| {
                j.status = "done";
                j.result = serde_json::to_value(stored).ok();
            })
            .await
        }
        Err(e) => {
            let message = e.body().error.message;
            tracing::warn!(job = %job, error = %message, "ingestion failed");
            rag.update_job(&job, |j| {
                j.status = "failed";
                j.error = Some(message);
            })
            .await;
        }
    }
}

/// Ingests one document of `who`'s now (the tokens embedded charged to them, batch by batch);
/// the stored document and what happened.
///
/// # Errors
/// Unknown collection, embedding or store failures.
pub async fn ingest(app: &AppState, rag: &Rag, (job, who): (&str, &Principal), up: Upload) -> Result<Stored, ApiError> {
    let store = rag.store.clone();
    let (collection, sha) = (up.collection.clone(), up.doc.sha256.clone());
    let existing = crate::services::retrieval::blocking(move || store.find_by_hash(&collection, &sha)).await?;
    if let Some(doc) = existing {
        return Ok(Stored { document: doc, outcome: PutOutcome::Unchanged });
    }
    let handle = app.models.get_embedding(&rag.embedding_model).await?;
    let chunks = chunk_document(&handle, &up.parsed, rag).await?;
    rag.update_job(job, |j| j.chunks_total = chunks.len()).await;
    let mut stored = Vec::with_capacity(chunks.len());
    for batch in chunks.chunks(EMBED_BATCH) {
        let inputs = batch.iter().map(|c| EmbedInput::Text(c.text.clone())).collect();
        let out = handle.embed(EmbedRequest { inputs, truncate: true }).await?;
        who.charge(u64::from(out.prompt_tokens));
        for (c, mut v) in batch.iter().zip(out.vectors) {
            l2_normalize(&mut v);
            stored.push(NewChunk {
                text: c.text.clone(),
                page: c.page,
                section: c.section.clone(),
                start: c.start,
                end: c.end,
                embedding: v,
            });
        }
        let done = stored.len();
        rag.update_job(job, |j| j.chunks_done = done).await;
    }
    let store = rag.store.clone();
    let (collection, doc) = (up.collection, up.doc);
    let (info, outcome) =
        crate::services::retrieval::blocking(move || store.put_document(&collection, doc, stored)).await?;
    Ok(Stored { document: info, outcome })
}

/// Chunks by the model's tokens: every block is tokenized by the model; pieces of a block
/// that is longer than a chunk are counted in proportion to their characters.
async fn chunk_document(handle: &ModelHandle, doc: &ParsedDocument, rag: &Rag) -> Result<Vec<Chunk>, ApiError> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let (mut tokens, mut chars) = (0usize, 0usize);
    for b in &doc.blocks {
        if counts.contains_key(&b.text) {
            continue;
        }
        let n = handle.count_tokens(b.text.clone()).await?;
        tokens += n;
        chars += b.text.chars().count();
        counts.insert(b.text.clone(), n);
    }
    let per_char = tokens as f64 / chars.max(1) as f64;
    let count =
        |s: &str| counts.get(s).copied().unwrap_or_else(|| (s.chars().count() as f64 * per_char).ceil() as usize);
    Ok(chunk::chunk(doc, rag.chunk, &count))
}
