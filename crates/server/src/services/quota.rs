//! Per-key quotas on what a key keeps in the store: collections, documents, bytes of uploaded
//! files, conversations and retrieval sessions. Off unless the key's line in the keys file sets
//! them; a request that would go past one is a 403 naming it, and nothing stored is touched.
//! Usage is counted from the store itself, so replicas on a shared PostgreSQL agree.

use crate::http::error::ApiError;
use crate::services::owner::{split, Principal};
use crate::services::retrieval::blocking;
use crate::services::retrieval::Rag;
use hearth_rag::conversation::ConversationStore;
use std::sync::Arc;

/// The quotas of `who`'s key (none in the open mode).
fn quotas(who: &Principal) -> crate::http::auth::Quotas {
    who.caller().map(|c| c.quotas).unwrap_or_default()
}

fn over(what: &'static str, limit: u64) -> ApiError {
    ApiError::Quota { what, limit }
}

/// Refuses a new collection past the key's `collections` quota.
///
/// # Errors
/// 403 naming the quota; store failures.
pub async fn collection(rag: &Rag, who: &Principal) -> Result<(), ApiError> {
    let Some(limit) = quotas(who).collections else { return Ok(()) };
    let (store, owner) = (rag.store.clone(), who.owner().to_string());
    let n = blocking(move || Ok(store.list_collections()?.iter().filter(|c| split(&c.name).0 == owner).count() as u64))
        .await?;
    if n >= limit {
        return Err(over("collections", limit));
    }
    Ok(())
}

/// Refuses an upload of `files` files and `bytes` bytes past the key's `documents` or
/// `storage` quota (a file replacing one of the same name counts as new until it is stored).
///
/// # Errors
/// 403 naming the quota; store failures.
pub async fn upload(rag: &Rag, who: &Principal, files: u64, bytes: u64) -> Result<(), ApiError> {
    let q = quotas(who);
    if q.documents.is_none() && q.bytes.is_none() {
        return Ok(());
    }
    let (store, owner) = (rag.store.clone(), who.owner().to_string());
    let (docs, stored) = blocking(move || {
        let mine = store.list_collections()?.into_iter().filter(|c| split(&c.name).0 == owner);
        Ok(mine.fold((0u64, 0u64), |(d, b), c| (d + c.documents, b + c.bytes)))
    })
    .await?;
    if let Some(limit) = q.documents.filter(|&l| docs + files > l) {
        return Err(over("documents", limit));
    }
    if let Some(limit) = q.bytes.filter(|&l| stored + bytes > l) {
        return Err(over("bytes of stored documents", limit));
    }
    Ok(())
}

/// Refuses a new conversation past the key's `conversations` quota.
///
/// # Errors
/// 403 naming the quota; store failures.
pub async fn conversation(store: &Arc<dyn ConversationStore>, who: &Principal) -> Result<(), ApiError> {
    let Some(limit) = quotas(who).conversations else { return Ok(()) };
    let (store, owner) = (store.clone(), who.owner().to_string());
    let limit_rows = usize::try_from(limit).unwrap_or(usize::MAX).saturating_add(1);
    let n = blocking(move || Ok(store.list_conversations(Some(&owner), None, limit_rows)?.len() as u64)).await?;
    if n >= limit {
        return Err(over("conversations", limit));
    }
    Ok(())
}

/// Refuses a new retrieval session past the key's `sessions` quota.
///
/// # Errors
/// 403 naming the quota; store failures.
pub async fn session(rag: &Rag, who: &Principal) -> Result<(), ApiError> {
    let Some(limit) = quotas(who).sessions else { return Ok(()) };
    let (store, owner) = (rag.store.clone(), who.owner().to_string());
    let n =
        blocking(move || Ok(store.list_sessions()?.iter().filter(|s| split(&s.id).0 == owner).count() as u64)).await?;
    if n >= limit {
        return Err(over("sessions", limit));
    }
    Ok(())
}
