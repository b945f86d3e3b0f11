//! The store suite: every `VectorStore` must pass it, the embedded SQLite store and the
//! PostgreSQL one (against the real server `scripts/test` starts: HEARTH_TEST_POSTGRES_URL).
//! Vectors are synthetic unit vectors; end-to-end tests use the real embedding model.

use hearth_rag::fixtures::postgres_database;
use hearth_rag::postgres::PgStore;
use hearth_rag::sqlite::SqliteStore;
use hearth_rag::store::{NewChunk, NewDocument, PutOutcome, Query, SearchMode, StoreError, VectorStore};
use serde_json::json;
use sha2::{Digest, Sha256};

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
        sha256: Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
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

    // Ingestion jobs, as every server sharing the store sees them.
    s.put_job("job-1", &json!({"status": "queued"})).unwrap();
    s.put_job("job-1", &json!({"status": "running", "chunks_done": 3})).unwrap();
    let (state, at) = s.job("job-1").unwrap().unwrap();
    assert_eq!(state, json!({"status": "running", "chunks_done": 3}));
    assert!(at > 1_700_000_000);
    assert!(s.job("job-2").unwrap().is_none());
}

/// A small xorshift generator: the same vectors on every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

/// At a size where the vector index matters: nearest neighbours agree with brute force, and a
/// filter matching a few documents among many still finds all their chunks.
fn at_scale(s: &dyn VectorStore) {
    const W: usize = 32;
    s.create_collection("many", W, "synthetic").unwrap();
    let mut rng = Rng(7);
    let mut all: Vec<(String, Vec<f32>)> = Vec::new();
    for d in 0..40 {
        let team = if d % 20 == 3 { "rare" } else { "common" };
        let chunks: Vec<NewChunk> = (0..50)
            .map(|i| {
                let text = format!("doc {d} chunk {i}");
                let embedding = rng.unit(W);
                all.push((text.clone(), embedding.clone()));
                NewChunk { text, page: None, section: None, start: 0, end: 1, embedding }
            })
            .collect();
        let body = format!("body {d}");
        s.put_document("many", doc(&format!("d{d}"), &body, json!({ "team": team })), chunks).unwrap();
    }
    let mut found = 0;
    for _ in 0..20 {
        let v = rng.unit(W);
        let mut exact: Vec<(f32, &str)> =
            all.iter().map(|(t, e)| (e.iter().zip(&v).map(|(a, b)| a * b).sum::<f32>(), t.as_str())).collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let q = Query {
            vector: Some(v),
            text: String::new(),
            mode: SearchMode::Vector,
            top_k: 10,
            filter: Default::default(),
        };
        let hits = s.search("many", &q).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        assert!((hits[0].score - exact.iter().find(|e| e.1 == hits[0].text).unwrap().0).abs() < 1e-3, "cosine score");
        found += hits.iter().filter(|h| exact[..10].iter().any(|e| e.1 == h.text)).count();
    }
    assert!(found >= 190, "recall@10 {found}/200 against brute force");
    let q = Query {
        vector: Some(rng.unit(W)),
        text: String::new(),
        mode: SearchMode::Vector,
        top_k: 100,
        filter: json!({"team": "rare"}).as_object().cloned().unwrap(),
    };
    let hits = s.search("many", &q).unwrap();
    assert_eq!(hits.len(), 100, "both rare documents' chunks (2 x 50) found through the filter");
    assert!(hits.iter().all(|h| h.document == "d3" || h.document == "d23"));
    // Words in every chunk do not rank (they would read the whole collection for nothing):
    // only the chunks with "17" match (doc 17's 50 chunks and chunk 17 of the 39 others).
    let q = Query {
        vector: None,
        text: "chunk doc 17".into(),
        mode: SearchMode::Keyword,
        top_k: 1000,
        filter: Default::default(),
    };
    let hits = s.search("many", &q).unwrap();
    assert_eq!(hits.len(), 89);
    assert!(hits.iter().all(|h| h.text.split(' ').any(|w| w == "17")));
    assert!(s.delete_collection("many").unwrap());
}

#[test]
fn sqlite_store_passes_the_suite_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("hearth-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rag.sqlite");
    {
        let s = SqliteStore::open(&path).unwrap();
        suite(&s);
        at_scale(&s);
    }
    after_restart(&SqliteStore::open(&path).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

/// What the suite left, seen by a store opened afresh.
fn after_restart(s: &dyn VectorStore) {
    assert_eq!(s.check().unwrap(), Vec::<String>::new(), "consistent after the suite");
    let c = s.collection("notes").unwrap().unwrap();
    assert_eq!((c.documents, c.chunks), (1, 1));
    assert_eq!(s.turns("s1").unwrap().len(), 3, "sessions persist");
    let hits = s.search("notes", &query(SearchMode::Vector, "", Some(1))).unwrap();
    assert_eq!(hits[0].text, "zebra migration facts", "vectors searchable after reopening");
    assert!(s.delete_collection("notes").unwrap());
    assert!(s.list_collections().unwrap().is_empty());
}

#[test]
fn postgres_store_passes_the_suite_and_survives_a_restart() {
    let Some(url) = postgres_database("suite") else { return };
    {
        let s = PgStore::connect(&url).unwrap();
        suite(&s);
        at_scale(&s);
        // check() sees a collection whose vector index is gone.
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        s.create_collection("victim", DIM, "m").unwrap();
        let id = |c: &mut postgres::Client, n: &str| -> i64 {
            c.query_one("SELECT id FROM hearth.collections WHERE name = $1", &[&n]).unwrap().get(0)
        };
        let victim = id(&mut c, "victim");
        c.batch_execute(&format!("DROP INDEX hearth.chunks_{victim}_hnsw")).unwrap();
        assert_eq!(s.check().unwrap(), ["collection victim has no valid vector index"]);
        assert!(s.delete_collection("victim").unwrap());
        // A crash after a collection's deletion committed, before its chunk table was dropped:
        // the next start drops the table.
        s.create_collection("orphan", DIM, "m").unwrap();
        let orphan = id(&mut c, "orphan");
        c.batch_execute("DELETE FROM hearth.collections WHERE name = 'orphan'").unwrap();
        let table = format!("hearth.chunks_{orphan}");
        let exists = |c: &mut postgres::Client| -> bool {
            c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).unwrap().get(0)
        };
        assert!(exists(&mut c));
        drop(PgStore::connect(&url).unwrap());
        assert!(!exists(&mut c), "orphan chunk table dropped at start");
    }
    after_restart(&PgStore::connect(&url).unwrap());
}

#[test]
fn postgres_replicas_share_one_store() {
    let Some(url) = postgres_database("replicas") else { return };
    let (a, b) = (PgStore::connect(&url).unwrap(), PgStore::connect(&url).unwrap());
    a.create_collection("shared", DIM, "m").unwrap();
    assert!(matches!(b.create_collection("shared", DIM, "m"), Err(StoreError::CollectionExists(_))));
    // Both replicas store the same names at once, with different content: every name ends up
    // with exactly one document, whole.
    std::thread::scope(|scope| {
        for (r, store) in [(0, &a), (1, &b)] {
            scope.spawn(move || {
                for i in 0..12 {
                    let body = format!("replica {r} doc {i}");
                    let texts: Vec<(&str, usize)> = vec![(body.as_str(), i); 3];
                    store.put_document("shared", doc(&format!("n{i}"), &body, json!({})), chunks(&texts)).unwrap();
                }
            });
        }
    });
    let c = b.collection("shared").unwrap().unwrap();
    assert_eq!((c.documents, c.chunks), (12, 36));
    assert_eq!(a.check().unwrap(), Vec::<String>::new());
    // The same content from both at once is stored once.
    let put = |s: &PgStore| {
        s.put_document("shared", doc("twin", "identical body", json!({})), chunks(&[("identical twins", 1)]))
    };
    let outcomes: Vec<PutOutcome> = std::thread::scope(|scope| {
        let (x, y) = (scope.spawn(|| put(&a)), scope.spawn(|| put(&b)));
        vec![x.join().unwrap().unwrap().1, y.join().unwrap().unwrap().1]
    });
    assert!(outcomes.contains(&PutOutcome::Created) && outcomes.contains(&PutOutcome::Unchanged), "{outcomes:?}");
    // What one replica writes, the other searches and deletes.
    let hits = b.search("shared", &query(SearchMode::Keyword, "twins", None)).unwrap();
    assert_eq!(hits[0].document, "twin");
    assert!(a.delete_document("shared", hits[0].document_id).unwrap());
    assert!(b.search("shared", &query(SearchMode::Keyword, "twins", None)).unwrap().is_empty());
    a.append_turns("conv", &[("user".into(), "hi".into())]).unwrap();
    assert_eq!(b.turns("conv").unwrap().len(), 1);
}

#[test]
fn postgres_refuses_what_it_cannot_reach() {
    let Err(e) = PgStore::connect("postgres://nobody@127.0.0.1:1/none") else { panic!("connected to port 1") };
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert!(matches!(PgStore::connect("postgres://h:notaport/x"), Err(StoreError::Invalid(_))));
}

/// A TCP relay to `upstream` that can be cut: `cut()` closes every relayed connection and
/// stops accepting.
struct Relay {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (o, st) = (open.clone(), stopped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, std::net::TcpStream::connect(upstream)) else { continue };
                let mut guard = o.lock().unwrap();
                guard.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || std::io::copy(&mut from, &mut to));
                }
            }
        });
        Self { addr, open, stopped }
    }

    fn cut(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wakes the accept loop, which ends
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn postgres_gone_is_unavailable_not_a_failure() {
    let Some(url) = postgres_database("gone") else { return };
    let config: postgres::Config = url.parse().unwrap();
    let upstream = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => format!("{h}:{}", config.get_ports()[0]).parse().unwrap(),
        other => panic!("{other:?}"),
    };
    let relay = Relay::start(upstream);
    let s = PgStore::connect(&format!("postgres://hearth@{}/{}", relay.addr, config.get_dbname().unwrap())).unwrap();
    s.create_collection("c", DIM, "m").unwrap();
    assert!(s.search("c", &query(SearchMode::Keyword, "x", None)).unwrap().is_empty());
    relay.cut();
    let e = s.search("c", &query(SearchMode::Keyword, "x", None)).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
}

// Keyword search on SQLite ranked with FTS5's bm25 over one index shared by every collection:
// a key's scores moved when another key's documents held the word (issue 28).
#[test]
fn keyword_scores_do_not_depend_on_other_collections() {
    let dir = std::env::temp_dir().join(format!("hearth-store-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = SqliteStore::open(&dir.join("rag.sqlite")).unwrap();
    s.create_collection("alice/notes", DIM, "m").unwrap();
    let texts: Vec<String> = (0..20).map(|i| format!("note {i} about gardens and the secretword plan")).collect();
    let own: Vec<(&str, usize)> = texts.iter().map(|t| (t.as_str(), 1)).collect();
    s.put_document("alice/notes", doc("a.md", "a", json!({})), chunks(&own)).unwrap();
    let before = s.search("alice/notes", &query(SearchMode::Keyword, "secretword gardens", None)).unwrap();
    s.create_collection("bob/notes", DIM, "m").unwrap();
    let theirs: Vec<String> = (0..300).map(|i| format!("secretword {i} secretword gardens")).collect();
    let theirs: Vec<(&str, usize)> = theirs.iter().map(|t| (t.as_str(), 2)).collect();
    s.put_document("bob/notes", doc("b.md", "b", json!({})), chunks(&theirs)).unwrap();
    let after = s.search("alice/notes", &query(SearchMode::Keyword, "secretword gardens", None)).unwrap();
    let scores = |h: &[hearth_rag::store::Hit]| h.iter().map(|h| (h.chunk_id, h.score)).collect::<Vec<_>>();
    assert!(!before.is_empty());
    assert_eq!(scores(&before), scores(&after), "another collection's words change nothing");
    std::fs::remove_dir_all(&dir).ok();
}
