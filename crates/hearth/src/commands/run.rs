//! `hearth run MODEL [PROMPT]`: a chat in the terminal, with streamed answers, multi-line input
//! (`"""` ... `"""`), history on the arrow keys, and `/bye`, `/clear`, `/set`, `/system`,
//! `/show`; Ctrl+C stops the answer, not the program. With a prompt, or a pipe on standard
//! input, it answers once and exits.
//!
//! By default the engine runs in this process (the server's own router on a loopback port
//! only this process uses); `--url` talks to a running server instead. Both speak the same
//! `/v1/chat/completions` stream.

use crate::config::{FolderArgs, HubArgs};
use anyhow::{anyhow, Context};
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

/// `hearth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A model id or alias, or a hub reference (pulled first when it is not here).
    pub model: String,
    /// A prompt to answer, then exit (words are joined with spaces).
    pub prompt: Vec<String>,
    /// A running server to talk to, instead of running the engine in this process.
    #[command(flatten)]
    pub remote: crate::client::Remote,
    /// Hearth's folders.
    #[command(flatten)]
    pub folders: FolderArgs,
    /// Where a hub reference is pulled from.
    #[command(flatten)]
    pub hub: HubArgs,
}

/// A chat: the server, the model, the messages so far and the sampling options.
struct Chat {
    http: reqwest::Client,
    url: String,
    /// The engine of this process, when it serves the chat.
    local: Option<Arc<hearth_engine::ModelManager>>,
    model: String,
    system: Option<String>,
    messages: Vec<Value>,
    options: Map<String, Value>,
}

/// Runs `hearth run`.
///
/// # Errors
/// A model that is not here and cannot be pulled, or a server that cannot be reached.
pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Until the chat starts, Ctrl+C ends the program (a pull cut short resumes next time).
    let mut chat = rt.block_on(connect(&a))?;
    // From now on it ends the answer being written, never the program.
    let interrupts = Arc::new(tokio::sync::Notify::new());
    let notify = interrupts.clone();
    rt.spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            notify.notify_waiters();
        }
    });
    let piped = !std::io::stdin().is_terminal();
    if !a.prompt.is_empty() || piped {
        let mut prompt = a.prompt.join(" ");
        if piped {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            prompt = [prompt, input].iter().filter(|s| !s.trim().is_empty()).cloned().collect::<Vec<_>>().join("\n\n");
        }
        return rt.block_on(chat.ask(&prompt, &interrupts));
    }
    repl(&rt, &mut chat, &interrupts)
}

/// The server to talk to: `--url`, or this process's own engine on a loopback port.
async fn connect(a: &RunArgs) -> anyhow::Result<Chat> {
    let http = crate::client::client(a.remote.api_key.as_deref())?;
    let (url, local) = match &a.remote.url {
        Some(u) => (u.trim_end_matches('/').to_string(), None),
        None => {
            let (url, models) = in_process(&a.folders).await?;
            (url, Some(models))
        }
    };
    let mut chat =
        Chat { http, url, local, model: a.model.clone(), system: None, messages: Vec::new(), options: Map::new() };
    chat.ensure_model(a).await?;
    Ok(chat)
}

/// Serves the models folder from this process on a loopback port, with `hearth serve`'s
/// settings from the environment (`HEARTH_THREADS`, `HEARTH_CTX_SIZE`, the sampling defaults,
/// ...) and the folder kept live; returns its URL and the engine.
async fn in_process(folders: &FolderArgs) -> anyhow::Result<(String, Arc<hearth_engine::ModelManager>)> {
    let settings = crate::config::private_serve_args(folders)?.validate()?;
    let models = Arc::new(crate::commands::serve::build_manager(&settings)?);
    models.spawn_reaper(std::time::Duration::from_secs(1));
    let state = hearth_server::AppState::new(models.clone(), settings.limits).with_ui(false);
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    Ok((url, models))
}

impl Chat {
    /// Whether the server has the model (`Ok(false)`: it answered 404).
    async fn has_model(&self) -> anyhow::Result<bool> {
        let resp = self.http.get(format!("{}/v1/models/{}", self.url, self.model)).send().await;
        let resp = resp.context("cannot reach the server")?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            s => {
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                Err(anyhow!("the server answered {s}: {}", v["error"]["message"].as_str().unwrap_or("no message")))
            }
        }
    }

    /// Makes sure the server has the model: pulls a hub reference it lacks.
    async fn ensure_model(&mut self, a: &RunArgs) -> anyhow::Result<()> {
        if self.has_model().await? {
            return Ok(());
        }
        if !hearth_hub::reference::is_hub_reference(&self.model) {
            return Err(anyhow!("no model `{}`: try `hearth list`", self.model));
        }
        eprintln!("{} is not here; pulling it", self.model);
        match &self.local {
            None => {
                let resp = self
                    .http
                    .post(format!("{}/api/pull", self.url))
                    .json(&json!({"model": self.model, "stream": false}))
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    let v: Value = resp.json().await.unwrap_or(Value::Null);
                    return Err(anyhow!("{}", v["error"].as_str().unwrap_or("the pull failed")));
                }
            }
            Some(models) => {
                let pull = crate::commands::pull::PullArgs {
                    reference: self.model.clone(),
                    folders: a.folders.clone(),
                    hub: a.hub.clone(),
                };
                crate::commands::pull::run(pull).await?;
                models.refresh_now().await;
            }
        }
        anyhow::ensure!(self.has_model().await?, "`{}` was pulled but is not served: see `hearth list`", self.model);
        Ok(())
    }

    fn body(&self) -> Value {
        let mut messages = Vec::new();
        if let Some(s) = &self.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.extend(self.messages.iter().cloned());
        let mut body = json!({"model": self.model, "messages": messages, "stream": true});
        for (k, v) in &self.options {
            body[k] = v.clone();
        }
        body
    }

    /// Sends `prompt`, prints the answer as it streams; Ctrl+C stops it (what came is kept).
    async fn ask(&mut self, prompt: &str, interrupts: &tokio::sync::Notify) -> anyhow::Result<()> {
        self.messages.push(json!({"role": "user", "content": prompt}));
        // Ctrl+C from here on, while the model loads or the answer streams, stops this answer.
        let stop = interrupts.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        let send = self.http.post(format!("{}/v1/chat/completions", self.url)).json(&self.body()).send();
        let resp = tokio::select! {
            r = send => r.context("cannot reach the server")?,
            () = &mut stop => {
                self.messages.pop();
                println!();
                return Ok(());
            }
        };
        if !resp.status().is_success() {
            self.messages.pop();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            return Err(anyhow!("{}", v["error"]["message"].as_str().unwrap_or("the server refused the request")));
        }
        let mut stream = resp.bytes_stream();
        let (mut answer, mut pending) = (String::new(), Vec::new());
        let mut out = std::io::stdout();
        loop {
            let chunk = tokio::select! {
                c = stream.next() => c,
                () = &mut stop => break,
            };
            let Some(chunk) = chunk else { break };
            pending.extend_from_slice(&chunk?);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Some(text) = delta(&String::from_utf8_lossy(&line)) {
                    answer.push_str(&text);
                    let _ = write!(out, "{text}");
                    let _ = out.flush();
                }
            }
        }
        let _ = writeln!(out);
        self.messages.push(json!({"role": "assistant", "content": answer}));
        Ok(())
    }
}

/// The text of one SSE line of a chat stream.
fn delta(line: &str) -> Option<String> {
    let data = line.trim().strip_prefix("data:")?.trim();
    let v: Value = serde_json::from_str(data).ok()?;
    if let Some(e) = v["error"]["message"].as_str() {
        return Some(format!("\n[error: {e}]"));
    }
    v["choices"][0]["delta"]["content"].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// What a line typed at the prompt asks for.
#[derive(Debug, PartialEq)]
enum Line {
    Ask(String),
    Bye,
    Clear,
    Show,
    Help,
    System(String),
    Set(String, Value),
    Bad(String),
}

/// The sampling options `/set` takes, and the request field each one is.
const OPTIONS: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("min_p", "min_p"),
    ("seed", "seed"),
    ("num_predict", "max_tokens"),
    ("max_tokens", "max_tokens"),
    ("repeat_penalty", "repeat_penalty"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
];

fn parse(line: &str) -> Line {
    let t = line.trim();
    let (cmd, rest) = t.split_once(char::is_whitespace).map_or((t, ""), |(c, r)| (c, r.trim()));
    match cmd {
        "/bye" | "/exit" => Line::Bye,
        "/clear" => Line::Clear,
        "/show" => Line::Show,
        "/?" | "/help" => Line::Help,
        "/system" => Line::System(rest.to_string()),
        "/set" => {
            let (k, v) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(k, v)| (k, v.trim()));
            if k == "system" {
                return Line::System(v.to_string());
            }
            let Some((_, field)) = OPTIONS.iter().find(|(name, _)| *name == k) else {
                return Line::Bad(format!("unknown parameter `{k}`; /set takes {}", names()));
            };
            match serde_json::from_str::<Value>(v) {
                Ok(n @ Value::Number(_)) => Line::Set((*field).to_string(), n),
                _ => Line::Bad(format!("/set {k} needs a number")),
            }
        }
        c if c.starts_with('/') => Line::Bad(format!("unknown command {c}; /? lists them")),
        _ => Line::Ask(line.to_string()),
    }
}

fn names() -> String {
    OPTIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

const HELP: &str = "Commands:\n  /set PARAMETER VALUE   temperature, top_p, top_k, min_p, seed, num_predict, repeat_penalty, ...\n  /set system TEXT, /system TEXT   the system message\n  /show                  the model and the parameters set\n  /clear                 forget the conversation\n  /bye                   leave (or Ctrl+D)\n  \"\"\" ... \"\"\"            a message of several lines\nCtrl+C stops an answer.";

fn repl(rt: &tokio::runtime::Runtime, chat: &mut Chat, interrupts: &tokio::sync::Notify) -> anyhow::Result<()> {
    let mut rl = rustyline::DefaultEditor::new()?;
    eprintln!("{} is ready. /? for help, /bye to leave.", chat.model);
    loop {
        let Some(line) = read_message(&mut rl)? else { return Ok(()) };
        if line.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line.as_str());
        match parse(&line) {
            Line::Ask(p) => {
                if let Err(e) = rt.block_on(chat.ask(&p, interrupts)) {
                    eprintln!("error: {e}");
                }
            }
            Line::Bye => return Ok(()),
            Line::Clear => {
                chat.messages.clear();
                eprintln!("Cleared the conversation.");
            }
            Line::System(s) => {
                chat.system = Some(s).filter(|s| !s.is_empty());
                eprintln!("Set the system message.");
            }
            Line::Set(k, v) => {
                eprintln!("Set {k} to {v}.");
                chat.options.insert(k, v);
            }
            Line::Show => {
                let info = rt.block_on(async {
                    let r = chat.http.get(format!("{}/v1/models/{}", chat.url, chat.model)).send().await?;
                    r.json::<Value>().await
                });
                let meta = info.map(|v| v["meta"].clone()).unwrap_or(Value::Null);
                eprintln!(
                    "{}\nsystem: {:?}\nparameters: {}",
                    serde_json::to_string_pretty(&meta)?,
                    chat.system,
                    Value::Object(chat.options.clone())
                );
            }
            Line::Help => eprintln!("{HELP}"),
            Line::Bad(m) => eprintln!("{m}"),
        }
    }
}

/// One message from the prompt: a line, or the lines between `"""` and `"""`; `None` at
/// Ctrl+D. Ctrl+C at the prompt clears the line.
fn read_message(rl: &mut rustyline::DefaultEditor) -> anyhow::Result<Option<String>> {
    use rustyline::error::ReadlineError;
    let first = match rl.readline(">>> ") {
        Ok(l) => l,
        Err(ReadlineError::Interrupted) => {
            eprintln!("Use Ctrl+D or /bye to leave.");
            return Ok(Some(String::new()));
        }
        Err(ReadlineError::Eof) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(start) = first.trim_start().strip_prefix("\"\"\"") else { return Ok(Some(first)) };
    let mut text = start.to_string();
    if let Some(done) = text.strip_suffix("\"\"\"") {
        return Ok(Some(done.to_string()));
    }
    loop {
        match rl.readline("... ") {
            Ok(l) => match l.strip_suffix("\"\"\"") {
                Some(last) => {
                    text.push('\n');
                    text.push_str(last);
                    return Ok(Some(text.trim_start_matches('\n').to_string()));
                }
                None => {
                    text.push('\n');
                    text.push_str(&l);
                }
            },
            Err(ReadlineError::Interrupted) => return Ok(Some(String::new())),
            Err(ReadlineError::Eof) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_parameters() {
        assert_eq!(parse("/bye"), Line::Bye);
        assert_eq!(parse("/set temperature 0.2"), Line::Set("temperature".into(), json!(0.2)));
        assert_eq!(parse("/set num_predict 12"), Line::Set("max_tokens".into(), json!(12)));
        assert_eq!(parse("/set system Be brief."), Line::System("Be brief.".into()));
        assert_eq!(parse("/system You are terse."), Line::System("You are terse.".into()));
        assert!(matches!(parse("/set warmth 2"), Line::Bad(_)));
        assert!(matches!(parse("/set temperature hot"), Line::Bad(_)));
        assert!(matches!(parse("/frobnicate"), Line::Bad(_)));
        assert_eq!(parse("hello /there"), Line::Ask("hello /there".into()));
    }

    #[test]
    fn stream_lines_give_their_text() {
        assert_eq!(delta(r#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#).as_deref(), Some("Hi"));
        assert_eq!(delta("data: [DONE]"), None);
        assert_eq!(delta(""), None);
    }
}
