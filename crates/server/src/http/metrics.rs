//! Prometheus metrics: every name Hearth exports is a constant here, with its type and help.
//!
//! Counters and histograms are recorded where things happen (the request middleware, the
//! generation and embedding paths, errors); gauges (queue depth, active sequences, KV use,
//! loaded models) are read from the engine when `/metrics` is scraped. The text exposition
//! format is written by [`render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

/// HTTP requests by endpoint, model and status.
pub const REQUESTS: &str = "hearth_requests_total";
/// HTTP request duration by endpoint (until the response head; a stream's body is not counted).
pub const REQUEST_SECONDS: &str = "hearth_request_duration_seconds";
/// Time from a generation request's arrival to its first token, by model.
pub const TTFT_SECONDS: &str = "hearth_time_to_first_token_seconds";
/// Gap between consecutive tokens of one stream, by model.
pub const ITL_SECONDS: &str = "hearth_inter_token_latency_seconds";
/// Prompt tokens evaluated (cached ones included), by model.
pub const PROMPT_TOKENS: &str = "hearth_prompt_tokens_total";
/// Tokens generated, by model.
pub const GENERATED_TOKENS: &str = "hearth_generated_tokens_total";
/// Embedding and rerank inputs evaluated, by model.
pub const EMBEDDING_INPUTS: &str = "hearth_embedding_inputs_total";
/// Requests refused or failed, by reason (the error code).
pub const REJECTED: &str = "hearth_rejected_requests_total";
/// Seconds a loaded model took to load, by model.
pub const MODEL_LOAD_SECONDS: &str = "hearth_model_load_seconds";
/// Requests waiting for a model's worker, by model.
pub const QUEUE_DEPTH: &str = "hearth_queue_depth";
/// Sequences (or embedding requests) a model's worker is running, by model.
pub const ACTIVE_SEQUENCES: &str = "hearth_active_sequences";
/// KV cache cells held by running sequences, by model.
pub const KV_CELLS_USED: &str = "hearth_kv_cache_used_cells";
/// KV cache cells in all, by model.
pub const KV_CELLS: &str = "hearth_kv_cache_cells";
/// KV cache cells of idle slots' cached prefixes, by model.
pub const KV_CELLS_CACHED: &str = "hearth_kv_cache_cached_cells";
/// Models loaded now.
pub const MODELS_LOADED: &str = "hearth_models_loaded";
/// Estimated memory of a loaded model (weights + KV cache), by model.
pub const MODEL_MEMORY_BYTES: &str = "hearth_model_memory_bytes";
/// Resident memory of a loaded model's worker process, by model.
pub const MODEL_RSS_BYTES: &str = "hearth_model_rss_bytes";
/// Crashes of a model's worker process since the server started, by model.
pub const MODEL_CRASHES: &str = "hearth_model_crashes_total";
/// 1 for a model whose worker crashed and that has not been loaded again since, by model.
pub const MODEL_FAILED: &str = "hearth_model_failed";
/// Layers of a loaded model on a GPU, by model.
pub const MODEL_GPU_LAYERS: &str = "hearth_model_gpu_layers";
/// Device memory a loaded model took, by model.
pub const MODEL_DEVICE_BYTES: &str = "hearth_model_device_memory_bytes";
/// A GPU device's memory, by device.
pub const DEVICE_TOTAL_BYTES: &str = "hearth_device_memory_total_bytes";
/// A GPU device's free memory now, by device.
pub const DEVICE_FREE_BYTES: &str = "hearth_device_memory_free_bytes";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    /// A counter kept by the engine and read at scrape time, like a gauge.
    ScrapedCounter,
    Histogram(&'static [f64]),
    Gauge,
}

const LATENCY: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const TOKEN_GAP: &[f64] = &[0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5];

/// Every metric, in exposition order: name, kind, help.
const DEFS: &[(&str, Kind, &str)] = &[
    (REQUESTS, Kind::Counter, "HTTP requests by endpoint, model and status."),
    (REQUEST_SECONDS, Kind::Histogram(LATENCY), "HTTP request duration until the response head, by endpoint."),
    (TTFT_SECONDS, Kind::Histogram(LATENCY), "Time from a generation request's arrival to its first token."),
    (ITL_SECONDS, Kind::Histogram(TOKEN_GAP), "Gap between consecutive tokens of one stream."),
    (PROMPT_TOKENS, Kind::Counter, "Prompt tokens of finished generation requests (cached included)."),
    (GENERATED_TOKENS, Kind::Counter, "Tokens generated."),
    (EMBEDDING_INPUTS, Kind::Counter, "Embedding and rerank inputs evaluated."),
    (REJECTED, Kind::Counter, "Requests refused or failed, by reason."),
    (MODEL_LOAD_SECONDS, Kind::Gauge, "Seconds a loaded model took to load."),
    (QUEUE_DEPTH, Kind::Gauge, "Requests waiting for a model's worker."),
    (ACTIVE_SEQUENCES, Kind::Gauge, "Sequences or embedding requests a model's worker is running."),
    (KV_CELLS_USED, Kind::Gauge, "KV cache cells held by running sequences."),
    (KV_CELLS_CACHED, Kind::Gauge, "KV cache cells of idle slots' cached prefixes (reusable, freed when needed)."),
    (KV_CELLS, Kind::Gauge, "KV cache cells of a loaded model."),
    (MODELS_LOADED, Kind::Gauge, "Models loaded now."),
    (MODEL_MEMORY_BYTES, Kind::Gauge, "Estimated memory of a loaded model: file size plus KV cache."),
    (MODEL_RSS_BYTES, Kind::Gauge, "Resident memory of a loaded model's worker process (process isolation)."),
    (MODEL_CRASHES, Kind::ScrapedCounter, "Crashes of a model's worker process since the server started."),
    (MODEL_FAILED, Kind::Gauge, "1 while a model whose worker crashed has not been loaded again."),
    (MODEL_GPU_LAYERS, Kind::Gauge, "Layers of a loaded model on a GPU."),
    (MODEL_DEVICE_BYTES, Kind::Gauge, "Device (GPU) memory a loaded model took."),
    (DEVICE_TOTAL_BYTES, Kind::Gauge, "A GPU device's memory."),
    (DEVICE_FREE_BYTES, Kind::Gauge, "A GPU device's free memory when scraped."),
];

/// Label pairs of one series, in a fixed order.
type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Recorded counters and histograms.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

fn labels(l: &[(&'static str, &str)]) -> Labels {
    l.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

impl Metrics {
    /// Adds `by` to a counter.
    pub fn inc(&self, name: &'static str, l: &[(&'static str, &str)], by: u64) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        *c.entry((name, labels(l))).or_default() += by;
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, name: &'static str, l: &[(&'static str, &str)], value: f64) {
        let Some(Kind::Histogram(bounds)) = DEFS.iter().find(|d| d.0 == name).map(|d| d.1) else {
            debug_assert!(false, "{name} is not a histogram");
            return;
        };
        let mut h = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        let e = h
            .entry((name, labels(l)))
            .or_insert_with(|| Histogram { buckets: vec![0; bounds.len() + 1], ..Default::default() });
        let i = bounds.iter().position(|b| value <= *b).unwrap_or(bounds.len());
        e.buckets[i] += 1;
        e.sum += value;
        e.count += 1;
    }
}

/// A gauge sample read at scrape time.
#[derive(Debug, Clone)]
pub struct Gauge {
    /// One of the gauge names above.
    pub name: &'static str,
    /// Its labels.
    pub labels: Vec<(&'static str, String)>,
    /// Its value.
    pub value: f64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn series(name: &str, l: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", parts.join(","))
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The text exposition of every metric: recorded ones plus `gauges`.
pub fn render(gauges: &[Gauge]) -> String {
    let m = metrics();
    let counters = m.counters.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let histograms = m.histograms.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut out = String::new();
    for &(name, kind, help) in DEFS {
        let ty = match kind {
            Kind::Counter | Kind::ScrapedCounter => "counter",
            Kind::Histogram(_) => "histogram",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
        match kind {
            Kind::Counter => {
                for ((_, l), v) in counters.iter().filter(|((n, _), _)| *n == name) {
                    let _ = writeln!(out, "{} {v}", series(name, l, None));
                }
            }
            Kind::Gauge | Kind::ScrapedCounter => {
                for g in gauges.iter().filter(|g| g.name == name) {
                    let _ = writeln!(out, "{} {}", series(name, &g.labels, None), number(g.value));
                }
            }
            Kind::Histogram(bounds) => {
                for ((_, l), h) in histograms.iter().filter(|((n, _), _)| *n == name) {
                    let mut cum = 0;
                    for (i, b) in bounds.iter().chain(std::iter::once(&f64::INFINITY)).enumerate() {
                        cum += h.buckets[i];
                        let le = Some(("le", number(*b)));
                        let _ = writeln!(out, "{} {cum}", series(&format!("{name}_bucket"), l, le));
                    }
                    let _ = writeln!(out, "{} {}", series(&format!("{name}_sum"), l, None), number(h.sum));
                    let _ = writeln!(out, "{} {}", series(&format!("{name}_count"), l, None), h.count);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_types_cumulative_buckets_and_escaped_labels() {
        let m = metrics();
        m.inc(REQUESTS, &[("endpoint", "/t"), ("model", "a\"b"), ("status", "200")], 2);
        m.observe(TTFT_SECONDS, &[("model", "x")], 0.3);
        m.observe(TTFT_SECONDS, &[("model", "x")], 500.0);
        let g = Gauge { name: MODELS_LOADED, labels: vec![], value: 1.0 };
        let text = render(&[g]);
        assert!(text.contains("# TYPE hearth_requests_total counter"));
        assert!(text.contains(r#"hearth_requests_total{endpoint="/t",model="a\"b",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"hearth_time_to_first_token_seconds_bucket{model="x",le="0.25"} 0"#));
        assert!(text.contains(r#"hearth_time_to_first_token_seconds_bucket{model="x",le="0.5"} 1"#));
        assert!(text.contains(r#"hearth_time_to_first_token_seconds_bucket{model="x",le="+Inf"} 2"#));
        assert!(text.contains(r#"hearth_time_to_first_token_seconds_count{model="x"} 2"#));
        assert!(text.contains("hearth_models_loaded 1\n"));
    }
}
