//! The PostgreSQL schema: everything lives in the `hearth` schema; each collection gets its own
//! HNSW index, partial to its rows and on its width (pgvector indexes one width at a time).

use super::db;
use crate::store::StoreError;
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
  id bigserial PRIMARY KEY, document_id bigint NOT NULL REFERENCES hearth.documents(id) ON DELETE CASCADE,
  collection_id bigint NOT NULL, ord integer NOT NULL, text text NOT NULL, page integer, section text,
  start_at bigint NOT NULL, end_at bigint NOT NULL, embedding vector NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED);
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

/// What the server offers: whether pgvector can walk its HNSW index past filtered-out rows
/// (iterative scans, pgvector 0.8).
#[derive(Debug, Clone, Copy)]
pub(super) struct Features {
    pub(super) iterative_scan: bool,
}

/// Creates the extension (if allowed) and the tables, once, under an advisory lock.
pub(super) fn migrate(c: &mut Client) -> Result<Features, StoreError> {
    let mut tx = c.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK]).map_err(db)?;
    // No "already exists, skipping" notice for every table on every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning").map_err(db)?;
    let version = pgvector_version(&mut tx)?;
    let Some((major, minor)) = version else {
        return Err(StoreError::Backend(
            "pgvector is not installed in this database and this role may not create it: \
             run `CREATE EXTENSION vector` as a superuser"
                .into(),
        ));
    };
    if (major, minor) < (0, 5) {
        return Err(StoreError::Backend(format!("pgvector {major}.{minor} has no HNSW index; 0.5 or newer is needed")));
    }
    tx.batch_execute(TABLES).map_err(db)?;
    let stored: Option<String> = tx
        .query_opt("SELECT value FROM hearth.meta WHERE key = 'schema_version'", &[])
        .map_err(db)?
        .map(|r| r.get(0));
    match stored.and_then(|v| v.parse::<i64>().ok()) {
        Some(v) if v > VERSION => {
            return Err(StoreError::Backend(format!(
                "the store's schema is version {v}, newer than this Hearth ({VERSION}); upgrade Hearth"
            )))
        }
        Some(_) => {}
        None => {
            tx.execute("INSERT INTO hearth.meta (key, value) VALUES ('schema_version', $1)", &[&VERSION.to_string()])
                .map_err(db)?;
        }
    }
    tx.commit().map_err(db)?;
    Ok(Features { iterative_scan: (major, minor) >= (0, 8) })
}

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

/// The expression a collection's vectors are indexed and searched by: its column cast to its
/// width (`vector` up to 2000 dimensions, `halfvec` up to 4000). None: too wide for HNSW, so
/// searched exactly.
pub(super) fn vector_expr(dim: usize) -> Option<String> {
    match dim {
        0..=2000 => Some(format!("(embedding::vector({dim}))")),
        2001..=4000 => Some(format!("(embedding::halfvec({dim}))")),
        _ => None,
    }
}

/// Parameter `$n` (a `vector`) cast to match [`vector_expr`].
pub(super) fn query_expr(dim: usize, n: usize) -> String {
    match dim {
        0..=2000 => format!("${n}::vector({dim})"),
        2001..=4000 => format!("${n}::vector::halfvec({dim})"),
        _ => format!("${n}::vector"),
    }
}

/// Builds the HNSW index of collection `id` (cosine distance, only its rows) without blocking
/// writes to other collections (CONCURRENTLY: outside any transaction).
pub(super) fn create_index(c: &mut Client, id: i64, dim: usize) -> Result<(), StoreError> {
    let Some(expr) = vector_expr(dim) else { return Ok(()) };
    let ops = if dim > 2000 { "halfvec_cosine_ops" } else { "vector_cosine_ops" };
    let sql = format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS chunks_hnsw_{id} ON hearth.chunks \
         USING hnsw ({expr} {ops}) WHERE collection_id = {id}"
    );
    c.batch_execute(&sql).map_err(db)
}

/// Drops collection `id`'s index, CONCURRENTLY as well.
pub(super) fn drop_index(c: &mut Client, id: i64) -> Result<(), StoreError> {
    c.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS hearth.chunks_hnsw_{id}")).map_err(db)
}

/// Collections (id, width, name) that should have a vector index and have none, or only an
/// invalid one (a concurrent build that failed).
pub(super) fn unindexed(c: &mut Client) -> Result<Vec<(i64, usize, String)>, StoreError> {
    let rows = c
        .query(
            "SELECT c.id, c.dim, c.name FROM hearth.collections c WHERE c.dim <= 4000 AND NOT EXISTS ( \
             SELECT 1 FROM pg_class i JOIN pg_namespace n ON n.oid = i.relnamespace \
             JOIN pg_index x ON x.indexrelid = i.oid \
             WHERE n.nspname = 'hearth' AND i.relname = 'chunks_hnsw_' || c.id AND x.indisvalid)",
            &[],
        )
        .map_err(db)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i32>(1) as usize, r.get(2))).collect())
}

/// Builds the indexes a crash between a collection's creation and its index left missing.
pub(super) fn repair_indexes(c: &mut Client) -> Result<(), StoreError> {
    for (id, dim, name) in unindexed(c)? {
        tracing::warn!(collection = %name, "building a missing vector index");
        // An invalid leftover would make IF NOT EXISTS skip the build.
        drop_index(c, id)?;
        create_index(c, id, dim)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_map_to_indexable_types() {
        assert_eq!(vector_expr(384).as_deref(), Some("(embedding::vector(384))"));
        assert_eq!(query_expr(384, 1), "$1::vector(384)");
        assert_eq!(vector_expr(3072).as_deref(), Some("(embedding::halfvec(3072))"));
        assert_eq!(query_expr(3072, 2), "$2::vector::halfvec(3072)");
        assert_eq!(vector_expr(8192), None);
    }
}
