//! `hearth bench embeddings`: embedding throughput for batches of sentences, throughput of
//! many concurrent one-sentence clients (batching across requests), single-sentence latency and
//! peak memory, on the raw engine and over HTTP.
//!
//! Sentences are generated from a fixed word list (about 16 tokens each with [CLS]/[SEP]) and
//! differ per request; the reported token count is what the model counted.

use crate::config::{ModelArgs, ServeArgs};
use clap::Args;
use hearth_engine::{EmbedInput, EmbedRequest, ModelManager};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// `hearth bench embeddings` arguments.
#[derive(Debug, Args)]
pub struct EmbedBenchArgs {
    /// Embedding model id.
    #[arg(long, default_value = "all-MiniLM-L6-v2.Q8_0")]
    pub model: String,
    /// Sentences per request for the batch measurements (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    pub batch_sizes: Vec<usize>,
    /// Concurrent clients sending one sentence per request (comma-separated; 0 skips).
    #[arg(long, value_delimiter = ',', default_value = "32")]
    pub concurrency: Vec<usize>,
    /// Sentences embedded per throughput measurement.
    #[arg(long, default_value_t = 2048)]
    pub sentences: usize,
    /// Sequential one-sentence requests for the latency measurement.
    #[arg(long, default_value_t = 300)]
    pub latency_requests: usize,
    /// Raw engine, HTTP, or a running server.
    #[command(flatten)]
    pub target: super::measure::TargetArgs,
    /// Tokens per embedding decode call (see `hearth serve --help`).
    #[arg(long, default_value_t = 256)]
    pub embed_batch_tokens: usize,
    /// Inputs per embedding decode call (see `hearth serve --help`).
    #[arg(long, default_value_t = 32)]
    pub embed_batch_inputs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Models directory and loading options.
    #[command(flatten)]
    pub models: ModelArgs,
}

const WORDS: &[&str] = &[
    "the", "small", "red", "house", "stands", "near", "river", "where", "children", "play", "every", "morning",
    "while", "old", "men", "read", "papers", "about", "market", "prices", "and", "weather", "in", "city", "green",
    "trees", "grow", "tall", "beside", "road", "people", "walk", "their", "dogs", "after", "work", "music", "plays",
    "from", "open", "window", "a", "cat", "sleeps", "on", "warm", "stone", "wall",
];

/// Sentence `i`: 13 words and a full stop (16 tokens with [CLS] and [SEP] for MiniLM).
fn sentence(i: usize) -> String {
    let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut words = Vec::with_capacity(13);
    for _ in 0..13 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        words.push(WORDS[(x >> 33) as usize % WORDS.len()]);
    }
    format!("{}.", words.join(" "))
}

/// One result row.
#[derive(Debug, serde::Serialize)]
struct Row {
    mode: &'static str,
    what: String,
    sentences: usize,
    tokens_per_sentence: f64,
    sentences_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    errors: usize,
}

/// How one request is sent.
#[derive(Clone)]
enum Target {
    Raw(Arc<ModelManager>),
    Http(reqwest::Client, String),
}

impl Target {
    fn mode(&self) -> &'static str {
        match self {
            Target::Raw(_) => "raw",
            Target::Http(..) => "http",
        }
    }

    /// Embeds `texts`; returns the tokens the model counted.
    async fn embed(&self, model: &str, texts: Vec<String>) -> anyhow::Result<u32> {
        match self {
            Target::Raw(m) => {
                let inputs = texts.into_iter().map(EmbedInput::Text).collect();
                let out = m.get_embedding(model).await?.embed(EmbedRequest { inputs, truncate: false }).await?;
                Ok(out.prompt_tokens)
            }
            Target::Http(client, url) => {
                let body = serde_json::json!({"model": model, "input": texts, "encoding_format": "float"});
                let res = client.post(format!("{url}/v1/embeddings")).json(&body).send().await?;
                anyhow::ensure!(res.status().is_success(), "HTTP {}: {}", res.status(), res.text().await?);
                let v: serde_json::Value = res.json().await?;
                Ok(v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as u32)
            }
        }
    }
}

/// Sends `total` sentences in requests of `batch` from `clients` concurrent clients.
async fn measure(t: &Target, model: &str, what: String, total: usize, batch: usize, clients: usize) -> Row {
    let requests = total.div_ceil(batch).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (t, model, next) = (t.clone(), model.to_string(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let r = next.fetch_add(1, Ordering::Relaxed);
                    if r >= requests {
                        return out;
                    }
                    let texts = (0..batch).map(|k| sentence(r * batch + k)).collect();
                    let t0 = Instant::now();
                    let res = t.embed(&model, texts).await;
                    out.push((t0.elapsed().as_secs_f64() * 1000.0, res));
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.unwrap_or_default());
    }
    let wall = start.elapsed().as_secs_f64();
    let errors = results.iter().filter(|r| r.1.is_err()).count();
    if let Some((_, Err(e))) = results.iter().find(|r| r.1.is_err()) {
        eprintln!("first error: {e}");
    }
    let tokens: u32 = results.iter().filter_map(|r| r.1.as_ref().ok()).sum();
    let ok = results.len() - errors;
    let latencies: Vec<f64> = results.iter().map(|r| r.0).collect();
    Row {
        mode: t.mode(),
        what,
        sentences: ok * batch,
        tokens_per_sentence: f64::from(tokens) / (ok * batch).max(1) as f64,
        sentences_per_s: (ok * batch) as f64 / wall,
        p50_ms: super::measure::percentile(latencies.clone(), 0.5),
        p95_ms: super::measure::percentile(latencies, 0.95),
        errors,
    }
}

fn serve_args(a: &EmbedBenchArgs) -> anyhow::Result<ServeArgs> {
    let mut s = crate::config::bench_serve_args(&a.models)?;
    s.scheduler.parallel = 1;
    s.scheduler.embed_batch_tokens = a.embed_batch_tokens;
    s.scheduler.embed_batch_inputs = a.embed_batch_inputs;
    Ok(s)
}

/// Runs the embedding benchmark and prints a table.
///
/// # Errors
/// When the model cannot be loaded or the server cannot be started.
pub async fn run(a: EmbedBenchArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut targets = Vec::new();
    if let Some(url) = &a.target.url {
        targets.push(Target::Http(client, url.trim_end_matches('/').to_string()));
    } else {
        let settings = serve_args(&a)?.validate()?;
        let m = Arc::new(crate::commands::serve::build_manager(&settings)?);
        m.get_embedding(&a.model).await?;
        println!(
            "model {}  threads {}  batch {} tokens / {} inputs  RSS loaded, idle: {:.0} MB",
            a.model,
            settings.engine.threads,
            a.embed_batch_tokens,
            a.embed_batch_inputs,
            super::measure::rss_mb("VmRSS:")
        );
        if !a.target.http_only {
            targets.push(Target::Raw(m.clone()));
        }
        if !a.target.raw {
            let url = super::measure::local_server(m, settings.limits).await?;
            targets.push(Target::Http(client, url));
        }
    }
    let mut rows = Vec::new();
    println!("| mode | measurement | sentences | tokens/sentence | sentences/s | p50 ms | p95 ms | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for t in &targets {
        // Warm-up: load, first-call allocations.
        t.embed(&a.model, vec![sentence(usize::MAX)]).await?;
        let mut level = |r: Row| {
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {} |",
                r.mode, r.what, r.sentences, r.tokens_per_sentence, r.sentences_per_s, r.p50_ms, r.p95_ms, r.errors
            );
            rows.push(r);
        };
        level(measure(t, &a.model, "single sentence, sequential".into(), a.latency_requests, 1, 1).await);
        for &b in a.batch_sizes.iter().filter(|&&b| b > 0) {
            level(measure(t, &a.model, format!("batches of {b}"), a.sentences.max(b), b, 1).await);
        }
        for &c in a.concurrency.iter().filter(|&&c| c > 0) {
            level(measure(t, &a.model, format!("{c} clients x 1 sentence"), a.sentences, 1, c).await);
        }
    }
    if a.target.url.is_none() {
        println!("peak RSS (VmHWM) of this process: {:.0} MB", super::measure::rss_mb("VmHWM:"));
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn sentences_are_fixed_and_distinct() {
        assert_eq!(sentence(3), sentence(3));
        assert_ne!(sentence(3), sentence(4));
        assert_eq!(sentence(0).split(' ').count(), 13);
    }
}
