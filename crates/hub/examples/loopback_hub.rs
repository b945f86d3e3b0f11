//! A hub on loopback serving GGUF files as `test/bench-GGUF` (for `scripts/bench-pull` and the
//! tests that pull): `cargo run -p hearth-hub --features testing --example loopback_hub --
//! [--pace BYTES_PER_SECOND] [NAME=]FILE...` prints its address and serves until killed (each
//! file under its own name, or as NAME).

use hearth_hub::testing::{self, HubFile, LoopbackHub};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let mut repo = BTreeMap::new();
    let mut pace = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--pace" {
            pace = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("--pace takes bytes per second"));
            continue;
        }
        let (name, path) = match arg.split_once('=') {
            Some((name, path)) => (name.to_string(), path.to_string()),
            None => {
                let name = std::path::Path::new(&arg).file_name().map(|n| n.to_string_lossy().into_owned());
                (name.unwrap_or_default(), arg)
            }
        };
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        repo.insert(name, HubFile::new(bytes.into()));
    }
    let hub = Arc::new(LoopbackHub {
        repos: [("test/bench-GGUF".to_string(), repo)].into(),
        pace: AtomicUsize::new(pace),
        ..Default::default()
    });
    println!("{}", testing::serve(hub).await);
    std::future::pending::<()>().await;
}
