//! Conversations in the SQLite file: one row each, settings and messages as JSON text beside
//! the lower-cased text that searches look in.

use super::{db, now, SqliteStore};
use crate::conversation::{
    apply, check, search_text, Conversation, ConversationStore, ConversationSummary, ConversationUpdate,
};
use crate::store::{Fault, Invalid, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

const COLUMNS: &str = "id, title, created, updated, version, settings, messages";

fn write(conn: &Connection, owner: &str, c: &Conversation, insert: bool) -> Result<(), StoreError> {
    let settings = serde_json::to_string(&c.settings).map_err(Fault::Corrupt)?;
    let messages = serde_json::to_string(&c.messages).map_err(Fault::Corrupt)?;
    let sql = if insert {
        "INSERT INTO conversations (id, owner, title, created, updated, version, settings, messages, message_count, search) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    } else {
        "UPDATE conversations SET title = ?3, created = ?4, updated = ?5, version = ?6, settings = ?7, messages = ?8, \
         message_count = ?9, search = ?10 WHERE id = ?1 AND owner = ?2"
    };
    let n = conn
        .execute(
            sql,
            params![
                c.id,
                owner,
                c.title,
                c.created_at as i64,
                c.updated_at as i64,
                c.version as i64,
                settings,
                messages,
                c.messages.len() as i64,
                search_text(c)
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Invalid(Invalid::ConversationExists(c.id.clone()))
            }
            e => db(e),
        })?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Backend(Fault::Vanished("conversation")))
    }
}

fn read(conn: &Connection, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1 AND owner = ?2");
    let row = conn
        .query_row(&sql, params![id, owner], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()
        .map_err(db)?;
    let Some((id, title, created, updated, version, settings, messages)) = row else { return Ok(None) };
    Ok(Some(Conversation {
        id,
        title,
        created_at: created as u64,
        updated_at: updated as u64,
        version: version as u64,
        settings: serde_json::from_str(&settings).map_err(Fault::Corrupt)?,
        messages: serde_json::from_str(&messages).map_err(Fault::Corrupt)?,
    }))
}

impl ConversationStore for SqliteStore {
    fn create_conversation(&self, owner: &str, c: &Conversation) -> Result<(), StoreError> {
        check(c)?;
        self.with(|s| write(&s.conn, owner, c, true))
    }

    fn list_conversations(
        &self,
        owner: Option<&str>,
        query: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let key = query.and_then(crate::conversation::search_key);
        self.with(|s| {
            let mut st = s
                .conn
                .prepare(
                    "SELECT id, title, created, updated, version, message_count, owner FROM conversations \
                     WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR instr(search, ?2) > 0) \
                     ORDER BY updated DESC, rowid DESC LIMIT ?3",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![owner, key, limit.min(crate::conversation::MAX_LIST) as i64], |r| {
                    Ok(ConversationSummary {
                        owner: r.get(6)?,
                        id: r.get(0)?,
                        title: r.get(1)?,
                        created_at: r.get::<_, i64>(2)? as u64,
                        updated_at: r.get::<_, i64>(3)? as u64,
                        version: r.get::<_, i64>(4)? as u64,
                        message_count: r.get::<_, i64>(5)? as u64,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn conversation(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.with(|s| read(&s.conn, owner, id))
    }

    fn update_conversation(
        &self,
        owner: &str,
        id: &str,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>, StoreError> {
        // The store's mutex serialises read-modify-write; the write is one statement.
        self.with(|s| {
            let Some(current) = read(&s.conn, owner, id)? else { return Ok(None) };
            let next = apply(current, update, now() as u64)?;
            write(&s.conn, owner, &next, false)?;
            Ok(Some(next))
        })
    }

    fn delete_conversation(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        self.with(|s| {
            let n = s
                .conn
                .execute("DELETE FROM conversations WHERE id = ?1 AND owner = ?2", params![id, owner])
                .map_err(db)?;
            Ok(n > 0)
        })
    }
}
