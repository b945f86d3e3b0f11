//! Search and consistency checks against PostgreSQL.

use super::schema::{partition, query_expr, vector_expr, Features};
use super::terms::CommonTerms;
use super::{collection_id, db};
use crate::store::{combine, query_vector, query_words, Hit, Query, StoreError};
use postgres::types::{ToSql, Type};
use postgres::Client;
use std::cell::RefCell;
use std::collections::HashMap;

/// Runs a search: vector (HNSW), keyword (full text) or both fused by reciprocal rank.
pub(super) fn run(
    c: &mut Client,
    features: Features,
    common: &CommonTerms,
    collection: &str,
    q: &Query,
) -> Result<Vec<Hit>, StoreError> {
    let (cid, dim) = collection_id(c, collection, false)?;
    let filter = (!q.filter.is_empty()).then(|| serde_json::Value::Object(q.filter.clone()));
    let cell = RefCell::new(&mut *c);
    let scored = combine(
        q,
        |n| {
            let v = query_vector(collection, dim, q)?;
            vector(&mut cell.borrow_mut(), features, (cid, dim), v, n, filter.as_ref())
        },
        |n| keyword(&mut cell.borrow_mut(), common, cid, &q.text, n, filter.as_ref()),
    )?;
    hits(c, cid, &scored)
}

/// The join and condition that keep documents whose metadata has every key of the filter
/// (parameter `$3`) with the same value.
fn filter_sql(filter: Option<&serde_json::Value>) -> (&'static str, &'static str) {
    match filter {
        Some(_) => (
            "JOIN hearth.documents d ON d.id = c.document_id",
            "AND NOT EXISTS (SELECT 1 FROM jsonb_each($3::jsonb) f WHERE d.metadata -> f.key IS DISTINCT FROM f.value)",
        ),
        None => ("", ""),
    }
}

/// Runs a search query with its typed parameters in one round trip (no separate prepare):
/// `$1` the query, `$2` the limit, `$3` the filter when there is one.
fn typed<T: ToSql + Sync>(
    c: &mut Client,
    sql: &str,
    (query, ty): &(T, Type),
    limit: usize,
    filter: Option<&serde_json::Value>,
) -> Result<Vec<postgres::Row>, StoreError> {
    let limit = limit as i64;
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![(query, ty.clone()), (&limit, Type::INT8)];
    if let Some(f) = filter {
        params.push((f, Type::JSONB));
    }
    c.query_typed(sql, &params).map_err(db)
}

/// The `n` nearest chunks by cosine similarity through the collection's HNSW index.
fn vector(
    c: &mut Client,
    features: Features,
    (cid, dim): (i64, usize),
    v: &[f32],
    n: usize,
    filter: Option<&serde_json::Value>,
) -> Result<Vec<(i64, f32)>, StoreError> {
    // Candidates the graph search keeps: at least the results asked for (pgvector's cap: 1000).
    let mut set = format!("SET hnsw.ef_search = {}", n.clamp(40, 1000));
    if features.iterative_scan {
        // With a filter, keep walking the graph until enough rows pass it; without one the
        // walk costs time for nothing (measured: LIMIT 50 at 100k chunks 2.3-4.6 ms with it,
        // 1.4-2.0 ms without). Set each time: the connection is shared through the pool.
        let mode = if filter.is_some() { "strict_order" } else { "off" };
        set.push_str(&format!("; SET hnsw.iterative_scan = {mode}"));
    }
    c.batch_execute(&set).map_err(db)?;
    let expr = vector_expr(dim, features).unwrap_or_else(|| "embedding".into());
    let qv = query_expr(dim, 1, features);
    let (join, cond) = filter_sql(filter);
    let table = partition(cid);
    // Without iterative scans (pgvector < 0.8) the graph walk stops at ef_search candidates
    // and a filter can leave fewer than `n`: order by an expression the index cannot serve, so
    // the filtered rows are scanned exactly instead.
    let order = if filter.is_some() && !features.iterative_scan {
        format!("({expr} <=> {qv}) + 0")
    } else {
        format!("{expr} <=> {qv}")
    };
    let sql = format!(
        "SELECT c.id, ({expr} <=> {qv})::real FROM {table} c {join} \
         WHERE true {cond} ORDER BY {order} LIMIT $2"
    );
    let rows = typed(c, &sql, &(v.to_vec(), Type::FLOAT4_ARRAY), n, filter)?;
    let mut out: Vec<(i64, f32)> = rows.iter().map(|r| (r.get(0), 1.0 - r.get::<_, f32>(1))).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The `n` best chunks by full-text rank; the query's words are matched as lexemes (any of
/// them, stemmed, English stop words dropped, the most common ones dropped as
/// [`CommonTerms::selective`] says), so user text never reaches the query syntax.
fn keyword(
    c: &mut Client,
    common: &CommonTerms,
    cid: i64,
    text: &str,
    n: usize,
    filter: Option<&serde_json::Value>,
) -> Result<Vec<(i64, f32)>, StoreError> {
    let words = query_words(text).join(" ");
    let rows =
        c.query_typed("SELECT lexeme FROM unnest(to_tsvector('english', $1))", &[(&words, Type::TEXT)]).map_err(db)?;
    let lexemes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let kept = common.selective(c, cid, lexemes)?;
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    // tsquery's input syntax takes quoted lexemes as they are (no second normalisation).
    let terms: Vec<String> =
        kept.iter().map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''"))).collect();
    let (join, cond) = filter_sql(filter);
    let sql = format!(
        "SELECT c.id, ts_rank(c.tsv, q, 1)::real AS r FROM {} c {join} \
         CROSS JOIN (SELECT $1::text::tsquery AS q) t WHERE c.tsv @@ t.q {cond} \
         ORDER BY r DESC, c.id LIMIT $2",
        partition(cid)
    );
    let rows = typed(c, &sql, &(terms.join(" | "), Type::TEXT), n, filter)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The chunks behind the scored ids, in the same order.
fn hits(c: &mut Client, cid: i64, scored: &[(i64, f32)]) -> Result<Vec<Hit>, StoreError> {
    let ids: Vec<i64> = scored.iter().map(|s| s.0).collect();
    let sql = format!(
        "SELECT c.id, c.document_id, d.name, d.title, c.text, c.page, c.section, c.start_at, c.end_at \
         FROM {} c JOIN hearth.documents d ON d.id = c.document_id WHERE c.id = ANY($1)",
        partition(cid)
    );
    let rows = c.query_typed(&sql, &[(&ids, Type::INT8_ARRAY)]).map_err(db)?;
    let mut by_id: HashMap<i64, Hit> = rows
        .iter()
        .map(|r| {
            let hit = Hit {
                chunk_id: r.get(0),
                document_id: r.get(1),
                document: r.get(2),
                title: r.get(3),
                text: r.get(4),
                page: r.get::<_, Option<i32>>(5).map(|p| p as u32),
                section: r.get(6),
                start: r.get::<_, i64>(7) as usize,
                end: r.get::<_, i64>(8) as usize,
                score: 0.0,
            };
            (hit.chunk_id, hit)
        })
        .collect();
    // A chunk deleted between the two queries is left out.
    Ok(scored.iter().filter_map(|(id, score)| by_id.remove(id).map(|h| Hit { score: *score, ..h })).collect())
}

/// Problems found: documents whose chunk count disagrees with their chunks, collections
/// without their chunk table or without a valid vector index.
pub(super) fn check(c: &mut Client, features: Features) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let rows = c
        .query(
            "SELECT d.name, d.chunks, (SELECT COUNT(*) FROM hearth.chunks c \
             WHERE c.collection_id = d.collection_id AND c.document_id = d.id) FROM hearth.documents d",
            &[],
        )
        .map_err(db)?;
    for r in rows {
        let (name, want, got): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if want != got {
            problems.push(format!("document {name}: {got} chunks stored, {want} expected"));
        }
    }
    let rows = c
        .query(
            "SELECT c.name, c.dim, to_regclass('hearth.chunks_' || c.id) IS NOT NULL, EXISTS ( \
             SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam \
             WHERE x.indrelid = to_regclass('hearth.chunks_' || c.id) AND a.amname = 'hnsw' AND x.indisvalid) \
             FROM hearth.collections c",
            &[],
        )
        .map_err(db)?;
    for r in rows {
        let (name, dim, table, index): (String, i32, bool, bool) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if !table {
            problems.push(format!("collection {name} has no chunk table"));
        } else if !index && vector_expr(dim as usize, features).is_some() {
            problems.push(format!("collection {name} has no valid vector index"));
        }
    }
    Ok(problems)
}
