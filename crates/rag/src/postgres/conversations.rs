//! Conversations in PostgreSQL: one row each, settings and messages as JSON text (text keeps
//! an escaped NUL that jsonb would refuse), updated under a row lock so that replicas and
//! clients changing one conversation at once take turns and a stale version is refused.

use super::{db, now, PgStore};
use crate::conversation::{
    apply, check, search_key, search_text, Conversation, ConversationStore, ConversationSummary, ConversationUpdate,
    MAX_LIST,
};
use crate::store::{Fault, Invalid, StoreError};
use postgres::GenericClient;

fn read(c: &mut impl GenericClient, owner: &str, id: &str, lock: bool) -> Result<Option<Conversation>, StoreError> {
    let sql = format!(
        "SELECT id, title, created, updated, version, settings, messages FROM hearth.conversations \
         WHERE id = $1 AND owner = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = c.query_opt(&sql, &[&id, &owner]).map_err(db)? else { return Ok(None) };
    Ok(Some(Conversation {
        id: r.get(0),
        title: r.get(1),
        created_at: r.get::<_, i64>(2) as u64,
        updated_at: r.get::<_, i64>(3) as u64,
        version: r.get::<_, i64>(4) as u64,
        settings: serde_json::from_str(r.get(5)).map_err(Fault::Corrupt)?,
        messages: serde_json::from_str(r.get(6)).map_err(Fault::Corrupt)?,
    }))
}

fn write(c: &mut impl GenericClient, owner: &str, conv: &Conversation, insert: bool) -> Result<u64, StoreError> {
    let settings = serde_json::to_string(&conv.settings).map_err(Fault::Corrupt)?;
    let messages = serde_json::to_string(&conv.messages).map_err(Fault::Corrupt)?;
    let sql = if insert {
        "INSERT INTO hearth.conversations (id, owner, title, created, updated, version, settings, messages, \
         message_count, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (owner, id) DO NOTHING"
    } else {
        "UPDATE hearth.conversations SET title = $3, created = $4, updated = $5, version = $6, settings = $7, \
         messages = $8, message_count = $9, search = $10 WHERE id = $1 AND owner = $2"
    };
    let title = conv.title.replace('\0', "");
    c.execute(
        sql,
        &[
            &conv.id,
            &owner,
            &title,
            &(conv.created_at as i64),
            &(conv.updated_at as i64),
            &(conv.version as i64),
            &settings,
            &messages,
            &(conv.messages.len() as i64),
            &search_text(conv),
        ],
    )
    .map_err(db)
}

impl ConversationStore for PgStore {
    fn create_conversation(&self, owner: &str, c: &Conversation) -> Result<(), StoreError> {
        check(c)?;
        match write(&mut *self.conn()?, owner, c, true)? {
            1 => Ok(()),
            _ => Err(StoreError::Invalid(Invalid::ConversationExists(c.id.clone()))),
        }
    }

    fn list_conversations(
        &self,
        owner: Option<&str>,
        query: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let key = query.and_then(search_key);
        let rows = self
            .conn()?
            .query(
                "SELECT id, title, created, updated, version, message_count, owner FROM hearth.conversations \
                 WHERE ($1::text IS NULL OR owner = $1) AND ($2::text IS NULL OR strpos(search, $2::text) > 0) \
                 ORDER BY updated DESC, id DESC LIMIT $3",
                &[&owner, &key, &(limit.min(MAX_LIST) as i64)],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| ConversationSummary {
                owner: r.get(6),
                id: r.get(0),
                title: r.get(1),
                created_at: r.get::<_, i64>(2) as u64,
                updated_at: r.get::<_, i64>(3) as u64,
                version: r.get::<_, i64>(4) as u64,
                message_count: r.get::<_, i64>(5) as u64,
            })
            .collect())
    }

    fn conversation(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        read(&mut *self.conn()?, owner, id, false)
    }

    fn update_conversation(
        &self,
        owner: &str,
        id: &str,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let Some(current) = read(&mut tx, owner, id, true)? else { return Ok(None) };
        let next = apply(current, update, now() as u64)?;
        write(&mut tx, owner, &next, false)?;
        tx.commit().map_err(db)?;
        Ok(Some(next))
    }

    fn delete_conversation(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute("DELETE FROM hearth.conversations WHERE id = $1 AND owner = $2", &[&id, &owner])
            .map_err(db)?;
        Ok(n > 0)
    }
}
