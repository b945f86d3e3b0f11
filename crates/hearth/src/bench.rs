//! `hearth bench`: single-stream decode speed and time to first token, measured over HTTP
//! (a real loopback socket, SSE parsed by the client) and on the raw engine (no HTTP), on the
//! same model, threads and prompt.

use crate::config::{ModelArgs, SamplingArgs, SchedulerArgs, ServeArgs, ServerArgs};
use clap::Args;
use futures::StreamExt;
use hearth_engine::{Event, GenerateRequest, ModelManager, PromptInput, SamplingParams};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `hearth bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model id to measure.
    #[arg(long)]
    pub model: String,
    /// Prompt lengths in tokens (comma-separated); TTFT is reported for each.
    #[arg(long, value_delimiter = ',', default_value = "16,512")]
    pub prompt_tokens: Vec<usize>,
    /// Tokens generated per request (end-of-generation is ignored).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Requests per prompt length; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub requests: usize,
    /// Only the raw engine (no HTTP).
    #[arg(long)]
    pub raw: bool,
    /// Drive an already running server at this base URL (e.g. http://127.0.0.1:8080) instead of
    /// an in-process one; the raw engine is then not measured.
    #[arg(long)]
    pub url: Option<String>,
    /// Models directory and loading options.
    #[command(flatten)]
    pub models: ModelArgs,
}

/// One measured request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ttft: Duration,
    decode_tps: f64,
}

fn prompt(n: usize, run: usize) -> Vec<u32> {
    (0..n).map(|i| 1000 + ((i * 7 + run * 13) % 5000) as u32).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Decode rate from token arrival times: tokens after the first over the time they took.
fn rate(first: Instant, last: Instant, n: usize) -> f64 {
    let s = last.duration_since(first).as_secs_f64();
    if n > 1 && s > 0.0 {
        (n - 1) as f64 / s
    } else {
        0.0
    }
}

async fn raw_once(models: &ModelManager, model: &str, tokens: Vec<u32>, max: u32) -> anyhow::Result<Sample> {
    let h = models.get(model).await?;
    let req = GenerateRequest {
        prompt: PromptInput::Tokens(tokens),
        sampling: SamplingParams::greedy(),
        max_tokens: Some(max),
        stop: vec![],
        ignore_eos: true,
    };
    let t0 = Instant::now();
    let mut rx = h.submit(req)?;
    let (mut first, mut last, mut n) = (None, t0, 0usize);
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(_) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                n += 1;
            }
            Event::Done { .. } => break,
            Event::Error(e) => anyhow::bail!("engine error: {e}"),
            Event::Started { .. } => {}
        }
    }
    let first = first.ok_or_else(|| anyhow::anyhow!("no tokens"))?;
    Ok(Sample { ttft: first - t0, decode_tps: rate(first, last, n) })
}

async fn http_once(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    tokens: Vec<u32>,
    max: u32,
) -> anyhow::Result<Sample> {
    let body = serde_json::json!({"model": model, "prompt": tokens, "max_tokens": max, "temperature": 0, "stream": true, "ignore_eos": true});
    let t0 = Instant::now();
    let res = client.post(format!("{url}/v1/completions")).json(&body).send().await?;
    anyhow::ensure!(res.status().is_success(), "HTTP {}: {}", res.status(), res.text().await.unwrap_or_default());
    let mut stream = res.bytes_stream();
    let (mut buf, mut first, mut last, mut n) = (Vec::new(), None, t0, 0usize);
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            let data = String::from_utf8_lossy(&frame);
            let Some(json) = data.trim().strip_prefix("data: ") else { continue };
            if json == "[DONE]" {
                break;
            }
            let v: serde_json::Value = serde_json::from_str(json)?;
            anyhow::ensure!(v.get("error").is_none(), "stream error: {v}");
            if v["choices"][0]["text"].as_str().is_some_and(|t| !t.is_empty()) {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                n += 1;
            }
        }
    }
    let first = first.ok_or_else(|| anyhow::anyhow!("no tokens"))?;
    Ok(Sample { ttft: first - t0, decode_tps: rate(first, last, n) })
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn report(label: &str, prompt: usize, samples: &[Sample]) -> (f64, f64) {
    let ttft = median(samples.iter().map(|s| s.ttft.as_secs_f64() * 1000.0).collect());
    let tps = median(samples.iter().map(|s| s.decode_tps).collect());
    println!(
        "{label:<5} prompt={prompt:>5} tok  TTFT p50 {ttft:>8.1} ms  decode {tps:>7.1} tok/s  (n={})",
        samples.len()
    );
    (ttft, tps)
}

fn serve_args(a: &BenchArgs) -> ServeArgs {
    ServeArgs {
        server: ServerArgs { host: "127.0.0.1".into(), port: 0 },
        model: ModelArgs {
            home: a.models.home.clone(),
            models_dir: a.models.models_dir.clone(),
            default_model: None,
            allowed_models: vec![],
            aliases: vec![],
            ctx_size: a.models.ctx_size,
            threads: a.models.threads,
        },
        scheduler: SchedulerArgs { parallel: 1, batch_size: 512, max_queue: 64, max_tokens_cap: None },
        sampling: SamplingArgs { temperature: 0.0, top_p: 1.0, top_k: 0, min_p: 0.0, repeat_penalty: 1.0 },
        log_format: crate::config::LogFormat::Text,
    }
}

/// Runs the benchmark and prints a table.
///
/// # Errors
/// When the model cannot be loaded or a request fails.
pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    if let Some(url) = &a.url {
        for &p in &a.prompt_tokens {
            let mut s = Vec::new();
            for r in 0..a.requests {
                s.push(http_once(&client, url, &a.model, prompt(p, r), a.max_tokens).await?);
            }
            report("http", p, &s);
        }
        return Ok(());
    }
    let settings = serve_args(&a).validate()?;
    println!(
        "model {}  threads {}  max_tokens {}  (greedy, end-of-generation ignored)",
        a.model, settings.engine.threads, a.max_tokens
    );
    let models = Arc::new(crate::build_manager(&settings)?);
    models.get(&a.model).await?;
    println!("RSS with the model loaded, idle: {:.0} MB", rss_mb());
    let mut http_url = None;
    if !a.raw {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        http_url = Some(format!("http://{}", listener.local_addr()?));
        let app = hearth_server::app(hearth_server::AppState { models: models.clone() });
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    for &p in &a.prompt_tokens {
        let mut raw = Vec::new();
        let mut http = Vec::new();
        for r in 0..a.requests {
            raw.push(raw_once(&models, &a.model, prompt(p, 2 * r), a.max_tokens).await?);
            if let Some(url) = &http_url {
                http.push(http_once(&client, url, &a.model, prompt(p, 2 * r + 1), a.max_tokens).await?);
            }
        }
        let (_, raw_tps) = report("raw", p, &raw);
        if !http.is_empty() {
            let (_, http_tps) = report("http", p, &http);
            println!("      http/raw decode ratio {:.3}", http_tps / raw_tps.max(f64::MIN_POSITIVE));
        }
    }
    Ok(())
}
