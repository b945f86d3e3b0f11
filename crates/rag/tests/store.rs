//! The store suite: every `VectorStore` must pass it (run here against the embedded SQLite
//! store). Vectors are synthetic unit vectors; end-to-end tests use the real embedding model.

use hearth_rag::sqlite::SqliteStore;
use hearth_rag::store::{NewChunk, NewDocument, PutOutcome, Query, SearchMode, StoreError, VectorStore};
use serde_json::json;

const DIM: usize = 8;

/// A unit vector pointing mostly along axis `axis`.
fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.05; DIM];
    v[axis % DIM] = 1.0;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn doc(name: &str, body: &str, meta: serde_json::Value) -> NewDocument {
    NewDocument {
        name: name.into(),
        title: Some(format!("Title of {name}")),
        sha256: format!("{:x}", body.len() * 7919 + body.bytes().map(usize::from).sum::<usize>()),
        metadata: meta.as_object().cloned().unwrap_or_default(),
        bytes: body.len() as u64,
    }
}

fn chunks(texts: &[(&str, usize)]) -> Vec<NewChunk> {
    texts
        .iter()
        .map(|(t, a)| NewChunk {
            text: t.to_string(),
            page: Some(1),
            section: None,
            start: 0,
            end: t.len(),
            embedding: axis(*a),
        })
        .collect()
}

fn query(mode: SearchMode, text: &str, axis_: Option<usize>) -> Query {
    Query { vector: axis_.map(axis), text: text.into(), mode, top_k: 3, filter: Default::default() }
}

fn suite(s: &dyn VectorStore) {
    assert!(matches!(s.create_collection("bad name!", DIM, "m"), Err(StoreError::Invalid(_))));
    let c = s.create_collection("notes", DIM, "minilm").unwrap();
    assert_eq!((c.documents, c.chunks, c.dim), (0, 0, DIM));
    assert!(matches!(s.create_collection("notes", DIM, "m"), Err(StoreError::CollectionExists(_))));

    let (a, out) = s
        .put_document(
            "notes",
            doc("a.md", "alpha", json!({"team": "red"})),
            chunks(&[("zebra crossing rules", 1), ("apple pie recipe", 2)]),
        )
        .unwrap();
    assert_eq!(out, PutOutcome::Created);
    let (b, _) = s
        .put_document("notes", doc("b.md", "beta", json!({"team": "blue"})), chunks(&[("quantum flux capacitor", 3)]))
        .unwrap();
    let (same, out) = s.put_document("notes", doc("a-copy.md", "alpha", json!({})), chunks(&[("x", 0)])).unwrap();
    assert_eq!((same.id, out), (a.id, PutOutcome::Unchanged), "same content is stored once");
    let c = s.collection("notes").unwrap().unwrap();
    assert_eq!((c.documents, c.chunks), (2, 3));
    assert_eq!(s.find_by_hash("notes", &a.sha256).unwrap().map(|d| d.id), Some(a.id));
    assert!(s.find_by_hash("notes", "0").unwrap().is_none());

    let hits = s.search("notes", &query(SearchMode::Vector, "", Some(3))).unwrap();
    assert_eq!(hits[0].text, "quantum flux capacitor");
    assert_eq!(hits[0].document, "b.md");
    assert!(hits[0].score > 0.9);
    let hits = s.search("notes", &query(SearchMode::Keyword, "capacitor OR (", None)).unwrap();
    assert_eq!(hits.len(), 1, "query syntax in user text is harmless");
    assert_eq!(hits[0].document_id, b.id);
    let hits = s.search("notes", &query(SearchMode::Hybrid, "apple", Some(2))).unwrap();
    assert_eq!(hits[0].text, "apple pie recipe");
    let mut filtered = query(SearchMode::Vector, "", Some(3));
    filtered.filter = json!({"team": "red"}).as_object().cloned().unwrap();
    assert!(s.search("notes", &filtered).unwrap().iter().all(|h| h.document == "a.md"));
    assert!(matches!(s.search("notes", &query(SearchMode::Vector, "", None)), Err(StoreError::Invalid(_))));

    // A changed document under the same name replaces the old chunks.
    let (a2, out) = s
        .put_document("notes", doc("a.md", "alpha v2", json!({"team": "red"})), chunks(&[("zebra migration facts", 1)]))
        .unwrap();
    assert_eq!(out, PutOutcome::Replaced);
    assert_ne!(a2.id, a.id);
    assert!(s.search("notes", &query(SearchMode::Keyword, "apple", None)).unwrap().is_empty(), "old chunks gone");
    assert_eq!(s.search("notes", &query(SearchMode::Vector, "", Some(1))).unwrap()[0].text, "zebra migration facts");
    let wrong = NewChunk { embedding: vec![1.0; 3], ..chunks(&[("w", 0)]).remove(0) };
    assert!(matches!(
        s.put_document("notes", doc("w", "w", json!({})), vec![wrong]),
        Err(StoreError::Dimension { .. })
    ));

    assert!(s.delete_document("notes", b.id).unwrap());
    assert!(!s.delete_document("notes", b.id).unwrap());
    assert!(s.search("notes", &query(SearchMode::Keyword, "quantum", None)).unwrap().is_empty());
    assert_eq!(s.list_documents("notes").unwrap().iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["a.md"]);
    assert!(matches!(s.list_documents("nope"), Err(StoreError::NoCollection(_))));

    // Conversation memory.
    let t = |r: &str, c: &str| (r.to_string(), c.to_string());
    s.append_turns("s1", &[t("user", "hi"), t("assistant", "hello")]).unwrap();
    s.append_turns("s1", &[t("user", "again")]).unwrap();
    s.append_turns("s2", &[t("user", "other")]).unwrap();
    let turns = s.turns("s1").unwrap();
    assert_eq!(turns.iter().map(|t| t.content.as_str()).collect::<Vec<_>>(), ["hi", "hello", "again"]);
    assert_eq!(s.list_sessions().unwrap().iter().find(|x| x.id == "s1").unwrap().turns, 3);
    assert!(s.turns("none").unwrap().is_empty());
    assert!(matches!(s.append_turns("bad id", &[t("user", "x")]), Err(StoreError::Invalid(_))));
    assert!(s.delete_session("s2").unwrap());
    assert!(!s.delete_session("s2").unwrap());
}

#[test]
fn sqlite_store_passes_the_suite_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("hearth-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rag.sqlite");
    {
        let s = SqliteStore::open(&path).unwrap();
        suite(&s);
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.check().unwrap(), Vec::<String>::new(), "consistent after the suite");
    let c = s.collection("notes").unwrap().unwrap();
    assert_eq!((c.documents, c.chunks), (1, 1));
    assert_eq!(s.turns("s1").unwrap().len(), 3, "sessions persist");
    let hits = s.search("notes", &query(SearchMode::Vector, "", Some(1))).unwrap();
    assert_eq!(hits[0].text, "zebra migration facts", "the vector index was rebuilt from the file");
    assert!(s.delete_collection("notes").unwrap());
    assert!(s.list_collections().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
