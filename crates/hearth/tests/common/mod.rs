//! Running the real `hearth` binary in tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn home() -> PathBuf {
    std::env::var_os("HEARTH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server; the caller kills and waits for the child.
#[allow(clippy::zombie_processes)]
pub fn start(store: &Path, port: u16) -> Child {
    // The test's own HTTP clients share the binary's TLS set-up (ring, installed once).
    hearth_hub::install_crypto();
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--threads",
            "2",
            "--rag-embedding-model",
            "all-MiniLM-L6-v2.Q8_0",
        ])
        .arg("--models-dir")
        .arg(home().join("models"))
        .arg("--vector-store")
        .arg(store)
        .env_remove("HEARTH_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::blocking::get(format!("http://127.0.0.1:{port}/health/live")).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("hearth did not start");
}
