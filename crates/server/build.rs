//! Embeds the browser UI: every file of `web/dist` (built by `npm run build` and committed, so
//! `cargo build` needs no Node), gzipped at level 9 and hashed for its ETag here, at build time.
//! Without `web/dist` the table is empty and `/` says the UI is not built.

use std::io::Write;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() -> std::io::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../web/dist");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut paths = Vec::new();
    if dist.is_dir() {
        files(&dist, &mut paths)?;
    }
    paths.sort();
    let mut table = String::from("&[\n");
    for (i, path) in paths.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let raw = std::fs::read(path)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw)?;
        let gz = gz.finish()?;
        let gz_path = out_dir.join(format!("ui-{i}.gz"));
        std::fs::write(&gz_path, &gz)?;
        let rel = path.strip_prefix(&dist).unwrap_or(path).to_string_lossy().replace('\\', "/");
        let digest = sha2::Sha256::digest(&raw);
        let etag: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        table.push_str(&format!(
            "    Asset {{ path: {:?}, mime: {:?}, etag: \"\\\"{etag}\\\"\", etag_gzip: \"\\\"{etag}-gz\\\"\", raw: include_bytes!({:?}), gzip: include_bytes!({:?}) }},\n",
            format!("/{rel}"),
            mime(path),
            path.canonicalize()?.display().to_string(),
            gz_path.display().to_string(),
        ));
    }
    table.push(']');
    std::fs::write(out_dir.join("ui_assets.rs"), table)
}

use sha2::Digest as _;
