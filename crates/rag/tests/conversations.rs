//! Conversations on both stores: the same suite on SQLite and on the real PostgreSQL that
//! `scripts/test` starts, ownership by key name, versions, search, persistence, and replicas
//! racing on one conversation.

use hearth_rag::conversation::{Conversation, ConversationStore, ConversationUpdate};
use hearth_rag::fixtures::postgres_database;
use hearth_rag::postgres::PgStore;
use hearth_rag::sqlite::SqliteStore;
use hearth_rag::store::StoreError;
use serde_json::{json, Map};

fn conv(id: &str, title: &str, text: &str) -> Conversation {
    let mut settings = Map::new();
    settings.insert("temperature".into(), json!(0.2));
    Conversation {
        id: id.into(),
        title: title.into(),
        created_at: 100,
        updated_at: 100,
        version: 1,
        settings,
        messages: vec![
            json!({"role": "user", "content": text}),
            json!({"role": "assistant", "content": "Paris.", "timings": {"predicted_per_second": 70.5}}),
        ],
    }
}

fn suite(s: &dyn ConversationStore) {
    s.create_conversation("alice", &conv("conv-a1", "Geography", "Capital of France?")).unwrap();
    s.create_conversation("alice", &conv("conv-a2", "Rust", "What is a borrow?")).unwrap();
    s.create_conversation("bob", &conv("conv-b1", "Bob's", "secret plans \u{0} with a NUL")).unwrap();
    // Each owner sees only their own, newest first (same second: latest created first).
    let ids = |v: Vec<hearth_rag::conversation::ConversationSummary>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_conversations(Some("alice"), None, 50).unwrap()), ["conv-a2", "conv-a1"]);
    assert_eq!(ids(s.list_conversations(Some("bob"), None, 50).unwrap()), ["conv-b1"]);
    assert!(s.list_conversations(Some(""), None, 50).unwrap().is_empty(), "the open owner sees nobody's");
    assert!(s.conversation("bob", "conv-a1").unwrap().is_none(), "another owner's is not found");
    assert!(s.update_conversation("bob", "conv-a1", &ConversationUpdate::default()).unwrap().is_none());
    assert!(!s.delete_conversation("bob", "conv-a1").unwrap());
    // Search looks in titles and messages, case-insensitively, within the owner's only.
    assert_eq!(ids(s.list_conversations(Some("alice"), Some("FRANCE"), 50).unwrap()), ["conv-a1"]);
    assert_eq!(ids(s.list_conversations(Some("alice"), Some("rust"), 50).unwrap()), ["conv-a2"]);
    assert!(s.list_conversations(Some("alice"), Some("secret"), 50).unwrap().is_empty());
    assert_eq!(ids(s.list_conversations(Some("alice"), Some("  "), 50).unwrap()).len(), 2, "blank query = all");
    assert_eq!(s.list_conversations(Some("alice"), None, 1).unwrap().len(), 1, "limit");
    assert_eq!(s.list_conversations(Some("alice"), Some("%"), 50).unwrap().len(), 0, "no pattern syntax");
    // Round trip keeps everything the client stored.
    let got = s.conversation("alice", "conv-a1").unwrap().unwrap();
    assert_eq!(got, conv("conv-a1", "Geography", "Capital of France?"));
    let bob = s.conversation("bob", "conv-b1").unwrap().unwrap();
    assert_eq!(bob.messages[0]["content"], "secret plans \u{0} with a NUL", "NUL kept in content");
    // Updates replace the given fields, bump the version, and refuse a stale one.
    let up = ConversationUpdate { title: Some("Renamed".into()), expected_version: Some(1), ..Default::default() };
    let c = s.update_conversation("alice", "conv-a1", &up).unwrap().unwrap();
    assert_eq!((c.title.as_str(), c.version, c.messages.len()), ("Renamed", 2, 2));
    let stale = s.update_conversation("alice", "conv-a1", &up);
    assert!(matches!(stale, Err(StoreError::VersionConflict { current: 2, expected: 1, .. })), "{stale:?}");
    let msgs = vec![json!({"role": "user", "content": "only this"})];
    let up = ConversationUpdate { messages: Some(msgs), expected_version: Some(2), ..Default::default() };
    let c = s.update_conversation("alice", "conv-a1", &up).unwrap().unwrap();
    assert_eq!((c.version, c.messages.len(), c.title.as_str()), (3, 1, "Renamed"));
    assert!(s.list_conversations(Some("alice"), Some("france"), 50).unwrap().is_empty(), "search follows the messages");
    let bad = ConversationUpdate { messages: Some(vec![json!({"role": "user"})]), ..Default::default() };
    assert!(matches!(s.update_conversation("alice", "conv-a1", &bad), Err(StoreError::Invalid(_))));
    assert_eq!(s.conversation("alice", "conv-a1").unwrap().unwrap().version, 3, "a refused update changes nothing");
    // Bad conversations are refused before they are stored.
    assert!(matches!(s.create_conversation("alice", &conv("bad id", "t", "x")), Err(StoreError::Invalid(_))));
    assert!(matches!(
        s.create_conversation("alice", &conv("conv-t", &"t".repeat(201), "x")),
        Err(StoreError::Invalid(_))
    ));
    // Delete.
    assert!(s.delete_conversation("alice", "conv-a2").unwrap());
    assert!(s.conversation("alice", "conv-a2").unwrap().is_none());
}

fn after_restart(s: &dyn ConversationStore) {
    let c = s.conversation("alice", "conv-a1").unwrap().unwrap();
    assert_eq!((c.title.as_str(), c.version), ("Renamed", 3));
    assert_eq!(s.list_conversations(Some("bob"), Some("plans"), 10).unwrap().len(), 1);
}

#[test]
fn sqlite_keeps_conversations_per_owner_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("hearth-conv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rag.sqlite");
    suite(&SqliteStore::open(&path).unwrap());
    after_restart(&SqliteStore::open(&path).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn postgres_keeps_conversations_per_owner_across_a_restart() {
    let Some(url) = postgres_database("conversations") else { return };
    suite(&PgStore::connect(&url).unwrap());
    after_restart(&PgStore::connect(&url).unwrap());
}

#[test]
fn postgres_replicas_racing_on_one_version_one_wins() {
    let Some(url) = postgres_database("conv_race") else { return };
    let (a, b) = (PgStore::connect(&url).unwrap(), PgStore::connect(&url).unwrap());
    a.create_conversation("k", &conv("conv-race", "t", "x")).unwrap();
    let results: Vec<Result<Option<Conversation>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    let up = ConversationUpdate {
                        title: Some(format!("writer {i}")),
                        expected_version: Some(1),
                        ..Default::default()
                    };
                    s.update_conversation("k", "conv-race", &up)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let lost = results.iter().filter(|r| matches!(r, Err(StoreError::VersionConflict { .. }))).count();
    assert_eq!((won, lost), (1, 3), "{results:?}");
    assert_eq!(b.conversation("k", "conv-race").unwrap().unwrap().version, 2);
}

#[test]
fn postgres_store_made_before_conversations_gains_them() {
    let Some(url) = postgres_database("conv_migrate") else { return };
    drop(PgStore::connect(&url).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute("DROP TABLE hearth.conversations").unwrap();
    let s = PgStore::connect(&url).unwrap();
    s.create_conversation("", &conv("conv-m", "t", "x")).unwrap();
    let v: String = c.query_one("SELECT value FROM hearth.meta WHERE key = 'schema_version'", &[]).unwrap().get(0);
    assert_eq!(v, "1", "an older Hearth still opens the store");
}
