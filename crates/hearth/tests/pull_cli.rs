//! `hearth pull` as a user runs it, against a hub on loopback serving the real SmolLM2 file:
//! progress as plain lines when not on a terminal, the model linked into the models folder, a
//! second pull served from the hub cache, and one clear message for what goes wrong.

use hearth_hub::testing::{self, HubFile, LoopbackHub};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

fn smol() -> Vec<u8> {
    let home = std::env::var_os("HEARTH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"));
    std::fs::read(home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")).expect("run scripts/fetch-models")
}

fn pull(endpoint: &str, dir: &std::path::Path, reference: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["pull", reference, "--hf-endpoint", endpoint])
        .arg("--models-dir")
        .arg(dir.join("models"))
        .arg("--hf-hub-cache")
        .arg(dir.join("hf"))
        .env_remove("HF_TOKEN")
        .output()
        .expect("run hearth")
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_links_the_model_and_a_second_pull_fetches_nothing() {
    let dir = std::env::temp_dir().join(format!("hearth-pull-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut repo = BTreeMap::new();
    repo.insert("SmolLM2-135M-Instruct-Q4_1.gguf".to_string(), HubFile::new(smol().into()));
    let hub = Arc::new(LoopbackHub { repos: [("test/SmolLM2-GGUF".to_string(), repo)].into(), ..Default::default() });
    let endpoint = testing::serve(hub.clone()).await;
    let (e, d) = (endpoint.clone(), dir.clone());
    let first = tokio::task::spawn_blocking(move || pull(&e, &d, "hf.co/test/SmolLM2-GGUF:Q4_1")).await.unwrap();
    let (out, err) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    assert!(first.status.success(), "{err}");
    assert!(out.contains("SmolLM2-135M-Instruct-Q4_1 (Q4_1,"), "{out}");
    assert!(err.contains("pulling 1 file(s)") && err.contains("100%") && err.contains("verifying sha256"), "{err}");
    assert!(dir.join("models/SmolLM2-135M-Instruct-Q4_1.gguf").is_file());
    let aliases = std::fs::read_to_string(dir.join("models/.hearth-aliases.json")).unwrap();
    assert!(aliases.contains("hf.co/test/SmolLM2-GGUF:Q4_1"), "{aliases}");
    let (e, d) = (endpoint.clone(), dir.clone());
    let again = tokio::task::spawn_blocking(move || pull(&e, &d, "test/SmolLM2-GGUF:Q4_1")).await.unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("from the hub cache"), "{again:?}");
    let (e, d) = (endpoint.clone(), dir.clone());
    let bad = tokio::task::spawn_blocking(move || pull(&e, &d, "test/SmolLM2-GGUF:Q6_K")).await.unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("has no Q6_K file") && err.contains("Q4_1"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
