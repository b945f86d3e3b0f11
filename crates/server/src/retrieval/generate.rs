//! `POST /api/v1/generate`: a grounded answer to one prompt, with citations.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::refused::Missing;
use crate::openai::chat::{self, Chat};
use crate::pipeline::generate as gen;
use crate::retrieval::schema::{Generation, UploadGeneration};
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hearth_engine::{KeepAlive, ModelKind};
use hearth_protocol::openai::{
    ChatCompletionRequest, ChatMessage, ErrorBody, MessageContent, RagOptions, SamplingFields,
};
use hearth_rag::store::StoreError;
use serde::Deserialize;

/// `POST /api/v1/generate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RagGenerateRequest)]
pub struct GenerateRequest {
    /// The question or instruction.
    pub prompt: Option<String>,
    /// Collection to answer from; without one the model answers alone.
    pub collection: Option<String>,
    /// Chunks to retrieve (default 4).
    pub top_k: Option<i64>,
    /// Chat model (default: the server's).
    #[serde(default)]
    pub model: String,
    /// Stream as chat completion chunks (citations on the first one).
    #[serde(default)]
    pub stream: bool,
    /// Most tokens in the answer (default 512, `pipeline::ground::DEFAULT_MAX_TOKENS`).
    pub max_tokens: Option<i64>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Conversation memory: earlier turns of this session are sent along (the oldest dropped
    /// when they do not fit), and this turn is stored after the answer.
    pub session_id: Option<String>,
}

/// Turns of a session (by stored id) that fit in half the context left after the answer,
/// newest kept.
async fn history(
    app: &AppState,
    who: &Principal,
    model: &str,
    session: &str,
    max_tokens: usize,
) -> Result<Vec<ChatMessage>, ApiError> {
    let rag =
        app.rag.clone().ok_or_else(|| ApiError::unsupported("session_id", "sessions need retrieval to be enabled"))?;
    let handle = who.models(&app.models).acquire(model, Some(ModelKind::Causal), KeepAlive::Default).await?;
    let (store, id) = (rag.store.clone(), session.to_string());
    let turns = crate::services::retrieval::blocking(move || store.turns(&id)).await?;
    let budget = (handle.loaded.n_ctx as usize).saturating_sub(max_tokens) / 2;
    let mut used = 0;
    let mut kept = Vec::new();
    for t in turns.into_iter().rev() {
        let n = handle.count_tokens(t.content.clone()).await? + 4;
        if used + n > budget {
            break;
        }
        used += n;
        kept.push(ChatMessage { role: t.role, content: Some(MessageContent::Text(t.content)), ..Default::default() });
    }
    kept.reverse();
    Ok(kept)
}

/// Answers `prompt` from `collection`; `citations` lists the sources by their `[n]`.
///
/// # Errors
/// 400 without a prompt, 404 unknown collection or model.
#[utoipa::path(post, path = "/api/v1/generate", tag = "retrieval", request_body = GenerateRequest, responses((status = 200, description = "The answer with its citations (or chat completion chunks when streamed)", body = crate::retrieval::schema::Generation), (status = 400, description = "Bad request", body = ErrorBody), (status = 404, description = "Unknown collection or model", body = ErrorBody), (status = 403, description = "Over the API key's quota", body = ErrorBody)))]
pub async fn generate(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    match answer(&app, caller, req).await? {
        Answer::Stream(res) => Ok(res),
        Answer::Done { model, summary, generation } => Ok(gen::answer(model, summary, generation)),
    }
}

/// A grounded answer: streamed, or whole (with what the metrics and log line need).
enum Answer {
    Stream(Response),
    Done { model: String, summary: crate::http::middleware::Summary, generation: Generation },
}

/// Answers one [`GenerateRequest`], storing the turn in its session.
async fn answer(app: &AppState, caller: Option<Extension<Caller>>, req: GenerateRequest) -> Result<Answer, ApiError> {
    let prompt =
        req.prompt.filter(|p| !p.trim().is_empty()).ok_or_else(|| ApiError::invalid("prompt", "prompt is required"))?;
    let max_tokens = req.max_tokens.unwrap_or(i64::from(crate::pipeline::ground::DEFAULT_MAX_TOKENS));
    if !(1..=1 << 20).contains(&max_tokens) {
        return Err(ApiError::invalid("max_tokens", "max_tokens must be at least 1"));
    }
    let session = req.session_id.filter(|s| !s.is_empty());
    if let Some(id) = &session {
        if id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::invalid("session_id", "a session id is 1-128 printable ASCII characters"));
        }
    }
    let who = Principal::of(caller.as_ref().map(|c| &c.0));
    let stored = session.as_deref().map(|id| who.qualify(id));
    let mut messages = match &stored {
        Some(id) => history(app, &who, &req.model, id, max_tokens as usize).await?,
        None => Vec::new(),
    };
    if stored.is_some() && messages.is_empty() {
        // A session this request starts.
        if let Some(rag) = &app.rag {
            crate::services::quota::session(rag, &who).await?;
        }
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: Some(MessageContent::Text(prompt.clone())),
        ..Default::default()
    });
    let chat_req = ChatCompletionRequest {
        model: req.model,
        messages,
        stream: req.stream,
        max_tokens: Some(max_tokens),
        rag: req.collection.map(|collection| RagOptions { collection, top_k: req.top_k }),
        sampling: SamplingFields { temperature: req.temperature, ..Default::default() },
        ..Default::default()
    };
    // A streamed answer is stored when its stream ends; a whole one below, before replying.
    let on_answer = match (&stored, app.rag.clone(), req.stream) {
        (Some(id), Some(rag), true) => {
            let (id, prompt) = (id.clone(), prompt.clone());
            Some(Box::new(move |answer: String| {
                let turns = vec![("user".to_string(), prompt), ("assistant".to_string(), answer)];
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = rag.store.append_turns(&id, &turns) {
                        tracing::error!(session = %id, error = %e, "could not store the session's turn");
                    }
                });
            }) as crate::pipeline::prepare::OnAnswer)
        }
        _ => None,
    };
    match chat::run(app, caller, chat_req, on_answer).await? {
        Chat::Stream(res) => Ok(Answer::Stream(res)),
        Chat::Done { model, summary, body } => {
            let choice = body.choices.into_iter().next();
            let answer = choice.as_ref().map(|c| c.message.content.clone()).unwrap_or_default().unwrap_or_default();
            if let (Some(id), Some(rag)) = (&stored, app.rag.clone()) {
                let turns = vec![("user".to_string(), prompt), ("assistant".to_string(), answer.clone())];
                let id = id.clone();
                crate::services::retrieval::blocking(move || rag.store.append_turns(&id, &turns)).await?;
            }
            let generation = Generation {
                id: body.id.replace("chatcmpl", "gen"),
                object: "generation",
                created: body.created,
                model: body.model,
                answer,
                session_id: session,
                finish_reason: choice.map(|c| c.finish_reason).unwrap_or_default(),
                citations: body.citations.unwrap_or_default(),
                usage: body.usage,
            };
            Ok(Answer::Done { model, summary, generation })
        }
    }
}

/// `GET /api/v1/sessions`: stored conversations, most recent first.
///
/// # Errors
/// 404 when retrieval is off.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "retrieval", responses((status = 200, description = "Sessions with turn counts", body = crate::retrieval::schema::Sessions), (status = 404, description = "Retrieval is off", body = ErrorBody)))]
pub async fn list_sessions(State(app): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    let store = crate::retrieval::routes::rag(&app)?.store.clone();
    let all = crate::services::retrieval::blocking(move || store.list_sessions()).await?;
    let data = who.visible(all, |s| &mut s.id);
    Ok(axum::Json(crate::retrieval::schema::Sessions::of(data)).into_response())
}

/// `GET /api/v1/sessions/{id}`: a conversation's turns.
///
/// # Errors
/// 404 for an unknown session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "retrieval", params(("id" = String, Path, description = "Session id")), responses((status = 200, description = "Turns, oldest first", body = crate::retrieval::schema::Session), (status = 404, description = "Unknown session", body = ErrorBody)))]
pub async fn get_session(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = crate::retrieval::routes::rag(&app)?.store.clone();
    let i = who.qualify(&id);
    let turns = crate::services::retrieval::blocking(move || store.turns(&i)).await?;
    if turns.is_empty() {
        return Err(ApiError::Missing(Missing::Session(id)));
    }
    Ok(axum::Json(crate::retrieval::schema::Session { id, turns }).into_response())
}

/// `DELETE /api/v1/sessions/{id}`.
///
/// # Errors
/// 404 for an unknown session.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "retrieval", params(("id" = String, Path, description = "Session id")), responses((status = 200, description = "Deleted", body = crate::retrieval::schema::SessionDeleted), (status = 404, description = "Unknown session", body = ErrorBody)))]
pub async fn delete_session(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = crate::retrieval::routes::rag(&app)?.store.clone();
    let i = who.qualify(&id);
    if crate::services::retrieval::blocking(move || store.delete_session(&i)).await? {
        Ok(axum::Json(crate::retrieval::schema::SessionDeleted { id, deleted: true }).into_response())
    } else {
        Err(ApiError::Missing(Missing::Session(id)))
    }
}

/// `POST /api/v1/generate/upload`: multipart files plus a `prompt` field (and optionally
/// `collection`, `top_k`, `model`, `max_tokens`). The files are ingested (into `collection`,
/// created if needed, or a temporary collection removed after the answer), then the prompt is
/// answered from them with citations.
///
/// # Errors
/// As the upload and generate endpoints.
#[utoipa::path(post, path = "/api/v1/generate/upload", tag = "retrieval", request_body(content_type = "multipart/form-data", description = "Files, `prompt`, and optional `collection`, `top_k`, `model`, `max_tokens`"), responses((status = 200, description = "The answer with its citations, and the stored files", body = crate::retrieval::schema::UploadGeneration), (status = 400, description = "Bad request", body = ErrorBody), (status = 413, description = "Too large", body = ErrorBody), (status = 415, description = "Unsupported type", body = ErrorBody), (status = 403, description = "Over the API key's quota", body = ErrorBody), (status = 408, description = "The body came too slowly", body = ErrorBody)))]
pub async fn generate_upload(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    form: axum::extract::Multipart,
) -> Result<Response, ApiError> {
    use crate::retrieval::routes;
    let rag = routes::rag(&app)?;
    let key = caller.as_ref().map(|c| &c.0);
    let _my_slot = crate::services::share::take(
        &app.shares.uploads,
        key,
        1,
        crate::services::retrieval::MAX_CONCURRENT_UPLOADS,
        "uploads",
    )?;
    let _reading = rag.admit_upload()?;
    let form = routes::read_form(rag.max_upload_bytes, form).await?;
    let field = |k: &str| form.fields.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let prompt = field("prompt").ok_or_else(|| ApiError::invalid("prompt", "prompt is required"))?;
    let number = |k: &str| -> Result<Option<i64>, ApiError> {
        field(k)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::invalid(k, format!("{k} must be a number"))))
            .transpose()
    };
    let (top_k, max_tokens) = (number("top_k")?, number("max_tokens")?);
    let (named, temporary) = match field("collection") {
        Some(c) => (c, false),
        None => (crate::http::ids::new_id("tmp"), true),
    };
    let who = Principal::of(caller.as_ref().map(|c| &c.0));
    // Refused before any file is parsed or embedded: a model that cannot answer, or a server
    // at its limit (the answer takes its own permit once the files are in).
    who.models(&app.models).resolve_as(&field("model").unwrap_or_default(), ModelKind::Causal)?;
    let admitted = crate::pipeline::generate::admit(&app, caller.clone())?;
    let stored = who.qualify(&named);
    let n = form.files.len();
    let who_now = Principal::of(key);
    if !temporary {
        let bytes: usize = form.files.iter().map(|(_, _, b)| b.len()).sum();
        crate::services::quota::upload(&rag, &who_now, n as u64, bytes as u64).await?;
    }
    let _my_places = crate::services::share::take(
        &app.shares.places,
        key,
        n,
        crate::services::retrieval::MAX_PENDING_JOBS,
        "queued documents",
    )?;
    let mut places = rag.reserve(n)?;
    let parsed = routes::parse_files(&rag, form.files, &stored, &form.metadata).await?;
    if !temporary {
        let (store, c) = (rag.store.clone(), stored.clone());
        if crate::services::retrieval::blocking(move || store.collection(&c)).await?.is_none() {
            crate::services::quota::collection(&rag, &who).await?;
        }
    }
    let handle = app.models.get_embedding(&rag.embedding_model).await?;
    let (store, c, dim, model) = (rag.store.clone(), stored.clone(), handle.loaded.n_embd, handle.info.id.clone());
    crate::services::retrieval::blocking_named(&named, move || match store.collection(&c)? {
        Some(_) => Ok(()),
        // Another request (or replica) may create it between the two calls: fine too.
        None => match store.create_collection(&c, dim, &model) {
            Ok(_) | Err(StoreError::CollectionExists(_)) => Ok(()),
            Err(e) => Err(e),
        },
    })
    .await?;
    // Removed when this request ends however it ends: answered, failed, timed out, or dropped
    // because its client went away.
    let _temporary = temporary.then(|| TemporaryCollection { store: rag.store.clone(), name: stored.clone() });
    let mut documents = Vec::new();
    let mut failure = None;
    for up in parsed {
        let job = places.new_job(who.owner(), &named, &up.doc.name).await;
        let _slot = rag.ingest_slot().await;
        match crate::retrieval::ingest::ingest(&app, &rag, (&job.id, &who), up).await {
            Ok(r) => documents.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(admitted);
    let answer = match failure {
        Some(e) => Err(e),
        None => {
            let req = GenerateRequest {
                prompt: Some(prompt),
                collection: Some(named.clone()),
                top_k,
                model: field("model").unwrap_or_default(),
                stream: false,
                max_tokens,
                temperature: None,
                session_id: None,
            };
            answer(&app, caller, req).await
        }
    };
    match answer? {
        Answer::Stream(res) => Ok(res),
        Answer::Done { model, summary, generation } => {
            let collection = (!temporary).then_some(named);
            Ok(gen::answer(model, summary, UploadGeneration { generation, documents, collection }))
        }
    }
}

/// The collection a `/api/v1/generate/upload` without `collection` made for its files: deleted
/// (off the async threads) when the request is over, whichever way it ends.
struct TemporaryCollection {
    store: std::sync::Arc<dyn hearth_rag::store::VectorStore>,
    name: String,
}

impl Drop for TemporaryCollection {
    fn drop(&mut self) {
        let (store, name) = (self.store.clone(), std::mem::take(&mut self.name));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || {
                if let Err(e) = store.delete_collection(&name) {
                    tracing::warn!(collection = %name, error = %e, "cannot remove a temporary collection");
                }
            });
        }
    }
}
