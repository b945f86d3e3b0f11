//! `POST /api/pull` (Ollama's, NDJSON progress) and `/models/pull` (Hearth's, jobs a client
//! polls: [`jobs`]): a model from the Hugging Face hub into the models folder, by the same code
//! as `hearth pull`. The pulled names (`hf.co/OWNER/REPO:QUANT`) become aliases of the model, so
//! a client can chat with the name it pulled.

use crate::http::error::ApiError;
use crate::http::extract::AnyJson;
use crate::ollama::model_name;
use crate::services::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_hub::{Hub, Progress, PullError, Pulled, Reference};
use hearth_protocol::ollama::{PullProgress, PullRequest};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Progress lines held for a slow client; more are dropped (the last one always comes).
const PROGRESS_QUEUE: usize = 64;

fn line(status: &str) -> PullProgress {
    PullProgress { status: status.into(), ..Default::default() }
}

/// The Ollama line for a pull's progress, if it makes one.
fn progress_line(p: &Progress) -> Option<PullProgress> {
    let pulling = |sha: &str, done: u64, total: u64| PullProgress {
        status: format!("pulling {}", &sha[..sha.len().min(12)]),
        digest: Some(format!("sha256:{sha}")),
        total: Some(total),
        completed: Some(done),
    };
    match p {
        // Which quantisation was chosen when the default is missing: a status line of its own.
        Progress::Resolved { note, .. } => note.as_deref().map(line),
        Progress::Cached { sha256, size, .. } => Some(pulling(sha256, *size, *size)),
        Progress::Downloading { sha256, done, total, .. } => Some(pulling(sha256, *done, *total)),
        Progress::Verifying { .. } => Some(line("verifying sha256 digest")),
    }
}

/// The hub client and the models folder, when this server can pull.
pub(crate) fn puller(app: &AppState) -> Result<(Hub, PathBuf), ApiError> {
    let settings = app.hub.clone().ok_or(ApiError::Disabled(crate::http::refused::Feature::Pull))?;
    let dir = app
        .models
        .registry()
        .dir()
        .map(PathBuf::from)
        .ok_or(ApiError::Disabled(crate::http::refused::Feature::Pull))?;
    Ok((Hub::new(settings)?, dir))
}

/// Pulls `r`, then makes its names aliases and serves it at once.
pub(crate) async fn pull(
    app: &AppState,
    hub: &Hub,
    dir: &std::path::Path,
    r: &Reference,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<Pulled, PullError> {
    let pulled = hub.pull(r, dir, on).await?;
    if let Err(e) = hearth_engine::registry::remember_aliases(dir, &r.names(&pulled.quant), &pulled.id) {
        tracing::warn!(error = %e, "cannot record the pulled model's names");
    }
    app.models.refresh_now().await;
    Ok(pulled)
}

/// `POST /api/pull`: pulls a model from the Hugging Face hub.
///
/// # Errors
/// 400 for a name that is not a hub reference, 404 when the hub has no such repository, file
/// or quantisation, 502 when the hub refuses or fails, 507 when the disk is full.
#[utoipa::path(post, path = "/api/pull", tag = "ollama", request_body = PullRequest, responses((status = 200, description = "NDJSON progress lines ending in `success` (the default), or one object with `stream: false`", body = PullProgress), (status = 400, description = "Not a hub reference", body = hearth_protocol::ollama::Error), (status = 404, description = "No such model on the hub", body = hearth_protocol::ollama::Error), (status = 502, description = "The hub refused or failed", body = hearth_protocol::ollama::Error), (status = 507, description = "The disk is full", body = hearth_protocol::ollama::Error)))]
pub async fn ollama_pull(
    State(app): State<AppState>,
    who: crate::services::owner::Principal,
    AnyJson(req): AnyJson<PullRequest>,
) -> Result<Response, ApiError> {
    who.may_add_models()?;
    let named = if req.model.is_empty() { req.name.clone() } else { req.model.clone() };
    let name = model_name(named.trim());
    if name.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    let stream = req.stream.unwrap_or(true);
    if app.models.resolve(name).is_ok() {
        return Ok(done(stream));
    }
    let r: Reference = name.parse()?;
    let (hub, dir) = puller(&app)?;
    // Counted with /models/pull's jobs, so both routes together keep to the running-pull cap.
    let job = crate::services::pulls::Tracked::begin(&app.pulls, name, &r)?;
    if !stream {
        let outcome = pull(&app, &hub, &dir, &r, &mut |_| {}).await;
        job.end(&outcome);
        outcome?;
        return Ok(Json(line("success")).into_response());
    }
    let (tx, rx) = mpsc::channel::<String>(PROGRESS_QUEUE);
    let _ = tx.try_send(ndjson(&line("pulling manifest")));
    tokio::spawn(async move {
        let progress = tx.clone();
        let mut on = move |p: Progress| {
            if let Some(l) = progress_line(&p) {
                let _ = progress.try_send(ndjson(&l));
            }
        };
        let outcome = tokio::select! {
            r = pull(&app, &hub, &dir, &r, &mut on) => r,
            // The client went away: the partial file stays for a resume.
            () = tx.closed() => return job.cancelled(),
        };
        job.end(&outcome);
        let tail = match outcome {
            Ok(_) => vec![ndjson(&line("writing manifest")), ndjson(&line("success"))],
            Err(e) => vec![serde_json::json!({ "error": e.to_string() }).to_string() + "\n"],
        };
        for l in tail {
            let _ = tx.send(l).await;
        }
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|l| (Ok::<_, std::convert::Infallible>(l), rx))
    });
    let body = Body::from_stream(lines);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// The answer for a model that is here already.
fn done(stream: bool) -> Response {
    if stream {
        ([(header::CONTENT_TYPE, "application/x-ndjson")], ndjson(&line("success"))).into_response()
    } else {
        Json(line("success")).into_response()
    }
}

fn ndjson(p: &PullProgress) -> String {
    serde_json::to_string(p).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_ollama_writes_it() {
        let sha = "ab".repeat(32);
        let p = progress_line(&Progress::Downloading { file: "f".into(), sha256: sha.clone(), done: 5, total: 10 })
            .unwrap();
        assert_eq!(p.status, format!("pulling {}", &sha[..12]));
        assert_eq!((p.digest.unwrap(), p.total, p.completed), (format!("sha256:{sha}"), Some(10), Some(5)));
        assert_eq!(progress_line(&Progress::Verifying { file: "f".into() }).unwrap().status, "verifying sha256 digest");
    }
}
