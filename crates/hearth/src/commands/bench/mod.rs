//! `hearth bench`: drives the engine over HTTP (a real loopback socket, SSE parsed by the
//! client) and directly (no HTTP), with a given concurrency, prompt length and output length,
//! and reports time to first token, inter-token latency, throughput and errors.
//!
//! Prompts are token ids chosen from a fixed pattern (different per request, so the prefix cache
//! does not help) and sampling is greedy with end-of-generation ignored, so runs are comparable.

mod embed;
pub(crate) mod measure;
mod rag;

use crate::config::{ModelArgs, ServeArgs};
use clap::Args;
use futures::StreamExt;
use hearth_engine::{Event, GenerateRequest, ModelManager, PromptInput, SamplingParams};
use measure::{local_server, percentile, rss_mb, TargetArgs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `hearth bench` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Another benchmark instead of text generation.
    #[command(subcommand)]
    pub other: Option<OtherBench>,
    /// Model id to measure (required for the generation benchmark).
    #[arg(long, default_value = "")]
    pub model: String,
    /// Prompt lengths in tokens (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16,512")]
    pub prompt_tokens: Vec<usize>,
    /// Tokens generated per request (end-of-generation is ignored).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Concurrent clients (comma-separated list of levels).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub concurrency: Vec<usize>,
    /// Requests per level; default: 3 x concurrency.
    #[arg(long)]
    pub requests: Option<usize>,
    /// Raw engine, HTTP, or a running server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Parallel sequences of the in-process engine; default: the highest concurrency level.
    #[arg(long)]
    pub parallel: Option<usize>,
    /// KV cells of the in-process engine (see `hearth serve --help`); 0 = ctx-size x parallel.
    #[arg(long, default_value_t = 0)]
    pub kv_size: u32,
    /// Most prompt tokens per step while other streams decode (see `hearth serve --help`).
    #[arg(long)]
    pub prefill_chunk: Option<usize>,
    /// Step stretch while a prompt is admitted beside decoding streams (see `hearth serve --help`).
    #[arg(long)]
    pub prefill_stretch: Option<f64>,
    /// Instead of the table: TTFT of requests sharing a prefix of this many tokens (a long
    /// system prompt), the first one cold and the rest warm from the prefix cache.
    #[arg(long)]
    pub shared_prefix: Option<usize>,
    /// Instead of the table: inter-token latency of `--concurrency` running streams before and
    /// while a prompt of this many tokens is admitted (raw engine).
    #[arg(long)]
    pub interference: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Models directory and loading options.
    #[command(flatten)]
    pub models: ModelArgs,
}

/// Benchmarks other than text generation.
#[derive(Debug, clap::Subcommand)]
pub enum OtherBench {
    /// Embedding throughput (batches, concurrent clients), latency and memory.
    Embeddings(embed::EmbedBenchArgs),
    /// Document store search latency (10k, 100k chunks) and ingest throughput.
    Rag(rag::RagBenchArgs),
}

/// What one request measured.
#[derive(Debug, Default, Clone)]
struct Trace {
    ttft: Option<Duration>,
    /// Gaps between consecutive tokens.
    itl: Vec<Duration>,
    tokens: usize,
    error: Option<String>,
}

impl Trace {
    fn token(&mut self, start: Instant, last: &mut Option<Instant>) {
        let now = Instant::now();
        match last {
            None => self.ttft = Some(now - start),
            Some(prev) => self.itl.push(now - *prev),
        }
        *last = Some(now);
        self.tokens += 1;
    }
}

fn prompt(n: usize, seed: usize) -> Vec<u32> {
    (0..n).map(|i| 1000 + ((i * 7 + seed * 131) % 5000) as u32).collect()
}

async fn raw_once(models: Arc<ModelManager>, model: String, tokens: Vec<u32>, max: u32) -> Trace {
    let mut t = Trace::default();
    let req = GenerateRequest {
        prompt: PromptInput::Tokens(tokens),
        sampling: SamplingParams::greedy(),
        max_tokens: Some(max),
        stop: vec![],
        ignore_eos: true,
        logprobs: None,
    };
    let start = Instant::now();
    let handle = models.get(&model).await;
    let mut rx = match async { handle?.generate(req).await }.await {
        Ok(rx) => rx,
        Err(e) => return Trace { error: Some(e.to_string()), ..t },
    };
    let mut last = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text { .. } => t.token(start, &mut last),
            Event::Done { .. } => return t,
            Event::Error(e) => return Trace { error: Some(e.to_string()), ..t },
            Event::Started { .. } | Event::Logprobs(_) => {}
        }
    }
    Trace { error: Some("engine closed the stream".into()), ..t }
}

async fn http_once(client: reqwest::Client, url: String, model: String, tokens: Vec<u32>, max: u32) -> Trace {
    let body = serde_json::json!({"model": model, "prompt": tokens, "max_tokens": max, "temperature": 0, "stream": true, "ignore_eos": true});
    let start = Instant::now();
    match http_stream(&client, &url, &body, start).await {
        Ok(t) => t,
        Err(e) => Trace { error: Some(e.to_string()), ..Trace::default() },
    }
}

async fn http_stream(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    start: Instant,
) -> anyhow::Result<Trace> {
    let res = client.post(format!("{url}/v1/completions")).json(body).send().await?;
    anyhow::ensure!(res.status().is_success(), "HTTP {}", res.status());
    let mut stream = res.bytes_stream();
    let (mut buf, mut t, mut last) = (Vec::new(), Trace::default(), None);
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&frame);
            let Some(json) = text.trim().strip_prefix("data: ") else { continue };
            if json == "[DONE]" {
                return Ok(t);
            }
            let v: serde_json::Value = serde_json::from_str(json)?;
            anyhow::ensure!(v.get("error").is_none(), "stream error: {v}");
            if v["choices"][0]["text"].as_str().is_some_and(|s| !s.is_empty()) {
                t.token(start, &mut last);
            }
        }
    }
    anyhow::bail!("stream ended without [DONE]")
}

/// One row of results.
#[derive(Debug, serde::Serialize)]
struct Row {
    mode: &'static str,
    prompt_tokens: usize,
    concurrency: usize,
    requests: usize,
    errors: usize,
    ttft_p50_ms: f64,
    ttft_p95_ms: f64,
    itl_p50_ms: f64,
    itl_p95_ms: f64,
    output_tok_per_s: f64,
    requests_per_s: f64,
}

/// Runs `requests` requests with `concurrency` clients; `one(i)` performs request `i`.
async fn level<F, Fut>(mode: &'static str, prompt_tokens: usize, concurrency: usize, requests: usize, one: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Trace> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let one = Arc::new(one);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, one) = (next.clone(), one.clone());
            tokio::spawn(async move {
                let mut traces = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return traces;
                    }
                    traces.push(one(i).await);
                }
            })
        })
        .collect();
    let mut traces = Vec::new();
    for w in workers {
        traces.extend(w.await.unwrap_or_default());
    }
    let wall = start.elapsed().as_secs_f64();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let ok: Vec<&Trace> = traces.iter().filter(|t| t.error.is_none()).collect();
    if let Some(e) = traces.iter().find_map(|t| t.error.as_ref()) {
        eprintln!("first error: {e}");
    }
    let ttft: Vec<f64> = ok.iter().filter_map(|t| t.ttft.as_ref().map(ms)).collect();
    let itl: Vec<f64> = ok.iter().flat_map(|t| t.itl.iter().map(ms)).collect();
    let tokens: usize = ok.iter().map(|t| t.tokens).sum();
    Row {
        mode,
        prompt_tokens,
        concurrency,
        requests,
        errors: traces.len() - ok.len(),
        ttft_p50_ms: percentile(ttft.clone(), 0.5),
        ttft_p95_ms: percentile(ttft, 0.95),
        itl_p50_ms: percentile(itl.clone(), 0.5),
        itl_p95_ms: percentile(itl, 0.95),
        output_tok_per_s: tokens as f64 / wall,
        requests_per_s: ok.len() as f64 / wall,
    }
}

fn print_header() {
    println!("| mode | prompt | conc | reqs | err | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms | out tok/s | req/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_row(r: &Row) {
    println!(
        "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} |",
        r.mode,
        r.prompt_tokens,
        r.concurrency,
        r.requests,
        r.errors,
        r.ttft_p50_ms,
        r.ttft_p95_ms,
        r.itl_p50_ms,
        r.itl_p95_ms,
        r.output_tok_per_s,
        r.requests_per_s
    );
}

fn serve_args(a: &BenchArgs) -> anyhow::Result<ServeArgs> {
    let mut s = crate::config::bench_serve_args(&a.models)?;
    s.scheduler.parallel = a.parallel.unwrap_or_else(|| a.concurrency.iter().copied().max().unwrap_or(1));
    s.scheduler.kv_size = a.kv_size;
    if let Some(c) = a.prefill_chunk {
        s.scheduler.prefill_chunk = c;
    }
    if let Some(x) = a.prefill_stretch {
        s.scheduler.prefill_stretch = x;
    }
    Ok(s)
}

/// The backends of this build, the devices, and where the model's layers went.
fn runs_on(backends: &str, devices: &[hearth_engine::gpu::Device], p: &hearth_engine::gpu::Placement) -> String {
    let names: Vec<String> =
        devices.iter().map(|d| format!("{} ({}, {} MiB)", d.name, d.description, d.memory_total >> 20)).collect();
    let devices = if names.is_empty() { "none".to_string() } else { names.join(", ") };
    format!("backends {backends}  devices {devices}  layers on the GPU {}/{}", p.layers_gpu, p.layers_total)
}

/// Runs the benchmark and prints a table.
///
/// # Errors
/// When the model cannot be loaded or the server cannot be started.
pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    match a.other {
        Some(OtherBench::Embeddings(e)) => return embed::run(e).await,
        Some(OtherBench::Rag(r)) => return rag::run(r).await,
        None => {}
    }
    anyhow::ensure!(!a.model.is_empty(), "--model is required");
    let client = reqwest::Client::new();
    let mut models = None;
    let url = match &a.target.url {
        Some(u) => {
            let health: serde_json::Value =
                client.get(format!("{u}/health")).send().await?.json().await.unwrap_or_default();
            println!("backends {}  devices {}", health["backends"], health["devices"]);
            Some(u.clone())
        }
        None => {
            let settings = serve_args(&a)?.validate()?;
            println!(
                "model {}  threads {}  parallel {}  max_tokens {}  (greedy, EOS ignored)",
                a.model, settings.engine.threads, settings.engine.parallel, a.max_tokens
            );
            let m = Arc::new(crate::commands::serve::build_manager(&settings)?);
            let h = m.get(&a.model).await?;
            println!("{}", runs_on(&m.backends(), &m.devices(), &h.loaded.placement));
            println!("RSS with the model loaded, idle: {:.0} MB", rss_mb("VmRSS:"));
            let url = if a.target.raw { None } else { Some(local_server(m.clone(), settings.limits).await?) };
            models = Some(m);
            url
        }
    };
    if let (Some(n), Some(m)) = (a.interference, &models) {
        return interference(&a, n, m.clone()).await;
    }
    if let Some(n) = a.shared_prefix {
        return shared_prefix(&a, n, models, url, client).await;
    }
    let mut rows = Vec::new();
    print_header();
    for &p in &a.prompt_tokens {
        for &c in &a.concurrency {
            let n = a.requests.unwrap_or(3 * c).max(1);
            if let (Some(m), false) = (&models, a.target.http_only) {
                let (m, model, max) = (m.clone(), a.model.clone(), a.max_tokens);
                let r = level("raw", p, c, n, move |i| raw_once(m.clone(), model.clone(), prompt(p, 2 * i), max)).await;
                print_row(&r);
                rows.push(r);
            }
            if let Some(url) = &url {
                let (client, url, model, max) = (client.clone(), url.clone(), a.model.clone(), a.max_tokens);
                let r = level("http", p, c, n, move |i| {
                    http_once(client.clone(), url.clone(), model.clone(), prompt(p, 2 * i + 1), max)
                })
                .await;
                print_row(&r);
                rows.push(r);
            }
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}

/// A prompt of `n` shared tokens followed by `tail` tokens unique to request `i`.
fn prefixed(n: usize, tail: usize, i: usize) -> Vec<u32> {
    let mut p = prompt(n, 7919);
    p.extend(prompt(tail, i + 1).iter().map(|t| t + 5000));
    p
}

/// Cold vs warm TTFT with a shared prefix, one request at a time.
async fn shared_prefix(
    a: &BenchArgs,
    n: usize,
    models: Option<Arc<ModelManager>>,
    url: Option<String>,
    client: reqwest::Client,
) -> anyhow::Result<()> {
    let tail = a.prompt_tokens.first().copied().unwrap_or(16);
    let requests = a.requests.unwrap_or(6).max(2);
    let max = a.max_tokens.min(16);
    println!("| mode | shared prefix | unique tail | cold TTFT ms | warm TTFT p50 ms | warm/cold |");
    println!("|---|---:|---:|---:|---:|---:|");
    let modes: Vec<&'static str> =
        [(!a.target.http_only && models.is_some()).then_some("raw"), url.as_ref().map(|_| "http")]
            .into_iter()
            .flatten()
            .collect();
    for (k, mode) in modes.into_iter().enumerate() {
        let mut ttft = Vec::new();
        for i in 0..requests {
            // Each mode gets its own prefix, so the second mode starts cold too.
            let mut p = prefixed(n, tail, i);
            p[0] += k as u32;
            let t = match (mode, &models, &url) {
                ("raw", Some(m), _) => raw_once(m.clone(), a.model.clone(), p, max).await,
                (_, _, Some(u)) => http_once(client.clone(), u.clone(), a.model.clone(), p, max).await,
                _ => continue,
            };
            if let Some(e) = t.error {
                anyhow::bail!("{mode} request failed: {e}");
            }
            ttft.push(t.ttft.unwrap_or_default().as_secs_f64() * 1000.0);
        }
        let cold = ttft[0];
        let warm = percentile(ttft[1..].to_vec(), 0.5);
        println!("| {mode} | {n} | {tail} | {cold:.1} | {warm:.1} | {:.3} |", warm / cold);
    }
    Ok(())
}

/// ITL of running streams before and during the admission of a long prompt.
async fn interference(a: &BenchArgs, long: usize, models: Arc<ModelManager>) -> anyhow::Result<()> {
    let streams = a.concurrency.first().copied().unwrap_or(4);
    let h = models.get(&a.model).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let req = GenerateRequest {
            prompt: PromptInput::Tokens(prompt(16, 100 + i)),
            sampling: SamplingParams::greedy(),
            max_tokens: Some(100_000.min(h.loaded.n_ctx.saturating_sub(17))),
            stop: vec![],
            ignore_eos: true,
            logprobs: None,
        };
        let mut rx = h.generate(req).await?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while let Some(ev) = rx.recv().await {
                match ev {
                    Event::Text { .. } => times.push(Instant::now()),
                    Event::Done { .. } | Event::Error(_) => break,
                    Event::Started { .. } | Event::Logprobs(_) => {}
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            times
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let submitted = Instant::now();
    let t = raw_once(models.clone(), a.model.clone(), prompt(long, 999), 1).await;
    let first = submitted + t.ttft.unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let (mut before, mut during) = (Vec::new(), Vec::new());
    let warm = submitted - Duration::from_secs(2);
    for task in tasks {
        let times = task.await.unwrap_or_default();
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).as_secs_f64() * 1000.0;
            if w[1] > warm && w[1] <= submitted {
                before.push(gap);
            } else if w[1] > submitted && w[1] <= first {
                during.push(gap);
            }
        }
    }
    println!("| streams | long prompt | its TTFT ms | ITL p50 before | ITL p95 before | ITL p50 during | ITL p95 during | p95 during/before |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (b50, b95) = (percentile(before.clone(), 0.5), percentile(before, 0.95));
    let (d50, d95) = (percentile(during.clone(), 0.5), percentile(during, 0.95));
    println!(
        "| {streams} | {long} | {:.0} | {b50:.1} | {b95:.1} | {d50:.1} | {d95:.1} | {:.2} |",
        (first - submitted).as_secs_f64() * 1000.0,
        d95 / b95.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
