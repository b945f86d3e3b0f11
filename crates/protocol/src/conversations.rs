//! `/api/v1/conversations` types: conversations kept on the server for the browser UI and any
//! other client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/v1/conversations`: a new conversation (also how an export is imported).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// Title (up to 200 characters); "New chat" when left out.
    pub title: Option<String>,
    /// The client's settings: any JSON object, kept as given.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// Messages: objects with `role` (`system`, `user`, `assistant`, `tool`) and a string
    /// `content`; other fields are kept as given. Up to 10,000.
    #[schema(value_type = Option<Vec<Object>>)]
    pub messages: Option<Vec<Value>>,
}

/// `PATCH /api/v1/conversations/{id}`: the fields given replace the stored ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    /// New title.
    pub title: Option<String>,
    /// New settings.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// New messages (the whole list).
    #[schema(value_type = Option<Vec<Object>>)]
    pub messages: Option<Vec<Value>>,
    /// The version this change is based on: when another client changed the conversation
    /// since, the change is refused with 409 `conversation_conflict`. Left out, it applies to
    /// whatever is stored.
    pub version: Option<u64>,
}

/// A whole conversation.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConversationObject {
    /// Id.
    pub id: String,
    /// Always `conversation`.
    pub object: String,
    /// Title.
    pub title: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Last change, seconds since the epoch.
    pub updated_at: u64,
    /// Bumped by every change.
    pub version: u64,
    /// The client's settings.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// The messages.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
}

/// A conversation in a list.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConversationSummaryObject {
    /// Id.
    pub id: String,
    /// Always `conversation`.
    pub object: String,
    /// Title.
    pub title: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Last change, seconds since the epoch.
    pub updated_at: u64,
    /// Current version.
    pub version: u64,
    /// Messages in it.
    pub message_count: u64,
}

/// `GET /api/v1/conversations`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConversationList {
    /// Always `list`.
    pub object: String,
    /// Newest first.
    pub data: Vec<ConversationSummaryObject>,
}

/// `DELETE /api/v1/conversations/{id}`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConversationDeleted {
    /// The id.
    pub id: String,
    /// Always `conversation.deleted`.
    pub object: String,
    /// Always true.
    pub deleted: bool,
}
