//! `hearth list`, `hearth ps`, `hearth show MODEL`, `hearth rm MODEL`: the models folder, or a
//! server with `--url`; tables on a terminal, `--json` for scripts.

use crate::client::{answer, client, Remote, ServerTarget};
use crate::commands::pull::size;
use crate::config::FolderArgs;
use anyhow::{anyhow, Context};
use clap::Args;
use hearth_engine::{ModelInfo, Registry};
use serde_json::{json, Value};

/// The models folder, or a server.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The server, if any.
    #[command(flatten)]
    pub remote: Remote,
    /// Hearth's folders.
    #[command(flatten)]
    pub folders: FolderArgs,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hearth list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// `hearth show MODEL` / `hearth rm MODEL`.
#[derive(Debug, Args)]
pub struct ModelArg {
    /// A model id or alias.
    pub model: String,
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// `hearth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerTarget,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A model as `list` and `show` print it, from the folder or from `/v1/models`.
fn local_json(m: &ModelInfo) -> Value {
    let mut v = m.meta_json();
    v["id"] = m.id.clone().into();
    v["modified"] = m.created.into();
    v["capabilities"] = m.capabilities().into();
    v
}

fn scan(t: &Target) -> anyhow::Result<Registry> {
    let dir = t.folders.models_dir();
    Registry::scan(&dir, &[], &[]).with_context(|| format!("cannot read the models folder {}", dir.display()))
}

fn remote_json(m: &Value) -> Value {
    let mut v = m["meta"].clone();
    v["id"] = m["id"].clone();
    v["modified"] = m["created"].clone();
    v
}

/// Runs `hearth list`.
///
/// # Errors
/// An unreadable folder or an unreachable server.
pub async fn list(a: ListArgs) -> anyhow::Result<()> {
    let rows: Vec<Value> = match &a.target.remote.url {
        Some(url) => {
            let v = answer(client(a.target.remote.api_key.as_deref())?.get(format!("{url}/v1/models"))).await?;
            v["data"].as_array().map(|d| d.iter().map(remote_json).collect()).unwrap_or_default()
        }
        None => scan(&a.target)?.models().map(local_json).collect(),
    };
    if a.target.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                text(&r["id"]),
                size(r["size_bytes"].as_u64().unwrap_or(0)),
                text(&r["quantization"]),
                params(r["parameters"].as_u64().unwrap_or(0)),
                text(&r["kind"]),
            ]
        })
        .collect();
    print_table(&["NAME", "SIZE", "QUANT", "PARAMS", "KIND"], &table);
    Ok(())
}

/// Runs `hearth show`.
///
/// # Errors
/// An unknown model, an unreadable folder or an unreachable server.
pub async fn show(a: ModelArg) -> anyhow::Result<()> {
    let (facts, template) = match &a.target.remote.url {
        Some(url) => {
            let http = client(a.target.remote.api_key.as_deref())?;
            let m = answer(http.get(format!("{url}/v1/models/{}", a.model))).await?;
            let s = answer(http.post(format!("{url}/api/show")).json(&json!({ "model": a.model }))).await?;
            let mut facts = remote_json(&m);
            facts["capabilities"] = s["capabilities"].clone();
            (facts, text(&s["template"]))
        }
        None => {
            let r = scan(&a.target)?;
            let m = r.resolve(&a.model).map_err(|e| anyhow!("{e}"))?;
            (local_json(m), m.template_text().to_string())
        }
    };
    if a.target.json {
        let mut v = facts;
        v["template"] = template.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let caps: Vec<String> = facts["capabilities"].as_array().map(|c| c.iter().map(text).collect()).unwrap_or_default();
    let rows = [
        ("architecture", text(&facts["architecture"])),
        ("parameters", params(facts["parameters"].as_u64().unwrap_or(0))),
        ("quantization", text(&facts["quantization"])),
        ("context length", text(&facts["context_length"])),
        ("embedding length", text(&facts["embedding_length"])),
        ("size", size(facts["size_bytes"].as_u64().unwrap_or(0))),
        ("template", text(&facts["chat_template"])),
        ("capabilities", caps.join(", ")),
    ];
    println!("  Model {}", text(&facts["id"]));
    for (k, v) in rows {
        println!("    {k:<18}{v}");
    }
    println!("    {:<18}{}", "runs on", runs_on(&a.target).await);
    println!("\n  Template\n{}", template.lines().take(12).map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"));
    Ok(())
}

/// The backends and GPU devices that would run the model: the server's (from `/health`), or
/// this build's on this machine.
async fn runs_on(target: &Target) -> String {
    match &target.remote.url {
        Some(url) => match client(target.remote.api_key.as_deref()) {
            Ok(http) => match answer(http.get(format!("{url}/health"))).await {
                Ok(v) => devices_line(&v),
                Err(e) => format!("unknown ({e})"),
            },
            Err(e) => format!("unknown ({e})"),
        },
        None => {
            use hearth_engine::BackendLoader;
            match hearth_llama::LlamaLoader::new() {
                Ok(l) => {
                    let devices = l.devices();
                    let v = json!({ "backends": l.backends(), "devices": devices.iter().map(|d| json!({
                        "name": d.name, "description": d.description, "memory_free": d.memory_free, "memory_total": d.memory_total
                    })).collect::<Vec<_>>() });
                    devices_line(&v)
                }
                Err(e) => format!("unknown ({e})"),
            }
        }
    }
}

/// Runs `hearth rm`.
///
/// # Errors
/// An unknown model, a busy one (on a server), or a file that cannot be removed.
pub async fn rm(a: ModelArg) -> anyhow::Result<()> {
    match &a.target.remote.url {
        Some(url) => {
            let req = client(a.target.remote.api_key.as_deref())?
                .delete(format!("{url}/api/delete"))
                .json(&json!({ "model": a.model }));
            let resp = req.send().await.context("cannot reach the server")?;
            if !resp.status().is_success() {
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                return Err(anyhow!("{}", v["error"].as_str().unwrap_or("the server refused")));
            }
        }
        None => {
            let r = scan(&a.target)?;
            let m = r.resolve(&a.model).map_err(|e| anyhow!("{e}"))?;
            for p in hearth_engine::registry::files_of(m) {
                std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
    }
    println!("deleted '{}'", a.model);
    Ok(())
}

/// Runs `hearth ps`.
///
/// # Errors
/// An unreachable server.
pub async fn ps(a: PsArgs) -> anyhow::Result<()> {
    let url = &a.server.url;
    let v = answer(client(a.server.api_key.as_deref())?.get(format!("{url}/api/ps"))).await?;
    let models = v["models"].as_array().cloned().unwrap_or_default();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(());
    }
    let table: Vec<[String; 5]> = models
        .iter()
        .map(|m| {
            let (total, vram) = (m["size"].as_u64().unwrap_or(0), m["size_vram"].as_u64().unwrap_or(0));
            [text(&m["name"]), size(total), processor(total, vram), text(&m["context_length"]), text(&m["expires_at"])]
        })
        .collect();
    print_table(&["NAME", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], &table);
    // The backends and devices, where the server tells them (it does not to a probe without a key).
    let health = client(a.server.api_key.as_deref())?.get(format!("{url}/health")).send().await;
    if let Ok(v) = match health {
        Ok(r) => r.json::<Value>().await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    } {
        println!("{}", devices_line(&v));
    }
    Ok(())
}

/// Where a model runs, as Ollama's `ps` says it: `100% GPU`, `100% CPU`, `40%/60% CPU/GPU`.
fn processor(total: u64, vram: u64) -> String {
    if total == 0 || vram == 0 {
        return "100% CPU".into();
    }
    let gpu = ((vram.min(total) as f64 / total as f64) * 100.0).round() as u64;
    if gpu >= 100 {
        "100% GPU".into()
    } else {
        format!("{}%/{gpu}% CPU/GPU", 100 - gpu)
    }
}

/// `backends: CPU, Vulkan; Vulkan0 (llvmpipe): 1.2 GiB free of 2.0 GiB` from `/health`.
pub(crate) fn devices_line(health: &Value) -> String {
    let backends = health["backends"].as_str().unwrap_or("?");
    let devices: Vec<String> = health["devices"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    let (free, total) =
                        (d["memory_free"].as_u64().unwrap_or(0), d["memory_total"].as_u64().unwrap_or(0));
                    format!(
                        "{} ({}): {} free of {}",
                        text(&d["name"]),
                        text(&d["description"]),
                        size(free),
                        size(total)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if devices.is_empty() {
        format!("backends: {backends}; no GPU device")
    } else {
        format!("backends: {backends}; {}", devices.join("; "))
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A weight count as Ollama shows it: `135M`, `1.2B`.
fn params(n: u64) -> String {
    match n {
        0 => "-".into(),
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n => format!("{}M", (n as f64 / 1e6).round()),
    }
}

fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("   ").trim_end().to_string()
    };
    println!("{}", line(head.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_reads_as_ollamas() {
        assert_eq!(processor(100, 0), "100% CPU");
        assert_eq!(processor(100, 100), "100% GPU");
        assert_eq!(processor(100, 40), "60%/40% CPU/GPU");
        let h = serde_json::json!({"backends": "CPU, Vulkan", "devices": [{"name": "Vulkan0", "description": "llvmpipe", "memory_free": 1u64 << 30, "memory_total": 2u64 << 30}]});
        assert!(devices_line(&h).starts_with("backends: CPU, Vulkan; Vulkan0 (llvmpipe)"), "{}", devices_line(&h));
    }

    #[test]
    fn weights_read_as_ollama_shows_them() {
        assert_eq!(params(134_515_008), "135M");
        assert_eq!(params(1_240_000_000), "1.2B");
        assert_eq!(params(0), "-");
    }
}
