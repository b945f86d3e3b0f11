//! `kill -9` during ingestion, then a restart: the store is consistent, no document is
//! partial, and the interrupted uploads can be sent again. Runs the real binary.

mod common;

use common::{free_port, start};
use hearth_rag::sqlite::SqliteStore;
use hearth_rag::store::VectorStore;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn page(i: usize, paragraphs: usize) -> Vec<u8> {
    let mut md = format!("# Report {i}\n\n");
    for p in 0..paragraphs {
        md.push_str(&format!(
            "Paragraph {p} of report {i} notes that the unit {i}-{p} passed inspection on schedule. "
        ));
        md.push_str("Further remarks follow about maintenance, staffing and the weather at the site.\n\n");
    }
    md.into_bytes()
}

#[test]
fn kill_9_during_ingest_leaves_a_consistent_store() {
    let dir = std::env::temp_dir().join(format!("hearth-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("rag.sqlite");
    let port = free_port();
    let mut child = start(&store, port);
    let url = format!("http://127.0.0.1:{port}");
    let c = reqwest::blocking::Client::new();
    assert_eq!(c.post(format!("{url}/collections")).json(&json!({"name": "k"})).send().unwrap().status(), 201);
    let upload = |docs: Vec<(String, Vec<u8>)>| -> Vec<String> {
        let mut form = reqwest::blocking::multipart::Form::new();
        for (name, bytes) in docs {
            form = form.part("file", reqwest::blocking::multipart::Part::bytes(bytes).file_name(name));
        }
        let accepted: Value =
            c.post(format!("{url}/collections/k/documents")).multipart(form).send().unwrap().json().unwrap();
        accepted["data"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
    };
    let job = |id: &str| -> Value { c.get(format!("{url}/jobs/{id}")).send().unwrap().json().unwrap() };
    // One small document completes first.
    let first = upload(vec![("r0.md".into(), page(0, 5))]).remove(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while job(&first)["status"] != "done" {
        assert!(Instant::now() < deadline, "first ingest did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Then large ones; kill as soon as embedding is under way.
    let jobs = upload((1..8).map(|i| (format!("r{i}.md"), page(i, 400))).collect());
    while !jobs.iter().any(|j| job(j)["chunks_done"].as_u64() > Some(0)) {
        assert!(Instant::now() < deadline, "ingest did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    {
        let s = SqliteStore::open(&store).unwrap();
        assert_eq!(s.check().unwrap(), Vec::<String>::new(), "no partial document, indexes agree");
        let docs = s.list_documents("k").unwrap();
        assert!(!docs.is_empty() && docs.len() < 8, "{} documents survived", docs.len());
        assert!(docs.iter().all(|d| d.chunks > 0));
    }
    let port = free_port();
    let mut child = start(&store, port);
    let url = format!("http://127.0.0.1:{port}");
    let hits: Value = c
        .post(format!("{url}/collections/k/search"))
        .json(&json!({"query": "inspection", "mode": "keyword"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!hits["data"].as_array().unwrap().is_empty(), "the survivors are searchable after restart");
    // The restarted server still knows the jobs: finished ones as they ended, the others as
    // interrupted (never "running" forever).
    let after = |id: &str| -> Value { c.get(format!("{url}/jobs/{id}")).send().unwrap().json().unwrap() };
    assert_eq!(after(&first)["status"], "done");
    let states: Vec<Value> = jobs.iter().map(|j| after(j)).collect();
    let interrupted =
        |s: &Value| s["status"] == "failed" && s["error"].as_str().is_some_and(|e| e.contains("interrupted"));
    assert!(states.iter().all(|s| s["status"] == "done" || interrupted(s)), "{states:?}");
    assert!(states.iter().any(interrupted), "{states:?}");
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
}
