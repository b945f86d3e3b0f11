//! The PostgreSQL schema: everything lives in the `hearth` schema. Chunks are partitioned by
//! collection: each collection's chunks are a table of their own (`hearth.chunks_{id}`, attached
//! to `hearth.chunks`) with its own HNSW index on its width (pgvector indexes one width at a
//! time), so creating a collection builds an index on an empty table, deleting one drops a
//! table, and neither scans other collections' chunks.

use super::db;
use crate::store::{Fault, StoreError};
use postgres::Client;

/// Bumped when the tables change; a store newer than this binary is refused.
pub(super) const VERSION: i64 = 1;

/// Serialises schema set-up between replicas starting at once (any fixed number).
const MIGRATE_LOCK: i64 = 0x4845_4152_5448;

const TABLES: &str = "
CREATE SCHEMA IF NOT EXISTS hearth;
CREATE TABLE IF NOT EXISTS hearth.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS hearth.collections (
  id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, dim integer NOT NULL, model text NOT NULL,
  created bigint NOT NULL);
CREATE TABLE IF NOT EXISTS hearth.documents (
  id bigserial PRIMARY KEY, collection_id bigint NOT NULL REFERENCES hearth.collections(id) ON DELETE CASCADE,
  name text NOT NULL, title text, sha256 text NOT NULL, metadata jsonb NOT NULL, chunks bigint NOT NULL,
  bytes bigint NOT NULL, created bigint NOT NULL, UNIQUE (collection_id, name));
CREATE INDEX IF NOT EXISTS documents_hash ON hearth.documents (collection_id, sha256);
CREATE TABLE IF NOT EXISTS hearth.chunks (
  id bigserial, document_id bigint NOT NULL REFERENCES hearth.documents(id) ON DELETE CASCADE,
  collection_id bigint NOT NULL, ord integer NOT NULL, text text NOT NULL, page integer, section text,
  start_at bigint NOT NULL, end_at bigint NOT NULL, embedding vector NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
  PRIMARY KEY (collection_id, id)) PARTITION BY LIST (collection_id);
CREATE INDEX IF NOT EXISTS chunks_document ON hearth.chunks (document_id);
CREATE INDEX IF NOT EXISTS chunks_tsv ON hearth.chunks USING gin (tsv);
CREATE TABLE IF NOT EXISTS hearth.sessions (id text PRIMARY KEY, created bigint NOT NULL, updated bigint NOT NULL);
CREATE TABLE IF NOT EXISTS hearth.turns (
  id bigserial PRIMARY KEY, session_id text NOT NULL REFERENCES hearth.sessions(id) ON DELETE CASCADE,
  role text NOT NULL, content text NOT NULL, created bigint NOT NULL);
CREATE INDEX IF NOT EXISTS turns_session ON hearth.turns (session_id, id);
CREATE TABLE IF NOT EXISTS hearth.jobs (id text PRIMARY KEY, state jsonb NOT NULL, updated bigint NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_updated ON hearth.jobs (updated);
";

/// Added to version 1 without a version bump, so an older Hearth still opens the store (it
/// ignores the table): created when missing.
const CONVERSATIONS: &str = "
CREATE TABLE IF NOT EXISTS hearth.conversations (
  id text NOT NULL, owner text NOT NULL, title text NOT NULL, created bigint NOT NULL,
  updated bigint NOT NULL, version bigint NOT NULL, settings text NOT NULL, messages text NOT NULL,
  message_count bigint NOT NULL, search text NOT NULL, PRIMARY KEY (owner, id));
CREATE INDEX IF NOT EXISTS conversations_owner ON hearth.conversations (owner, updated);
";

/// What the server offers: whether pgvector can walk its HNSW index past filtered-out rows
/// (iterative scans, pgvector 0.8).
#[derive(Debug, Clone, Copy)]
pub(super) struct Features {
    pub(super) iterative_scan: bool,
    /// `halfvec` (pgvector 0.7): HNSW over 2001-4000 dimensions.
    pub(super) halfvec: bool,
}

/// Creates the extension (if allowed) and the tables, once, under an advisory lock.
pub(super) fn migrate(c: &mut Client) -> Result<Features, StoreError> {
    let mut tx = c.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK]).map_err(db)?;
    // No "already exists, skipping" notice for every table on every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning").map_err(db)?;
    let version = pgvector_version(&mut tx)?;
    let Some((major, minor)) = version else {
        return Err(StoreError::Backend(Fault::NoPgvector));
    };
    if (major, minor) < (0, 5) {
        return Err(StoreError::Backend(Fault::OldPgvector { major, minor }));
    }
    let stored = stored_version(&mut tx)?;
    if stored != Some(VERSION) {
        // Only when the tables are missing: CREATE ... IF NOT EXISTS still locks existing
        // tables, which would hold up every replica's writes at each start.
        tx.batch_execute(TABLES).map_err(db)?;
    }
    match stored {
        Some(v) if v > VERSION => {
            return Err(StoreError::Backend(Fault::NewerSchema { stored: v, supported: VERSION }))
        }
        Some(_) => {}
        None => {
            tx.execute("INSERT INTO hearth.meta (key, value) VALUES ('schema_version', $1)", &[&VERSION.to_string()])
                .map_err(db)?;
        }
    }
    let has_conversations: bool =
        tx.query_one("SELECT to_regclass('hearth.conversations') IS NOT NULL", &[]).map_err(db)?.get(0);
    if !has_conversations {
        tx.batch_execute(CONVERSATIONS).map_err(db)?;
    }
    tx.commit().map_err(db)?;
    Ok(Features { iterative_scan: (major, minor) >= (0, 8), halfvec: (major, minor) >= (0, 7) })
}

/// The schema version recorded in the store, if there is one.
fn stored_version(tx: &mut postgres::Transaction<'_>) -> Result<Option<i64>, StoreError> {
    let exists: bool = tx.query_one("SELECT to_regclass('hearth.meta') IS NOT NULL", &[]).map_err(db)?.get(0);
    if !exists {
        return Ok(None);
    }
    let row = tx.query_opt("SELECT value FROM hearth.meta WHERE key = 'schema_version'", &[]).map_err(db)?;
    Ok(row.and_then(|r| r.get::<_, String>(0).parse().ok()))
}

/// Widest vectors pgvector stores.
pub(super) const MAX_DIM: usize = 16000;

/// pgvector's version, creating the extension when it is missing (None: missing and not
/// creatable by this role).
fn pgvector_version(tx: &mut postgres::Transaction<'_>) -> Result<Option<(u32, u32)>, StoreError> {
    let find = "SELECT extversion FROM pg_extension WHERE extname = 'vector'";
    let mut found: Option<String> = tx.query_opt(find, &[]).map_err(db)?.map(|r| r.get(0));
    if found.is_none() {
        // In a savepoint: a refusal must not abort the set-up transaction.
        let mut sp = tx.transaction().map_err(db)?;
        match sp.batch_execute("CREATE EXTENSION IF NOT EXISTS vector") {
            Ok(()) => {
                found = sp.query_opt(find, &[]).map_err(db)?.map(|r| r.get(0));
                sp.commit().map_err(db)?;
            }
            Err(e) => tracing::warn!(error = %e, "cannot create the pgvector extension"),
        }
    }
    Ok(found.map(|v| {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }))
}

/// The expression a collection's vectors are indexed and searched by: the column cast to the
/// collection's width (`vector` up to 2000 dimensions, `halfvec` up to 4000). None: too wide
/// for an HNSW index here, searched exactly.
pub(super) fn vector_expr(dim: usize, f: Features) -> Option<String> {
    match dim {
        0..=2000 => Some(format!("(embedding::vector({dim}))")),
        2001..=4000 if f.halfvec => Some(format!("(embedding::halfvec({dim}))")),
        _ => None,
    }
}

/// Parameter `$n` (a `real[]`) cast to match [`vector_expr`].
pub(super) fn query_expr(dim: usize, n: usize, f: Features) -> String {
    match dim {
        0..=2000 => format!("${n}::real[]::vector({dim})"),
        2001..=4000 if f.halfvec => format!("${n}::real[]::vector::halfvec({dim})"),
        _ => format!("${n}::real[]::vector"),
    }
}

/// The table of collection `id`'s chunks.
pub(super) fn partition(id: i64) -> String {
    format!("hearth.chunks_{id}")
}

/// Creates collection `id`'s chunk table with its HNSW index (cosine), then attaches it to
/// `hearth.chunks` (ATTACH takes a lock that lets reads and writes of other collections go on;
/// the partition's other indexes are built then, on an empty table).
pub(super) fn create_partition(
    tx: &mut postgres::Transaction<'_>,
    id: i64,
    dim: usize,
    f: Features,
) -> Result<(), StoreError> {
    let table = partition(id);
    let mut sql = format!(
        "CREATE TABLE {table} (LIKE hearth.chunks INCLUDING DEFAULTS INCLUDING GENERATED, \
         CHECK (collection_id = {id}));"
    );
    if let Some(expr) = vector_expr(dim, f) {
        let ops = if dim > 2000 { "halfvec_cosine_ops" } else { "vector_cosine_ops" };
        sql.push_str(&format!("CREATE INDEX chunks_{id}_hnsw ON {table} USING hnsw ({expr} {ops});"));
    }
    sql.push_str(&format!("ALTER TABLE hearth.chunks ATTACH PARTITION {table} FOR VALUES IN ({id});"));
    tx.batch_execute(&sql).map_err(db)
}

/// Drops collection `id`'s chunk table (its rows are gone already): detached first without
/// blocking other collections, outside any transaction. Failures are logged: an empty table
/// left behind costs nothing and is dropped at the next start.
pub(super) fn drop_partition(c: &mut Client, id: i64) {
    let table = partition(id);
    // Detached already when a crash came between the two steps: then only the drop is left.
    let detach = format!("ALTER TABLE hearth.chunks DETACH PARTITION {table} CONCURRENTLY");
    if let Err(e) = c.batch_execute(&detach) {
        tracing::debug!(table = %table, error = %db(e), "detach");
    }
    if let Err(e) = c.batch_execute(&format!("DROP TABLE IF EXISTS {table}")) {
        tracing::warn!(table = %table, error = %db(e), "could not drop a deleted collection's table");
    }
}

/// Drops the tables of deleted collections that a crash left behind.
pub(super) fn drop_orphans(c: &mut Client) -> Result<(), StoreError> {
    let rows = c
        .query(
            "SELECT substr(t.tablename, 8)::bigint FROM pg_tables t WHERE t.schemaname = 'hearth' \
             AND t.tablename ~ '^chunks_[0-9]+$' \
             AND NOT EXISTS (SELECT 1 FROM hearth.collections c WHERE 'chunks_' || c.id = t.tablename)",
            &[],
        )
        .map_err(db)?;
    for r in rows {
        drop_partition(c, r.get(0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_map_to_indexable_types() {
        let f = Features { iterative_scan: true, halfvec: true };
        assert_eq!(vector_expr(384, f).as_deref(), Some("(embedding::vector(384))"));
        assert_eq!(query_expr(384, 1, f), "$1::real[]::vector(384)");
        assert_eq!(vector_expr(3072, f).as_deref(), Some("(embedding::halfvec(3072))"));
        assert_eq!(query_expr(3072, 2, f), "$2::real[]::vector::halfvec(3072)");
        assert_eq!(vector_expr(8192, f), None);
        let old = Features { iterative_scan: false, halfvec: false };
        assert_eq!((vector_expr(3072, old), query_expr(3072, 1, old)), (None, "$1::real[]::vector".to_string()));
    }
}
