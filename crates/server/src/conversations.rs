//! `/api/v1/conversations`: conversations kept in the server's store for the browser UI (and
//! any client), so that they follow the user to another browser. With API keys configured a
//! conversation belongs to the key (by name) that created it: another key gets 404 for it and
//! never sees it in a list.

use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::refused::{Feature, Missing};
use crate::services::owner::Principal;
use crate::services::retrieval::blocking;
use crate::services::state::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_protocol::conversations::{
    ConversationDeleted, ConversationList, ConversationObject, ConversationSummaryObject, CreateConversation,
    UpdateConversation,
};
use hearth_protocol::openai::ErrorBody;
use hearth_rag::conversation::{self as conv, Conversation, ConversationStore, ConversationUpdate};
use serde::Deserialize;
use std::sync::Arc;

/// Conversations a list returns when the client does not say.
const DEFAULT_LIMIT: usize = 200;

fn store(app: &AppState) -> Result<Arc<dyn ConversationStore>, ApiError> {
    app.conversations.clone().ok_or(ApiError::Disabled(Feature::Conversations))
}

/// The owner and id of the conversation a request names (an admin may name `alice/ID`).
fn located(who: &Principal, id: &str) -> (String, String) {
    let (owner, id) = who.locate(id);
    (owner.to_string(), id.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::Missing(Missing::Conversation(id.to_string()))
}

/// The id from the path; one that is not even valid UTF-8 is a 404 like any unknown id.
fn conversation_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id).map_err(|_| not_found("?"))
}

fn object(c: Conversation) -> ConversationObject {
    ConversationObject {
        id: c.id,
        object: "conversation".into(),
        title: c.title,
        created_at: c.created_at,
        updated_at: c.updated_at,
        version: c.version,
        settings: c.settings,
        messages: c.messages,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `GET /api/v1/conversations` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only conversations whose title or messages contain this (case-insensitive).
    pub q: Option<String>,
    /// At most this many (default 200, at most 1000).
    pub limit: Option<usize>,
}

/// `GET /api/v1/conversations`: the caller's conversations, newest first.
///
/// # Errors
/// 404 when the server keeps no conversations; store failures.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ListQuery), responses((status = 200, description = "Conversations, newest first", body = ConversationList), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "No store", body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ConversationList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", format!("bad query string: {}", e.body_text())))?;
    let store = store(&app)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let owner = (!who.sees_all()).then(|| who.owner().to_string());
    let rows = blocking(move || store.list_conversations(owner.as_deref(), q.q.as_deref(), limit)).await?;
    let data = rows
        .into_iter()
        .map(|s| ConversationSummaryObject {
            id: who.show(&crate::services::owner::join(&s.owner, &s.id)).unwrap_or(s.id),
            object: "conversation".into(),
            title: s.title,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
            message_count: s.message_count,
        })
        .collect();
    Ok(Json(ConversationList { object: "list".into(), data }))
}

/// `POST /api/v1/conversations`: a new conversation (an import, when it has messages).
///
/// # Errors
/// 400 for a bad title or message; store failures.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", request_body = CreateConversation, responses((status = 201, description = "The conversation", body = ConversationObject), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "No store", body = ErrorBody), (status = 403, description = "Over the API key's quota", body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CreateConversation>,
) -> Result<Response, ApiError> {
    let store = store(&app)?;
    crate::services::quota::conversation(&store, &who).await?;
    let who = who.owner().to_string();
    let t = now();
    let c = Conversation {
        id: crate::http::ids::new_id("conv"),
        title: req.title.unwrap_or_else(|| conv::DEFAULT_TITLE.to_string()),
        created_at: t,
        updated_at: t,
        version: 1,
        settings: req.settings.unwrap_or_default(),
        messages: req.messages.unwrap_or_default(),
    };
    let stored = c.clone();
    blocking(move || store.create_conversation(&who, &stored)).await?;
    Ok((StatusCode::CREATED, Json(object(c))).into_response())
}

/// `GET /api/v1/conversations/{id}`.
///
/// # Errors
/// 404 for an unknown conversation or another key's.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path, description = "Conversation id")), responses((status = 200, description = "The conversation", body = ConversationObject), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown conversation", body = ErrorBody)))]
pub async fn get(
    State(app): State<AppState>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ConversationObject>, ApiError> {
    let id = conversation_id(id)?;
    let (store, (who, i)) = (store(&app)?, located(&who, &id));
    blocking(move || store.conversation(&who, &i)).await?.map(|c| Json(object(c))).ok_or_else(|| not_found(&id))
}

/// `PATCH /api/v1/conversations/{id}`: replaces the fields given.
///
/// # Errors
/// 404 unknown, 409 `conversation_conflict` when `version` is not the stored one, 400 bad
/// fields.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path, description = "Conversation id")), request_body = UpdateConversation, responses((status = 200, description = "The conversation as changed", body = ConversationObject), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown conversation", body = ErrorBody), (status = 409, description = "Changed by another client since `version`", body = ErrorBody)))]
pub async fn update(
    State(app): State<AppState>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<UpdateConversation>,
) -> Result<Json<ConversationObject>, ApiError> {
    let id = conversation_id(id)?;
    let (store, (who, i)) = (store(&app)?, located(&who, &id));
    let up = ConversationUpdate {
        title: req.title,
        settings: req.settings,
        messages: req.messages,
        expected_version: req.version,
    };
    blocking(move || store.update_conversation(&who, &i, &up))
        .await?
        .map(|c| Json(object(c)))
        .ok_or_else(|| not_found(&id))
}

/// `DELETE /api/v1/conversations/{id}`.
///
/// # Errors
/// 404 unknown.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path, description = "Conversation id")), responses((status = 200, description = "Deleted", body = ConversationDeleted), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown conversation", body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ConversationDeleted>, ApiError> {
    let id = conversation_id(id)?;
    let (store, (who, i)) = (store(&app)?, located(&who, &id));
    if blocking(move || store.delete_conversation(&who, &i)).await? {
        Ok(Json(ConversationDeleted { id, object: "conversation.deleted".into(), deleted: true }))
    } else {
        Err(not_found(&id))
    }
}
