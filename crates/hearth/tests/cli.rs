//! `hearth ingest` and `hearth search` against a running server (the real binary both sides).

mod common;

use common::{free_port, start};
use std::process::Command;

#[test]
fn ingest_a_directory_then_search_it() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{}", std::process::id()));
    let docs = dir.join("docs/nested");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(dir.join("docs/glacier.md"), "# Glacier\n\nThe Pellworth glacier retreats 31 metres a year.\n")
        .unwrap();
    std::fs::write(docs.join("bakery.txt"), "The bakery on Tamsin Row opens at 5:40 every morning.").unwrap();
    std::fs::write(docs.join("ignored.bin"), [0u8, 1, 2]).unwrap();
    let port = free_port();
    let mut server = start(&dir.join("rag.sqlite"), port);
    let url = format!("http://127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_hearth");
    let out = Command::new(bin)
        .args(["ingest", "--collection", "town", "--url", &url])
        .arg(dir.join("docs"))
        .env_remove("HEARTH_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("glacier.md\tcreated") && stdout.contains("bakery.txt\tcreated"), "{stdout}");
    assert!(!stdout.contains("ignored.bin"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2/2 files"), "a progress bar");
    let out = Command::new(bin)
        .args(["search", "When does the bakery open?", "--collection", "town", "--url", &url, "--top-k", "1"])
        .env_remove("HEARTH_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.starts_with("1. bakery.txt") && stdout.contains("5:40"), "{stdout}");
    let out = Command::new(bin).args(["search", "x", "--collection", "nope", "--url", &url]).output().unwrap();
    assert!(!out.status.success(), "an unknown collection fails");
    server.kill().ok();
    server.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
}
