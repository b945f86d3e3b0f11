//! A hub on loopback serving GGUF files as `test/bench-GGUF` (for `scripts/bench-pull`):
//! `cargo run --release -p hearth-hub --features testing --example loopback_hub -- FILE...`
//! prints its address and serves until killed.

use hearth_hub::testing::{self, HubFile, LoopbackHub};
use std::collections::BTreeMap;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let mut repo = BTreeMap::new();
    for path in std::env::args().skip(1) {
        let name =
            std::path::Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        repo.insert(name, HubFile::new(bytes.into()));
    }
    let hub = Arc::new(LoopbackHub { repos: [("test/bench-GGUF".to_string(), repo)].into(), ..Default::default() });
    println!("{}", testing::serve(hub).await);
    std::future::pending::<()>().await;
}
