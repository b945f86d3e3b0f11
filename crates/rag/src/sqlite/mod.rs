//! The embedded store: one SQLite file (WAL) with FTS5 for keyword search; vectors are kept
//! as f32 blobs beside the chunks and searched through an in-memory int8 index
//! ([`VectorIndex`]) rebuilt from the file on open. A document and its chunks are written in
//! one transaction, so a crash (even `kill -9`) leaves either the old or the new document.

mod conversations;
mod schema;
mod search;

use crate::index::VectorIndex;
use crate::store::{
    check_collection, check_session, check_widths, Collection, DocumentInfo, Fault, Hit, NewChunk, NewDocument,
    PutOutcome, Query, SessionInfo, StoreError, Turn, VectorStore, JOB_TTL,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// What the store keeps in memory per collection.
struct Live {
    id: i64,
    dim: usize,
    index: VectorIndex,
    /// Document metadata, for filters.
    metadata: HashMap<i64, serde_json::Map<String, serde_json::Value>>,
    /// Mean chunk length in characters, for BM25's length normalisation within the
    /// collection; computed when first needed after a change.
    mean_len: std::cell::Cell<Option<f64>>,
}

struct Inner {
    conn: Connection,
    live: HashMap<String, Live>,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    inner: Mutex<Inner>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Fault::Sqlite(e))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` and rebuilds the in-memory index.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Hearth store.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(schema::SCHEMA).map_err(db)?;
        let mut inner = Inner { conn, live: HashMap::new() };
        inner.load()?;
        Ok(Self { inner: Mutex::new(inner) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner)
    }
}

impl Inner {
    /// Rebuilds the in-memory state from the file.
    fn load(&mut self) -> Result<(), StoreError> {
        let cols: Vec<(i64, String, usize)> = {
            let mut st = self.conn.prepare("SELECT id, name, dim FROM collections").map_err(db)?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize))).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        for (id, name, dim) in cols {
            let mut live =
                Live { id, dim, index: VectorIndex::new(dim), metadata: HashMap::new(), mean_len: Default::default() };
            let mut st = self
                .conn
                .prepare("SELECT c.id, c.document_id, c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.collection_id = ?1")
                .map_err(db)?;
            let mut rows = st.query([id]).map_err(db)?;
            while let Some(r) = rows.next().map_err(db)? {
                let emb: Vec<u8> = r.get(2).map_err(db)?;
                live.index.insert(r.get(0).map_err(db)?, r.get(1).map_err(db)?, &floats(&emb));
            }
            let mut st =
                self.conn.prepare("SELECT id, metadata FROM documents WHERE collection_id = ?1").map_err(db)?;
            let mut rows = st.query([id]).map_err(db)?;
            while let Some(r) = rows.next().map_err(db)? {
                let meta: String = r.get(1).map_err(db)?;
                live.metadata.insert(r.get(0).map_err(db)?, serde_json::from_str(&meta).unwrap_or_default());
            }
            self.live.insert(name, live);
        }
        Ok(())
    }

    fn live(&self, name: &str) -> Result<&Live, StoreError> {
        self.live.get(name).ok_or_else(|| StoreError::NoCollection(name.to_string()))
    }

    fn counts(&self, id: i64) -> Result<(u64, u64, u64), StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(chunks), 0), COALESCE(SUM(bytes), 0) FROM documents WHERE collection_id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
            )
            .map_err(db)
    }

    fn collection_row(&self, name: &str) -> Result<Option<Collection>, StoreError> {
        let row = self
            .conn
            .query_row("SELECT id, dim, model, created FROM collections WHERE name = ?1", [name], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })
            .optional()
            .map_err(db)?;
        let Some((id, dim, model, created)) = row else { return Ok(None) };
        let (documents, chunks, bytes) = self.counts(id)?;
        Ok(Some(Collection {
            name: name.to_string(),
            dim: dim as usize,
            model,
            documents,
            chunks,
            bytes,
            created: created as u64,
        }))
    }

    fn document_row(
        &self,
        collection_id: i64,
        where_: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> Result<Option<DocumentInfo>, StoreError> {
        let sql = format!(
            "SELECT id, name, title, sha256, metadata, chunks, bytes, created FROM documents WHERE collection_id = ?1 AND {where_}"
        );
        self.conn.query_row(&sql, params![collection_id, arg], doc_from_row).optional().map_err(db)
    }
}

fn doc_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentInfo> {
    let meta: String = r.get(4)?;
    Ok(DocumentInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        title: r.get(2)?,
        sha256: r.get(3)?,
        metadata: serde_json::from_str(&meta).unwrap_or_default(),
        chunks: r.get::<_, i64>(5)? as u64,
        bytes: r.get::<_, i64>(6)? as u64,
        created: r.get::<_, i64>(7)? as u64,
    })
}

/// Inserts a document and its chunks; its id and its chunks' ids in order.
fn insert_document(
    tx: &Transaction<'_>,
    collection_id: i64,
    doc: &NewDocument,
    chunks: &[NewChunk],
) -> Result<(i64, Vec<i64>), StoreError> {
    let meta = serde_json::Value::Object(doc.metadata.clone()).to_string();
    tx.execute(
        "INSERT INTO documents (collection_id, name, title, sha256, metadata, chunks, bytes, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![collection_id, doc.name, doc.title, doc.sha256, meta, chunks.len() as i64, doc.bytes as i64, now()],
    )
    .map_err(db)?;
    let doc_id = tx.last_insert_rowid();
    let mut st = tx
        .prepare("INSERT INTO chunks (document_id, ord, text, page, section, start, end, embedding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .map_err(db)?;
    let mut ids = Vec::with_capacity(chunks.len());
    for (ord, c) in chunks.iter().enumerate() {
        st.execute(params![
            doc_id,
            ord as i64,
            c.text,
            c.page,
            c.section,
            c.start as i64,
            c.end as i64,
            blob(&c.embedding)
        ])
        .map_err(db)?;
        ids.push(tx.last_insert_rowid());
    }
    Ok((doc_id, ids))
}

impl VectorStore for SqliteStore {
    fn create_collection(&self, name: &str, dim: usize, model: &str) -> Result<Collection, StoreError> {
        check_collection(name, dim)?;
        self.with(|s| {
            if s.live.contains_key(name) {
                return Err(StoreError::CollectionExists(name.to_string()));
            }
            s.conn
                .execute(
                    "INSERT INTO collections (name, dim, model, created) VALUES (?1, ?2, ?3, ?4)",
                    params![name, dim as i64, model, now()],
                )
                .map_err(db)?;
            let id = s.conn.last_insert_rowid();
            s.live.insert(
                name.to_string(),
                Live { id, dim, index: VectorIndex::new(dim), metadata: HashMap::new(), mean_len: Default::default() },
            );
            s.collection_row(name)?.ok_or_else(|| StoreError::Backend(Fault::Vanished("collection")))
        })
    }

    fn list_collections(&self) -> Result<Vec<Collection>, StoreError> {
        self.with(|s| {
            let mut names: Vec<String> = s.live.keys().cloned().collect();
            names.sort();
            names.iter().filter_map(|n| s.collection_row(n).transpose()).collect()
        })
    }

    fn collection(&self, name: &str) -> Result<Option<Collection>, StoreError> {
        self.with(|s| s.collection_row(name))
    }

    fn delete_collection(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|s| {
            let Some(live) = s.live.get(name) else { return Ok(false) };
            let id = live.id;
            let tx = s.conn.transaction().map_err(db)?;
            tx.execute(
                "DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE collection_id = ?1)",
                [id],
            )
            .map_err(db)?;
            tx.execute("DELETE FROM collections WHERE id = ?1", [id]).map_err(db)?;
            tx.commit().map_err(db)?;
            s.live.remove(name);
            Ok(true)
        })
    }

    fn put_document(
        &self,
        collection: &str,
        doc: NewDocument,
        chunks: Vec<NewChunk>,
    ) -> Result<(DocumentInfo, PutOutcome), StoreError> {
        self.with(|s| {
            let live = s.live(collection)?;
            let (cid, dim) = (live.id, live.dim);
            check_widths(collection, dim, &chunks)?;
            if let Some(same) = s.document_row(cid, "sha256 = ?2", &doc.sha256)? {
                return Ok((same, PutOutcome::Unchanged));
            }
            let old = s.document_row(cid, "name = ?2", &doc.name)?;
            let tx = s.conn.transaction().map_err(db)?;
            if let Some(o) = &old {
                tx.execute("DELETE FROM chunks WHERE document_id = ?1", [o.id]).map_err(db)?;
                tx.execute("DELETE FROM documents WHERE id = ?1", [o.id]).map_err(db)?;
            }
            let (id, chunk_ids) = insert_document(&tx, cid, &doc, &chunks)?;
            tx.commit().map_err(db)?;
            let live = s.live.get_mut(collection).ok_or_else(|| StoreError::NoCollection(collection.into()))?;
            if let Some(o) = &old {
                live.index.remove_doc(o.id);
                live.mean_len.set(None);
                live.metadata.remove(&o.id);
            }
            for (chunk_id, c) in chunk_ids.iter().zip(&chunks) {
                live.index.insert(*chunk_id, id, &c.embedding);
                live.mean_len.set(None);
            }
            live.metadata.insert(id, doc.metadata.clone());
            let info =
                s.document_row(cid, "id = ?2", &id)?.ok_or_else(|| StoreError::Backend(Fault::Vanished("document")))?;
            Ok((info, if old.is_some() { PutOutcome::Replaced } else { PutOutcome::Created }))
        })
    }

    fn find_by_hash(&self, collection: &str, sha256: &str) -> Result<Option<DocumentInfo>, StoreError> {
        self.with(|s| {
            let cid = s.live(collection)?.id;
            s.document_row(cid, "sha256 = ?2", &sha256)
        })
    }

    fn list_documents(&self, collection: &str) -> Result<Vec<DocumentInfo>, StoreError> {
        self.with(|s| {
            let cid = s.live(collection)?.id;
            let mut st = s
                .conn
                .prepare("SELECT id, name, title, sha256, metadata, chunks, bytes, created FROM documents WHERE collection_id = ?1 ORDER BY name")
                .map_err(db)?;
            let rows = st.query_map([cid], doc_from_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn document(&self, collection: &str, id: i64) -> Result<Option<DocumentInfo>, StoreError> {
        self.with(|s| {
            let cid = s.live(collection)?.id;
            s.document_row(cid, "id = ?2", &id)
        })
    }

    fn delete_document(&self, collection: &str, id: i64) -> Result<bool, StoreError> {
        self.with(|s| {
            let cid = s.live(collection)?.id;
            let tx = s.conn.transaction().map_err(db)?;
            tx.execute("DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE id = ?1 AND collection_id = ?2)", [id, cid])
                .map_err(db)?;
            let n = tx.execute("DELETE FROM documents WHERE id = ?1 AND collection_id = ?2", [id, cid]).map_err(db)?;
            tx.commit().map_err(db)?;
            if let Some(live) = s.live.get_mut(collection) {
                live.index.remove_doc(id);
                live.mean_len.set(None);
                live.metadata.remove(&id);
            }
            Ok(n > 0)
        })
    }

    fn search(&self, collection: &str, q: &Query) -> Result<Vec<Hit>, StoreError> {
        self.with(|s| s.search(collection, q))
    }

    fn put_job(&self, id: &str, state: &serde_json::Value) -> Result<(), StoreError> {
        self.with(|s| {
            let t = now();
            s.conn
                .execute(
                    "INSERT INTO jobs (id, state, updated) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (id) DO UPDATE SET state = ?2, updated = ?3",
                    params![id, state.to_string(), t],
                )
                .map_err(db)?;
            s.conn.execute("DELETE FROM jobs WHERE updated < ?1", [t - JOB_TTL]).map_err(db)?;
            Ok(())
        })
    }

    fn shared(&self) -> bool {
        false
    }

    fn job(&self, id: &str) -> Result<Option<(serde_json::Value, u64)>, StoreError> {
        self.with(|s| {
            let row = s
                .conn
                .query_row("SELECT state, updated FROM jobs WHERE id = ?1", [id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(db)?;
            Ok(row.map(|(state, t)| (serde_json::from_str(&state).unwrap_or_default(), t as u64)))
        })
    }

    /// SQLite's integrity check, the full-text index against the chunks, and every document's
    /// chunk count against its chunks.
    fn check(&self) -> Result<Vec<String>, StoreError> {
        self.with(|s| {
            let mut problems = Vec::new();
            let ok: String = s.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(db)?;
            if ok != "ok" {
                problems.push(format!("integrity_check: {ok}"));
            }
            if let Err(e) = s.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')", []) {
                problems.push(format!("full-text index: {e}"));
            }
            let mut st = s
                .conn
                .prepare("SELECT d.name, d.chunks, (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d")
                .map_err(db)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))).map_err(db)?;
            for row in rows {
                let (name, want, got) = row.map_err(db)?;
                if want != got {
                    problems.push(format!("document {name}: {got} chunks stored, {want} expected"));
                }
            }
            let orphans: i64 = s
                .conn
                .query_row("SELECT COUNT(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)", [], |r| r.get(0))
                .map_err(db)?;
            if orphans > 0 {
                problems.push(format!("{orphans} chunks without a document"));
            }
            Ok(problems)
        })
    }

    fn append_turns(&self, session: &str, turns: &[(String, String)]) -> Result<(), StoreError> {
        check_session(session)?;
        self.with(|s| {
            let tx = s.conn.transaction().map_err(db)?;
            let t = now();
            tx.execute(
                "INSERT INTO sessions (id, created, updated) VALUES (?1, ?2, ?2) ON CONFLICT (id) DO UPDATE SET updated = ?2",
                params![session, t],
            )
            .map_err(db)?;
            for (role, content) in turns {
                tx.execute(
                    "INSERT INTO turns (session_id, role, content, created) VALUES (?1, ?2, ?3, ?4)",
                    params![session, role, content, t],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })
    }

    fn turns(&self, session: &str) -> Result<Vec<Turn>, StoreError> {
        self.with(|s| {
            let mut st = s
                .conn
                .prepare("SELECT role, content, created FROM turns WHERE session_id = ?1 ORDER BY id")
                .map_err(db)?;
            let rows = st
                .query_map([session], |r| {
                    Ok(Turn { role: r.get(0)?, content: r.get(1)?, created: r.get::<_, i64>(2)? as u64 })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn list_sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        self.with(|s| {
            let mut st = s
                .conn
                .prepare("SELECT s.id, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id), s.updated FROM sessions s ORDER BY s.updated DESC, s.id")
                .map_err(db)?;
            let rows = st
                .query_map([], |r| Ok(SessionInfo { id: r.get(0)?, turns: r.get::<_, i64>(1)? as u64, updated: r.get::<_, i64>(2)? as u64 }))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn delete_session(&self, session: &str) -> Result<bool, StoreError> {
        self.with(|s| {
            let tx = s.conn.transaction().map_err(db)?;
            tx.execute("DELETE FROM turns WHERE session_id = ?1", [session]).map_err(db)?;
            let n = tx.execute("DELETE FROM sessions WHERE id = ?1", [session]).map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(n > 0)
        })
    }
}
