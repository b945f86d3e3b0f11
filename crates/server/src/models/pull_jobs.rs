//! `/models/pull`: a pull from the hub as a job the browser UI polls. `POST` starts one (or
//! joins the running pull of the same reference), `GET /models/pull/{id}` shows its bytes,
//! speed and time left, `GET /models/pull` lists recent ones, `DELETE` cancels a running one
//! (what was fetched stays in the hub cache, and the next pull resumes it) or forgets a finished
//! one. At most [`MAX_RUNNING_PULLS`] run at once.

use super::pull::{pull, puller};
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::services::pulls::{new_job, unix_now, Begun};
use crate::services::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hearth_hub::{Progress, Reference};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::pull::{PullJob, PullJobRequest, PullJobs, PullStatus};

/// Starts pulling a model from the Hugging Face hub as a job.
///
/// # Errors
/// 400 for a name that is not a hub reference, 429 when [`MAX_RUNNING_PULLS`] run already,
/// 404 when this server does not pull. The hub's own refusals end the job as `failed`.
#[utoipa::path(post, path = "/models/pull", tag = "models", request_body = PullJobRequest, responses((status = 202, description = "The job, running", body = PullJob), (status = 200, description = "The model is here already (a `done` job), or the running job pulling it", body = PullJob), (status = 400, description = "Not a hub reference", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 403, description = "Not an admin key", body = ErrorBody), (status = 404, description = "This server does not pull models", body = ErrorBody), (status = 429, description = "Too many pulls running", body = ErrorBody)))]
pub async fn start(
    State(app): State<AppState>,
    who: crate::services::owner::Principal,
    ApiJson(req): ApiJson<PullJobRequest>,
) -> Result<(StatusCode, Json<PullJob>), ApiError> {
    who.may_add_models()?;
    let name = crate::ollama::model_name(req.model.trim());
    if name.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    if let Ok(info) = app.models.resolve(name) {
        let job = PullJob { model_id: Some(info.id), finished_at: Some(unix_now()), ..new_job(name, PullStatus::Done) };
        return Ok((StatusCode::OK, Json(job)));
    }
    let r: Reference = name.parse()?;
    let (hub, dir) = puller(&app)?;
    let (job, cancelled) = match app.pulls.begin(name, r.to_string())? {
        Begun::Joined(job) => return Ok((StatusCode::OK, Json(job))),
        Begun::New(job, cancelled) => (job, cancelled),
    };
    let id = job.id.clone();
    tokio::spawn(async move {
        let pulls = app.pulls.clone();
        let mut on = {
            let (pulls, id) = (pulls.clone(), id.clone());
            move |p: Progress| pulls.update(&id, |e| e.on(&p))
        };
        let outcome = tokio::select! {
            r = pull(&app, &hub, &dir, &r, &mut on) => Some(r),
            _ = cancelled => None,
        };
        pulls.update(&id, |e| {
            if e.job.status == PullStatus::Running || outcome.as_ref().is_some_and(Result::is_ok) {
                e.end(outcome.as_ref());
            }
        });
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Recent pull jobs, newest first.
#[utoipa::path(get, path = "/models/pull", tag = "models", responses((status = 200, description = "Recent pull jobs, newest first", body = PullJobs), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 403, description = "Not an admin key", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>) -> Json<PullJobs> {
    Json(PullJobs { object: "list".into(), data: app.pulls.list() })
}

/// A pull job's progress.
///
/// # Errors
/// 404 for an unknown (or forgotten) job.
#[utoipa::path(get, path = "/models/pull/{id}", tag = "models", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "The job", body = PullJob), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 403, description = "Not an admin key", body = ErrorBody), (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get_job(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<PullJob>, ApiError> {
    app.pulls.get(&id).map(Json)
}

/// Cancels a running pull (what was fetched stays for a resume), or forgets a finished one.
///
/// # Errors
/// 404 for an unknown (or forgotten) job.
#[utoipa::path(delete, path = "/models/pull/{id}", tag = "models", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "The job, `cancelled` if it was running", body = PullJob), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 403, description = "Not an admin key", body = ErrorBody), (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn cancel(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<PullJob>, ApiError> {
    app.pulls.cancel(&id).map(Json)
}
