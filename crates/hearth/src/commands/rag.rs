//! `hearth ingest` and `hearth search`: the retrieval API of a running server from the command
//! line (uploads with a progress bar, polling the ingestion jobs).

use crate::client::{answer, client, read, ServerTarget};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// `hearth ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or directories (searched recursively for PDF, DOCX, Markdown, HTML and text).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Collection to add them to (created if missing).
    #[arg(long)]
    pub collection: String,
    /// A JSON object of metadata for every file.
    #[arg(long)]
    pub metadata: Option<String>,
    /// The server.
    #[command(flatten)]
    pub server: ServerTarget,
}

/// `hearth search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query.
    pub query: String,
    /// Collection.
    #[arg(long)]
    pub collection: String,
    /// `vector`, `keyword` or `hybrid`.
    #[arg(long, default_value = "hybrid")]
    pub mode: String,
    /// Results (the server's default, 5, when not given).
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Print the raw JSON answer.
    #[arg(long)]
    pub json: bool,
    /// The server.
    #[command(flatten)]
    pub server: ServerTarget,
}

const EXTENSIONS: &[&str] = &["pdf", "docx", "md", "markdown", "html", "htm", "txt", "text"];

fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            let nested: Vec<PathBuf> = entries
                .into_iter()
                .filter(|e| {
                    e.is_dir()
                        || e.extension()
                            .is_some_and(|x| EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
                })
                .collect();
            out.extend(collect(&nested)?);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    Ok(out)
}

fn bar(done: usize, total: usize, files: usize, nfiles: usize) {
    let width = 30;
    let fill = (done * width).checked_div(total).unwrap_or(0);
    eprint!("\r[{}{}] {files}/{nfiles} files, {done}/{total} chunks ", "#".repeat(fill), ".".repeat(width - fill));
    let _ = std::io::stderr().flush();
}

/// Uploads the files and waits for their jobs.
///
/// # Errors
/// When the server is unreachable or refuses a request.
pub async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    let files = collect(&a.paths)?;
    anyhow::ensure!(!files.is_empty(), "no documents found");
    let c = client(a.server.api_key.as_deref())?;
    let base = a.server.url.trim_end_matches('/');
    let res = c.post(format!("{base}/collections")).json(&json!({"name": a.collection})).send().await?;
    if res.status() != reqwest::StatusCode::CONFLICT {
        read(res).await?;
    }
    let mut jobs = Vec::new();
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(std::fs::read(f)?).file_name(name));
        if let Some(m) = &a.metadata {
            form = form.text("metadata", m.clone());
        }
        let url = format!("{base}/collections/{}/documents", a.collection);
        match answer(c.post(url).multipart(form)).await {
            Ok(v) => jobs.extend(v["data"].as_array().cloned().unwrap_or_default()),
            Err(e) => eprintln!("{}: {e}", f.display()),
        }
    }
    let ids: Vec<String> = jobs.iter().filter_map(|j| j["id"].as_str().map(str::to_string)).collect();
    let mut failed = 0;
    loop {
        let mut states = Vec::new();
        for id in &ids {
            states.push(answer(c.get(format!("{base}/jobs/{id}"))).await?);
        }
        let finished = states.iter().filter(|s| s["status"] == "done" || s["status"] == "failed").count();
        let done: usize = states.iter().map(|s| s["chunks_done"].as_u64().unwrap_or(0) as usize).sum();
        let total: usize = states.iter().map(|s| s["chunks_total"].as_u64().unwrap_or(0) as usize).sum();
        bar(done, total, finished, ids.len());
        if finished == ids.len() {
            eprintln!();
            for s in &states {
                match s["status"].as_str() {
                    Some("done") => println!(
                        "{}\t{}",
                        s["document"].as_str().unwrap_or(""),
                        s["result"]["outcome"].as_str().unwrap_or("")
                    ),
                    _ => {
                        failed += 1;
                        println!(
                            "{}\tfailed: {}",
                            s["document"].as_str().unwrap_or(""),
                            s["error"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::ensure!(
        failed == 0 && ids.len() == files.len(),
        "{} of {} files were not ingested",
        files.len() - (ids.len() - failed),
        files.len()
    );
    Ok(())
}

/// Prints the best chunks for a query.
///
/// # Errors
/// When the server is unreachable or refuses the search.
pub async fn search(a: SearchArgs) -> anyhow::Result<()> {
    let c = client(a.server.api_key.as_deref())?;
    let url = format!("{}/collections/{}/search", a.server.url.trim_end_matches('/'), a.collection);
    let body = json!({"query": a.query, "mode": a.mode, "top_k": a.top_k});
    let v = answer(c.post(url).json(&body)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (i, hit) in v["data"].as_array().cloned().unwrap_or_default().iter().enumerate() {
        let place = match (hit["page"].as_u64(), hit["section"].as_str()) {
            (Some(p), _) => format!(" p.{p}"),
            (None, Some(s)) => format!(" §{s}"),
            _ => String::new(),
        };
        println!(
            "{}. {}{place}  (score {:.4})",
            i + 1,
            hit["document"].as_str().unwrap_or(""),
            hit["score"].as_f64().unwrap_or(0.0)
        );
        println!("   {}", hit["text"].as_str().unwrap_or("").chars().take(300).collect::<String>());
    }
    Ok(())
}
