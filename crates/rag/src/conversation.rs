//! Conversations kept for the browser UI (and any other client): a title, the client's
//! settings and its messages, owned by the API key that made them, so that they follow the
//! user to another browser. Both stores implement [`ConversationStore`]; the pure parts
//! (validation, applying an update, the search text) live here.

use crate::error::StoreError;
use crate::fault::Invalid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most messages in one conversation.
pub const MAX_MESSAGES: usize = 10_000;
/// Most conversations one list returns.
pub const MAX_LIST: usize = 1000;
/// Title of a conversation created without one.
pub const DEFAULT_TITLE: &str = "New chat";

/// A conversation as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id (`conv-` and 16 hex digits when the server makes it).
    pub id: String,
    /// Title shown in lists.
    pub title: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Last change, seconds since the epoch.
    pub updated_at: u64,
    /// Bumped by every change; an update that names an older one is refused.
    pub version: u64,
    /// The client's settings (model, sampling, system prompt), kept as given.
    pub settings: Map<String, Value>,
    /// The messages: objects with `role` and `content`, other fields kept as given.
    pub messages: Vec<Value>,
}

/// A conversation in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Its owner (`""`: an admin key's, or the open mode's).
    pub owner: String,
    /// Its id.
    pub id: String,
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

/// A change to a conversation: the fields given replace the stored ones.
#[derive(Debug, Clone, Default)]
pub struct ConversationUpdate {
    /// New title.
    pub title: Option<String>,
    /// New settings.
    pub settings: Option<Map<String, Value>>,
    /// New messages.
    pub messages: Option<Vec<Value>>,
    /// The version the client last saw; `None` replaces whatever is stored.
    pub expected_version: Option<u64>,
}

/// Conversations, each owned by one key name (`""` when the server has no keys).
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation under `owner`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad id, title or message; database failures.
    fn create_conversation(&self, owner: &str, c: &Conversation) -> Result<(), StoreError>;

    /// `owner`'s conversations (every owner's for `None`), newest first; with `query`, those
    /// whose title or message text contains it (case-insensitive).
    ///
    /// # Errors
    /// Database failures.
    fn list_conversations(
        &self,
        owner: Option<&str>,
        query: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    /// One of `owner`'s conversations.
    ///
    /// # Errors
    /// Database failures.
    fn conversation(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Applies `update` to one of `owner`'s conversations; `None` if there is no such one.
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`] when `expected_version` is not the stored version;
    /// [`StoreError::Invalid`] for bad fields; database failures.
    fn update_conversation(
        &self,
        owner: &str,
        id: &str,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Deletes one of `owner`'s conversations; false if there was none.
    ///
    /// # Errors
    /// Database failures.
    fn delete_conversation(&self, owner: &str, id: &str) -> Result<bool, StoreError>;
}

/// Checks a conversation id: 1-64 letters, digits, `-` or `_` (so it can name a collection).
///
/// # Errors
/// [`StoreError::Invalid`] otherwise.
pub fn check_id(id: &str) -> Result<(), StoreError> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(Invalid::ConversationId))
    }
}

/// Checks a title.
///
/// # Errors
/// [`StoreError::Invalid`] when it is too long or has control characters.
pub fn check_title(title: &str) -> Result<(), StoreError> {
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(StoreError::Invalid(Invalid::TitleTooLong(MAX_TITLE_CHARS)));
    }
    if title.chars().any(char::is_control) {
        return Err(StoreError::Invalid(Invalid::TitleControl));
    }
    Ok(())
}

/// Checks messages: at most [`MAX_MESSAGES`], each an object with a known `role` and a string
/// `content`.
///
/// # Errors
/// [`StoreError::Invalid`] naming the first bad message.
pub fn check_messages(messages: &[Value]) -> Result<(), StoreError> {
    if messages.len() > MAX_MESSAGES {
        return Err(StoreError::Invalid(Invalid::TooManyMessages(MAX_MESSAGES)));
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("system" | "user" | "assistant" | "tool")) {
            return Err(StoreError::Invalid(Invalid::MessageRole(i)));
        }
        if !m.get("content").is_some_and(Value::is_string) {
            return Err(StoreError::Invalid(Invalid::MessageContent(i)));
        }
    }
    Ok(())
}

/// Checks a whole conversation before it is stored.
///
/// # Errors
/// [`StoreError::Invalid`] for the first bad field.
pub fn check(c: &Conversation) -> Result<(), StoreError> {
    check_id(&c.id)?;
    check_title(&c.title)?;
    check_messages(&c.messages)
}

/// `current` with `update` applied at time `now`, its version bumped.
///
/// # Errors
/// [`StoreError::VersionConflict`] when the update expected another version;
/// [`StoreError::Invalid`] for bad fields.
pub fn apply(mut current: Conversation, update: &ConversationUpdate, now: u64) -> Result<Conversation, StoreError> {
    if let Some(v) = update.expected_version.filter(|v| *v != current.version) {
        return Err(StoreError::VersionConflict { id: current.id, expected: v, current: current.version });
    }
    if let Some(t) = &update.title {
        check_title(t)?;
        current.title.clone_from(t);
    }
    if let Some(s) = &update.settings {
        current.settings.clone_from(s);
    }
    if let Some(m) = &update.messages {
        check_messages(m)?;
        current.messages.clone_from(m);
    }
    current.version += 1;
    current.updated_at = now.max(current.updated_at);
    Ok(current)
}

/// The lower-cased text a search looks in: the title and every message's content.
pub fn search_text(c: &Conversation) -> String {
    let mut s = c.title.to_lowercase();
    for m in &c.messages {
        if let Some(t) = m.get("content").and_then(Value::as_str) {
            s.push('\n');
            s.push_str(&t.to_lowercase());
        }
    }
    // NUL cannot be stored in PostgreSQL text; it is never what a search looks for.
    s.retain(|c| c != '\0');
    s
}

/// A search string as matched against [`search_text`].
pub fn search_key(query: &str) -> Option<String> {
    let q = query.trim().to_lowercase().replace('\0', "");
    (!q.is_empty()).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Conversation {
        Conversation {
            id: "conv-1".into(),
            title: "Paris".into(),
            created_at: 10,
            updated_at: 10,
            version: 1,
            settings: Map::new(),
            messages: vec![json!({"role": "user", "content": "Capital of FRANCE?"})],
        }
    }

    #[test]
    fn ids_can_name_a_collection() {
        assert!(check_id("conv-0123456789abcdef").is_ok());
        for bad in ["", "a b", "x/y", "é", &"a".repeat(65), "a.b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_need_a_role_and_string_content() {
        assert!(check_messages(&[json!({"role": "assistant", "content": "", "timings": {"x": 1}})]).is_ok());
        let err = check_messages(&[json!({"role": "user", "content": "a"}), json!({"role": "boss", "content": "b"})]);
        assert!(err.unwrap_err().to_string().contains("messages[1].role"));
        assert!(check_messages(&[json!({"role": "user", "content": 3})]).is_err());
        assert!(check_messages(&[json!("hi")]).is_err());
    }

    #[test]
    fn titles_are_bounded_and_printable() {
        assert!(check_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(check_title(&"a".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(check_title("a\nb").is_err());
    }

    #[test]
    fn apply_replaces_given_fields_and_bumps_the_version() {
        let up = ConversationUpdate { title: Some("Renamed".into()), expected_version: Some(1), ..Default::default() };
        let c = apply(conv(), &up, 20).unwrap();
        assert_eq!((c.title.as_str(), c.version, c.updated_at, c.messages.len()), ("Renamed", 2, 20, 1));
        let up = ConversationUpdate { messages: Some(vec![]), ..Default::default() };
        assert_eq!(apply(c, &up, 5).unwrap().updated_at, 20, "time never goes back");
    }

    #[test]
    fn apply_refuses_a_stale_version() {
        let up = ConversationUpdate { title: Some("x".into()), expected_version: Some(0), ..Default::default() };
        assert!(matches!(apply(conv(), &up, 20), Err(StoreError::VersionConflict { current: 1, expected: 0, .. })));
    }

    #[test]
    fn search_text_covers_title_and_messages_case_insensitively() {
        let t = search_text(&conv());
        assert!(t.contains("paris") && t.contains("capital of france?"));
        assert_eq!(search_key("  FRANCE "), Some("france".into()));
        assert_eq!(search_key("   "), None);
    }
}
