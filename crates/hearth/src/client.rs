//! The one HTTP client of the commands that talk to a running server (`list`, `ps`, `show`,
//! `rm`, `run --url`, `ingest`, `search`): where the server is, its API key, and its answers
//! read as JSON or as the server's error message.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

/// A server to use instead of this process's own folder and engine.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// A running server to ask, instead of the models folder and an engine in this process.
    #[arg(long, env = "HEARTH_URL")]
    pub url: Option<String>,
    /// API key, if the server needs one.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// Where the server is.
#[derive(Debug, Clone, Args)]
pub struct ServerTarget {
    /// The server's base URL.
    #[arg(long, env = "HEARTH_URL", default_value_t = crate::config::default_url())]
    pub url: String,
    /// API key, if the server needs one.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// An HTTP client that sends `key` as a bearer token.
///
/// # Errors
/// A key that is not a valid header value.
pub fn client(key: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {k}").parse()?);
    }
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

/// A request's JSON answer, or the server's error message.
pub async fn answer(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    read(req.send().await.context("cannot reach the server")?).await
}

/// A response's JSON, or the server's error message.
pub async fn read(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().or(v["error"].as_str()).unwrap_or("no message").to_string();
        return Err(anyhow!("the server answered {status}: {msg}"));
    }
    Ok(v)
}
