//! The shared store: PostgreSQL with pgvector, for several Hearth replicas at once. Tables live
//! in the `hearth` schema; each collection's chunks are a partition with its own HNSW index
//! (cosine); keyword search is PostgreSQL's full text (`english`
//! configuration, GIN index). A document and its chunks are
//! written in one transaction that first locks the collection's row, so replicas storing into
//! the same collection take turns and deduplication holds across them.
//!
//! The client is the blocking `postgres` crate: call the store off the async runtime (the
//! server does, through `spawn_blocking`). Connections come from a small pool.

mod conversations;
mod schema;
mod search;
mod terms;
mod tls;

use crate::store::{
    check_collection, check_session, check_widths, Collection, DocumentInfo, Hit, NewChunk, NewDocument, PutOutcome,
    Query, SessionInfo, StoreError, Turn, VectorStore, JOB_TTL,
};
use crate::store::{Fault, Invalid};
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, IsolationLevel};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;
use std::time::Duration;

type Manager = PostgresConnectionManager<tokio_postgres_rustls::MakeRustlsConnect>;
type Pool = r2d2::Pool<Manager>;
type Conn = r2d2::PooledConnection<Manager>;

/// Connections per process: searches and writes run on the blocking pool, a few at a time.
const POOL_SIZE: u32 = 8;
/// Chunks per INSERT statement.
const INSERT_ROWS: usize = 512;

/// The PostgreSQL store.
pub struct PgStore {
    /// Always Some until dropped.
    pool: Option<Pool>,
    features: schema::Features,
    common: terms::CommonTerms,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the client's own runtime, which panics on an async
        // runtime's thread (a server dropping its state): close them on a thread of their own.
        if let Some(pool) = self.pool.take() {
            if let Ok(t) = std::thread::Builder::new().name("hearth-pg-close".into()).spawn(move || drop(pool)) {
                let _ = t.join();
            }
        }
    }
}

/// A database error as a store error, with the server's message when there is one.
pub(crate) fn db(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        // Text PostgreSQL cannot hold (a NUL character): the input's fault, not the store's.
        Some(d) if matches!(d.code().code(), "22021" | "22P05") => StoreError::Invalid(Invalid::Unstorable),
        Some(_) => StoreError::Backend(Fault::Postgres(e)),
        // No answer from the server at all: it went away (or the connection did).
        None if e.is_closed() || std::error::Error::source(&e).is_some_and(|c| c.is::<std::io::Error>()) => {
            StoreError::Unavailable(Fault::Postgres(e))
        }
        None => StoreError::Backend(Fault::Postgres(e)),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

const DOC_COLUMNS: &str = "id, name, title, sha256, metadata, chunks, bytes, created";

fn doc_from_row(r: &postgres::Row) -> DocumentInfo {
    let meta: serde_json::Value = r.get(4);
    DocumentInfo {
        id: r.get(0),
        name: r.get(1),
        title: r.get(2),
        sha256: r.get(3),
        metadata: match meta {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        chunks: r.get::<_, i64>(5) as u64,
        bytes: r.get::<_, i64>(6) as u64,
        created: r.get::<_, i64>(7) as u64,
    }
}

/// The document of collection `cid` matching `cond` (on `$2`).
fn document_where(
    c: &mut impl GenericClient,
    cid: i64,
    cond: &str,
    arg: &(dyn ToSql + Sync),
) -> Result<Option<DocumentInfo>, StoreError> {
    let sql = format!("SELECT {DOC_COLUMNS} FROM hearth.documents WHERE collection_id = $1 AND {cond}");
    Ok(c.query_opt(&sql, &[&cid, arg]).map_err(db)?.as_ref().map(doc_from_row))
}

/// A collection's id and width; `lock` holds its row until the transaction ends.
fn collection_id(c: &mut impl GenericClient, name: &str, lock: bool) -> Result<(i64, usize), StoreError> {
    let sql = if lock {
        "SELECT id, dim FROM hearth.collections WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT id, dim FROM hearth.collections WHERE name = $1"
    };
    // Typed: one round trip, no separate prepare (this runs before every search).
    let row = c.query_typed_opt(sql, &[(&name, Type::TEXT)]).map_err(db)?;
    let row = row.ok_or_else(|| StoreError::NoCollection(name.to_string()))?;
    Ok((row.get(0), row.get::<_, i32>(1) as usize))
}

/// Collections with their counts: all, or the one named.
fn collections(c: &mut impl GenericClient, name: Option<&str>) -> Result<Vec<Collection>, StoreError> {
    let sql = "SELECT c.name, c.dim, c.model, c.created, COUNT(d.id), COALESCE(SUM(d.chunks), 0)::bigint, \
               COALESCE(SUM(d.bytes), 0)::bigint \
               FROM hearth.collections c LEFT JOIN hearth.documents d ON d.collection_id = c.id \
               WHERE $1::text IS NULL OR c.name = $1 GROUP BY c.id ORDER BY c.name COLLATE \"C\"";
    let rows = c.query(sql, &[&name]).map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| Collection {
            name: r.get(0),
            dim: r.get::<_, i32>(1) as usize,
            model: r.get(2),
            created: r.get::<_, i64>(3) as u64,
            documents: r.get::<_, i64>(4) as u64,
            chunks: r.get::<_, i64>(5) as u64,
            bytes: r.get::<_, i64>(6) as u64,
        })
        .collect())
}

/// Inserts a document's chunks, [`INSERT_ROWS`] per statement.
fn insert_chunks(c: &mut impl GenericClient, doc: i64, cid: i64, chunks: &[NewChunk]) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {} (document_id, collection_id, ord, text, page, section, start_at, end_at, embedding) \
         SELECT $1, $2, * FROM unnest($3::int4[], $4::text[], $5::int4[], $6::text[], $7::int8[], $8::int8[], $9::vector[])",
        schema::partition(cid)
    );
    let st = c.prepare(&sql).map_err(db)?;
    for (n, part) in chunks.chunks(INSERT_ROWS).enumerate() {
        let ord: Vec<i32> = (0..part.len()).map(|i| (n * INSERT_ROWS + i) as i32).collect();
        // PostgreSQL's text cannot hold NUL; nothing readable is lost.
        let text: Vec<String> = part.iter().map(|c| c.text.replace('\0', "")).collect();
        let page: Vec<Option<i32>> = part.iter().map(|c| c.page.map(|p| p as i32)).collect();
        let section: Vec<Option<&str>> = part.iter().map(|c| c.section.as_deref()).collect();
        let start: Vec<i64> = part.iter().map(|c| c.start as i64).collect();
        let end: Vec<i64> = part.iter().map(|c| c.end as i64).collect();
        let emb: Vec<pgvector::Vector> = part.iter().map(|c| pgvector::Vector::from(c.embedding.clone())).collect();
        c.execute(&st, &[&doc, &cid, &ord, &text, &page, &section, &start, &end, &emb]).map_err(db)?;
    }
    Ok(())
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, with `sslmode` and
    /// `sslrootcert=/path/ca.pem`: TLS is verified), creates the pgvector extension if this role may and it is
    /// missing, and the tables if they are missing.
    ///
    /// # Errors
    /// A bad URL, an unreachable server, no pgvector, or a store newer than this build.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, root_cert) = tls::take_root_cert(url);
        let config: postgres::Config = url.parse().map_err(|e| {
            tracing::debug!(error = %e, "not a PostgreSQL URL");
            StoreError::Invalid(Invalid::Url)
        })?;
        let manager = PostgresConnectionManager::new(config, tls::connector(root_cert.as_ref())?);
        // One connection first: an unreachable server fails at once with its reason.
        let mut first = manager.connect().map_err(|e| StoreError::Backend(Fault::Connect(e)))?;
        let features = schema::migrate(&mut first)?;
        schema::drop_orphans(&mut first)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // How long a request waits for a connection (all busy, or the server away) before
            // it is answered 503.
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(manager);
        Ok(Self { pool: Some(pool), features, common: terms::CommonTerms::default() })
    }

    /// VACUUM ANALYZE of the chunks: what autovacuum does some time after a bulk load, at once
    /// (fresh planner statistics and common-word shares; `hearth bench rag` measures after it).
    ///
    /// # Errors
    /// Backend failures (e.g. a role that does not own the tables).
    pub fn vacuum(&self) -> Result<(), StoreError> {
        self.conn()?.batch_execute("VACUUM ANALYZE hearth.chunks").map_err(db)?;
        self.common.forget();
        Ok(())
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        let pool = self.pool.as_ref().ok_or(StoreError::Backend(Fault::Closed))?;
        pool.get().map_err(|e| StoreError::Unavailable(Fault::Pool(e)))
    }
}

impl VectorStore for PgStore {
    fn create_collection(&self, name: &str, dim: usize, model: &str) -> Result<Collection, StoreError> {
        check_collection(name, dim)?;
        if dim > schema::MAX_DIM {
            return Err(StoreError::Invalid(Invalid::Width { got: dim, max: schema::MAX_DIM }));
        }
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let row = tx
            .query_opt(
                "INSERT INTO hearth.collections (name, dim, model, created) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &(dim as i32), &model, &now()],
            )
            .map_err(db)?;
        let id: i64 = row.ok_or_else(|| StoreError::CollectionExists(name.to_string()))?.get(0);
        schema::create_partition(&mut tx, id, dim, self.features)?;
        tx.commit().map_err(db)?;
        collections(&mut *c, Some(name))?.pop().ok_or_else(|| StoreError::Backend(Fault::Vanished("collection")))
    }

    fn list_collections(&self) -> Result<Vec<Collection>, StoreError> {
        collections(&mut *self.conn()?, None)
    }

    fn collection(&self, name: &str) -> Result<Option<Collection>, StoreError> {
        Ok(collections(&mut *self.conn()?, Some(name))?.pop())
    }

    fn delete_collection(&self, name: &str) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let id = match collection_id(&mut tx, name, true) {
            Ok((id, _)) => id,
            Err(StoreError::NoCollection(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        // Emptied at once (rather than row by row through the documents' cascade).
        tx.batch_execute(&format!("TRUNCATE {}", schema::partition(id))).map_err(db)?;
        tx.execute("DELETE FROM hearth.collections WHERE id = $1", &[&id]).map_err(db)?;
        tx.commit().map_err(db)?;
        schema::drop_partition(&mut c, id);
        Ok(true)
    }

    fn put_document(
        &self,
        collection: &str,
        doc: NewDocument,
        chunks: Vec<NewChunk>,
    ) -> Result<(DocumentInfo, PutOutcome), StoreError> {
        let mut c = self.conn()?;
        // Read committed whatever the database's default: the duplicate checks below must see
        // what another replica committed while this one waited for the collection's lock.
        let mut tx = c.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().map_err(db)?;
        let (cid, dim) = collection_id(&mut tx, collection, true)?;
        check_widths(collection, dim, &chunks)?;
        if let Some(same) = document_where(&mut tx, cid, "sha256 = $2", &doc.sha256)? {
            return Ok((same, PutOutcome::Unchanged));
        }
        let old = document_where(&mut tx, cid, "name = $2", &doc.name)?;
        if let Some(o) = &old {
            tx.execute("DELETE FROM hearth.documents WHERE id = $1", &[&o.id]).map_err(db)?;
        }
        let meta = serde_json::Value::Object(doc.metadata);
        let id: i64 = tx
            .query_one(
                "INSERT INTO hearth.documents (collection_id, name, title, sha256, metadata, chunks, bytes, created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[&cid, &doc.name, &doc.title, &doc.sha256, &meta, &(chunks.len() as i64), &(doc.bytes as i64), &now()],
            )
            .map_err(db)?
            .get(0);
        insert_chunks(&mut tx, id, cid, &chunks)?;
        let info = document_where(&mut tx, cid, "id = $2", &id)?;
        tx.commit().map_err(db)?;
        let info = info.ok_or_else(|| StoreError::Backend(Fault::Vanished("document")))?;
        Ok((info, if old.is_some() { PutOutcome::Replaced } else { PutOutcome::Created }))
    }

    fn find_by_hash(&self, collection: &str, sha256: &str) -> Result<Option<DocumentInfo>, StoreError> {
        let mut c = self.conn()?;
        let (cid, _) = collection_id(&mut *c, collection, false)?;
        document_where(&mut *c, cid, "sha256 = $2", &sha256)
    }

    fn list_documents(&self, collection: &str) -> Result<Vec<DocumentInfo>, StoreError> {
        let mut c = self.conn()?;
        let (cid, _) = collection_id(&mut *c, collection, false)?;
        let sql =
            format!("SELECT {DOC_COLUMNS} FROM hearth.documents WHERE collection_id = $1 ORDER BY name COLLATE \"C\"");
        Ok(c.query(&sql, &[&cid]).map_err(db)?.iter().map(doc_from_row).collect())
    }

    fn document(&self, collection: &str, id: i64) -> Result<Option<DocumentInfo>, StoreError> {
        let mut c = self.conn()?;
        let (cid, _) = collection_id(&mut *c, collection, false)?;
        document_where(&mut *c, cid, "id = $2", &id)
    }

    fn delete_document(&self, collection: &str, id: i64) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let (cid, _) = collection_id(&mut tx, collection, true)?;
        let n = tx
            .execute("DELETE FROM hearth.documents WHERE id = $1 AND collection_id = $2", &[&id, &cid])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n > 0)
    }

    fn append_turns(&self, session: &str, turns: &[(String, String)]) -> Result<(), StoreError> {
        check_session(session)?;
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let t = now();
        tx.execute(
            "INSERT INTO hearth.sessions (id, created, updated) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET updated = $2",
            &[&session, &t],
        )
        .map_err(db)?;
        let st = tx
            .prepare("INSERT INTO hearth.turns (session_id, role, content, created) VALUES ($1, $2, $3, $4)")
            .map_err(db)?;
        for (role, content) in turns {
            tx.execute(&st, &[&session, role, &content.replace('\0', ""), &t]).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn turns(&self, session: &str) -> Result<Vec<Turn>, StoreError> {
        let rows = self
            .conn()?
            .query("SELECT role, content, created FROM hearth.turns WHERE session_id = $1 ORDER BY id", &[&session])
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Turn { role: r.get(0), content: r.get(1), created: r.get::<_, i64>(2) as u64 })
            .collect())
    }

    fn list_sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = self
            .conn()?
            .query(
                "SELECT s.id, (SELECT COUNT(*) FROM hearth.turns t WHERE t.session_id = s.id), s.updated \
                 FROM hearth.sessions s ORDER BY s.updated DESC, s.id",
                &[],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| SessionInfo { id: r.get(0), turns: r.get::<_, i64>(1) as u64, updated: r.get::<_, i64>(2) as u64 })
            .collect())
    }

    fn delete_session(&self, session: &str) -> Result<bool, StoreError> {
        let n = self.conn()?.execute("DELETE FROM hearth.sessions WHERE id = $1", &[&session]).map_err(db)?;
        Ok(n > 0)
    }

    fn put_job(&self, id: &str, state: &serde_json::Value) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let t = now();
        c.execute(
            "INSERT INTO hearth.jobs (id, state, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET state = $2, updated = $3",
            &[&id, state, &t],
        )
        .map_err(db)?;
        c.execute("DELETE FROM hearth.jobs WHERE updated < $1", &[&(t - JOB_TTL)]).map_err(db)?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn job(&self, id: &str) -> Result<Option<(serde_json::Value, u64)>, StoreError> {
        let row = self.conn()?.query_opt("SELECT state, updated FROM hearth.jobs WHERE id = $1", &[&id]).map_err(db)?;
        Ok(row.map(|r| (r.get(0), r.get::<_, i64>(1) as u64)))
    }

    fn search(&self, collection: &str, q: &Query) -> Result<Vec<Hit>, StoreError> {
        search::run(&mut *self.conn()?, self.features, &self.common, collection, q)
    }

    fn check(&self) -> Result<Vec<String>, StoreError> {
        search::check(&mut *self.conn()?, self.features)
    }
}
