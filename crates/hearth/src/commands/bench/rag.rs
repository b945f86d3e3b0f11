//! `hearth bench rag`: search latency of a store (the embedded SQLite one, or PostgreSQL with
//! `--store postgres://...`) at a given number of chunks (synthetic chunks: random unit
//! vectors and text drawn from a word list), per search mode, and ingest throughput of real
//! documents through the whole pipeline (parse, chunk with the embedding model's tokens,
//! embed, store) on an in-process server.

use crate::config::ModelArgs;
use clap::Args;
use hearth_rag::location::StoreLocation;
use hearth_rag::store::{NewChunk, NewDocument, Query, SearchMode, VectorStore};
use std::sync::Arc;
use std::time::Instant;

/// `hearth bench rag` arguments.
#[derive(Debug, Args)]
pub struct RagBenchArgs {
    /// Store sizes to measure, in chunks (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub chunks: Vec<usize>,
    /// Searches per mode and size.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// The store to measure: a PostgreSQL URL (its collections `bench-N` and `ingest` are
    /// replaced). Default: a fresh SQLite file in the temporary directory per size.
    #[arg(long)]
    pub store: Option<String>,
    /// Keep the `bench-N` collections of a `--store` after measuring, and measure a kept one
    /// again instead of filling it anew.
    #[arg(long)]
    pub keep: bool,
    /// Embedding width of the synthetic chunks.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Also measure ingest of this many generated Markdown pages with the real embedding model
    /// (0 skips).
    #[arg(long, default_value_t = 40)]
    pub ingest_pages: usize,
    /// Embedding model for the ingest measurement.
    #[arg(long, default_value = "all-MiniLM-L6-v2.Q8_0")]
    pub model: String,
    /// Models directory and loading options.
    #[command(flatten)]
    pub models: ModelArgs,
}

const WORDS: &[&str] = &[
    "river", "harbour", "lantern", "orchard", "granite", "meadow", "copper", "violet", "thunder", "saffron", "glacier",
    "pepper", "falcon", "marble", "willow", "ember", "canyon", "velvet", "cobalt", "juniper", "quartz", "tundra",
    "maple", "cinder", "lagoon", "harvest", "beacon", "prairie", "summit", "ferry", "bramble", "pylon", "tide",
    "cedar", "dune", "anchor", "kestrel", "basalt", "clover", "delta",
];

/// A small xorshift generator: the same chunks on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| (self.next() % 20001) as f32 / 10000.0 - 1.0).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        v.into_iter().map(|x| x / n).collect()
    }

    /// `n` words with a Zipf-like frequency over a 5000-word vocabulary (the list's words and
    /// made-up ones), as in real text: a few words everywhere, most words rare.
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| {
                let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
                let rank = (5000f64.powf(u) as usize).saturating_sub(1);
                match WORDS.get(rank) {
                    Some(w) => (*w).to_string(),
                    None => format!("w{rank}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Fills collection `name` afresh with `n` chunks (documents of 500 chunks); returns seconds
/// taken.
fn fill(store: &dyn VectorStore, name: &str, n: usize, dim: usize, rng: &mut Rng) -> anyhow::Result<f64> {
    store.delete_collection(name)?;
    store.create_collection(name, dim, "synthetic")?;
    let t0 = Instant::now();
    let mut made = 0;
    let mut doc = 0;
    while made < n {
        let k = 500.min(n - made);
        let chunks = (0..k)
            .map(|_| {
                let text = rng.words(40);
                let end = text.len();
                NewChunk { text, page: None, section: None, start: 0, end, embedding: rng.unit(dim) }
            })
            .collect();
        let d = NewDocument {
            name: format!("doc-{doc}"),
            title: None,
            sha256: format!("{doc:064x}"),
            metadata: Default::default(),
            bytes: 0,
        };
        store.put_document(name, d, chunks)?;
        made += k;
        doc += 1;
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    super::measure::percentile(std::mem::take(&mut v), p)
}

/// Where size `n` is measured: the `--store` URL, or a fresh SQLite file (and its directory).
fn location(a: &RagBenchArgs, n: usize) -> (StoreLocation, Option<std::path::PathBuf>) {
    match &a.store {
        Some(s) => (StoreLocation::parse(s), None),
        None => {
            let dir = std::env::temp_dir().join(format!("hearth-bench-rag-{}-{n}", std::process::id()));
            (StoreLocation::Sqlite(dir.join("rag.sqlite")), Some(dir))
        }
    }
}

/// Runs the benchmark and prints tables.
///
/// # Errors
/// When a store cannot be created or the model cannot be loaded.
pub async fn run(a: RagBenchArgs) -> anyhow::Result<()> {
    // Store calls block (PostgreSQL's client runs its own runtime): off the async threads.
    tokio::task::block_in_place(|| search_table(&a))?;
    if a.ingest_pages > 0 {
        ingest(&a).await?;
    }
    Ok(())
}

fn search_table(a: &RagBenchArgs) -> anyhow::Result<()> {
    println!("| store | chunks | fill s | mode | p50 ms | p95 ms |");
    println!("|---|---:|---:|---|---:|---:|");
    for &n in &a.chunks {
        let (loc, dir) = location(a, n);
        let kind = match loc {
            StoreLocation::Sqlite(_) => "sqlite",
            StoreLocation::Postgres(_) => "postgres",
        };
        let name = format!("bench-{n}");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let kept = a.keep && dir.is_none() && loc.open()?.collection(&name)?.is_some_and(|c| c.chunks == n as u64);
        let fill_s = if kept { 0.0 } else { fill(&*loc.open()?, &name, n, a.dim, &mut rng)? };
        if let (StoreLocation::Postgres(url), false) = (&loc, kept) {
            // Measure the steady state, after autovacuum's work rather than during it.
            hearth_rag::postgres::PgStore::connect(url)?.vacuum()?;
        }
        // Reopen: searches run against what is on disk (SQLite: the index rebuilt from the
        // file, as after a restart).
        let store = loc.open()?;
        for mode in [SearchMode::Vector, SearchMode::Keyword, SearchMode::Hybrid] {
            let mut ms = Vec::with_capacity(a.queries);
            for _ in 0..a.queries {
                let q = Query {
                    vector: Some(rng.unit(a.dim)),
                    text: rng.words(4),
                    mode,
                    top_k: 5,
                    filter: Default::default(),
                };
                let t0 = Instant::now();
                store.search(&name, &q)?;
                ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            println!(
                "| {kind} | {n} | {fill_s:.1} | {mode:?} | {:.2} | {:.2} |",
                percentile(ms.clone(), 0.5),
                percentile(ms, 0.95)
            );
        }
        if !(a.keep && dir.is_none()) {
            store.delete_collection(&name)?;
        }
        drop(store);
        if let Some(dir) = dir {
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    println!("peak RSS of this process (VmHWM): {:.0} MB", super::measure::rss_mb("VmHWM:"));
    Ok(())
}

/// Ingest throughput through the HTTP API of an in-process server.
async fn ingest(a: &RagBenchArgs) -> anyhow::Result<()> {
    let settings = crate::config::bench_serve_args(&a.models)?.validate()?;
    let models = Arc::new(crate::commands::serve::build_manager(&settings)?);
    let (loc, dir) = location(a, 0);
    let store = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let store = loc.open()?;
        store.delete_collection("ingest")?;
        Ok(store)
    })?;
    let rag = hearth_server::services::retrieval::Rag::new(store, a.model.clone(), 64 << 20);
    let state = hearth_server::AppState::new(models, settings.limits).with_rag(rag);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    let c = reqwest::Client::new();
    c.post(format!("{url}/collections"))
        .json(&serde_json::json!({"name": "ingest"}))
        .send()
        .await?
        .error_for_status()?;
    let mut rng = Rng(42);
    let mut md = String::new();
    for p in 0..a.ingest_pages {
        md.push_str(&format!("# Page {p}\n\n"));
        for _ in 0..6 {
            md.push_str(&rng.words(60));
            md.push_str(".\n\n");
        }
    }
    let t0 = Instant::now();
    let part = reqwest::multipart::Part::bytes(md.clone().into_bytes()).file_name("bench.md");
    let res: serde_json::Value = c
        .post(format!("{url}/collections/ingest/documents"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let job = res["data"][0]["id"].as_str().unwrap_or_default().to_string();
    let state = loop {
        let s: serde_json::Value = c.get(format!("{url}/jobs/{job}")).send().await?.json().await?;
        if s["status"] == "done" || s["status"] == "failed" {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(state["status"] == "done", "ingest failed: {state}");
    let chunks = state["chunks_total"].as_u64().unwrap_or(0);
    println!(
        "ingest: {} bytes of Markdown -> {chunks} chunks in {secs:.2} s = {:.1} chunks/s ({:.0} KB/s), model {}",
        md.len(),
        chunks as f64 / secs,
        md.len() as f64 / 1024.0 / secs,
        a.model
    );
    if let Some(dir) = dir {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
