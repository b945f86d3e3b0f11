//! Handlers of the retrieval API.

use super::ingest::{self, Upload};
use super::schema;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::refused::{Feature, Missing};
use crate::services::owner::Principal;
use crate::services::retrieval::Rag;
use crate::services::retrieval::{blocking, blocking_named};
use crate::services::share;
use crate::services::state::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_protocol::openai::ErrorBody;
use hearth_rag::parse;
use hearth_rag::store::{Collection, NewDocument, Query, SearchMode, StoreError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(crate) fn rag(app: &AppState) -> Result<Arc<Rag>, ApiError> {
    app.rag.clone().ok_or(ApiError::Disabled(Feature::Retrieval))
}

/// A stored collection as `who` names it.
fn shown(who: &Principal, mut c: Collection) -> Collection {
    c.name = who.show(&c.name).unwrap_or(c.name);
    c
}

/// `who`'s collection `named` (stored name), or 404: another key's is unknown to it.
pub(crate) async fn owned_collection(rag: &Rag, who: &Principal, named: &str) -> Result<String, ApiError> {
    let (store, stored) = (rag.store.clone(), who.qualify(named));
    let s = stored.clone();
    match blocking_named(named, move || store.collection(&s)).await? {
        Some(_) => Ok(stored),
        None => Err(StoreError::NoCollection(named.to_string()).into()),
    }
}

/// [`blocking`] for work on the collection the client named `named`: errors name it so, not
/// Results of a search when the request names no `top_k`.
pub const SEARCH_TOP_K: usize = 5;

/// `POST /collections` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateCollection {
    /// Name: letters, digits, `-`, `_`, `.`.
    pub name: Option<String>,
}

/// `POST /collections`: a collection for the server's embedding model.
///
/// # Errors
/// 400 bad name, 409 exists.
#[utoipa::path(post, path = "/collections", tag = "retrieval", request_body = CreateCollection, responses((status = 201, description = "The collection", body = Collection), (status = 409, description = "It exists", body = ErrorBody), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody), (status = 403, description = "Over the API key's quota", body = ErrorBody)))]
pub async fn create_collection(
    State(app): State<AppState>,
    who: Principal,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<CreateCollection>,
) -> Result<Response, ApiError> {
    let rag = rag(&app)?;
    // It may load the embedding model.
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let name = req.name.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::invalid("name", "name is required"))?;
    if name.contains('/') {
        let msg = "a collection name is 1-64 characters of letters, digits, '-', '_' or '.'";
        return Err(ApiError::invalid("name", msg));
    }
    crate::services::quota::collection(&rag, &who).await?;
    let handle = app.models.get_embedding(&rag.embedding_model).await?;
    let (dim, model, store) = (handle.loaded.n_embd, handle.info.id.clone(), rag.store.clone());
    let stored = who.qualify(&name);
    let c = blocking_named(&name, move || store.create_collection(&stored, dim, &model)).await?;
    Ok((StatusCode::CREATED, Json(shown(&who, c))).into_response())
}

/// `GET /collections`.
///
/// # Errors
/// Store failures.
#[utoipa::path(get, path = "/collections", tag = "retrieval", responses((status = 200, description = "Collections with document and chunk counts", body = schema::Collections), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn list_collections(
    State(app): State<AppState>,
    who: Principal,
) -> Result<Json<schema::Collections>, ApiError> {
    let store = rag(&app)?.store.clone();
    let all = blocking(move || store.list_collections()).await?;
    let data = who.visible(all, |c| &mut c.name);
    Ok(Json(schema::Collections::of(data)))
}

/// `GET /collections/{c}` with document and chunk counts.
///
/// # Errors
/// 404.
#[utoipa::path(get, path = "/collections/{name}", tag = "retrieval", params(("name" = String, Path, description = "Collection")), responses((status = 200, description = "The collection with counts", body = Collection), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn get_collection(
    State(app): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = rag(&app)?.store.clone();
    let n = who.qualify(&name);
    match blocking(move || store.collection(&n)).await? {
        Some(c) => Ok(Json(shown(&who, c)).into_response()),
        None => Err(StoreError::NoCollection(name).into()),
    }
}

/// `DELETE /collections/{c}`.
///
/// # Errors
/// 404.
#[utoipa::path(delete, path = "/collections/{name}", tag = "retrieval", params(("name" = String, Path, description = "Collection")), responses((status = 200, description = "Deleted", body = schema::CollectionDeleted), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn delete_collection(
    State(app): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = rag(&app)?.store.clone();
    let n = who.qualify(&name);
    if blocking(move || store.delete_collection(&n)).await? {
        Ok(Json(schema::CollectionDeleted { name, deleted: true }).into_response())
    } else {
        Err(StoreError::NoCollection(name).into())
    }
}

/// `POST /collections/{c}/documents`: multipart files (and an optional `metadata` JSON
/// object for all of them). Each file is parsed now (a bad one is a 4xx for the request);
/// chunking, embedding and storing run as a job per file.
///
/// # Errors
/// 404 collection, 400 corrupt or empty file, 413 too large, 415 unsupported type.
#[utoipa::path(post, path = "/collections/{name}/documents", tag = "retrieval", params(("name" = String, Path, description = "Collection")), request_body(content_type = "multipart/form-data", description = "One or more files (PDF, DOCX, Markdown, HTML, text) and an optional `metadata` JSON object"), responses((status = 202, description = "One ingestion job per file", body = schema::Jobs), (status = 413, description = "Over the upload limit", body = ErrorBody), (status = 415, description = "Unsupported type", body = ErrorBody), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody), (status = 403, description = "Over the API key's quota", body = ErrorBody), (status = 408, description = "The body came too slowly", body = ErrorBody)))]
pub async fn upload(
    State(app): State<AppState>,
    who: Principal,
    Path(collection): Path<String>,
    form: Multipart,
) -> Result<Response, ApiError> {
    let rag = rag(&app)?;
    let stored = owned_collection(&rag, &who, &collection).await?;
    let _my_slot = share::take(
        &app.shares.uploads,
        who.caller(),
        1,
        crate::services::retrieval::MAX_CONCURRENT_UPLOADS,
        "uploads",
    )?;
    let _reading = rag.admit_upload()?;
    let form = read_form(rag.max_upload_bytes, form).await?;
    // The queue's places are taken before parsing, so no parsed document waits without one.
    let n = form.files.len();
    let bytes: usize = form.files.iter().map(|(_, _, b)| b.len()).sum();
    crate::services::quota::upload(&rag, &who, n as u64, bytes as u64).await?;
    let mut my_places = share::take(
        &app.shares.places,
        who.caller(),
        n,
        crate::services::retrieval::MAX_PENDING_JOBS,
        "queued documents",
    )?;
    let mut places = rag.reserve(n)?;
    let parsed = parse_files(&rag, form.files, &stored, &form.metadata).await?;
    let mut jobs = Vec::new();
    for up in parsed {
        let job = places.new_job(who.owner(), &collection, &up.doc.name).await;
        let place = my_places.as_mut().and_then(crate::services::share::Share::split_one);
        let run = ingest::run(app.clone(), rag.clone(), (job.id.clone(), who.clone()), up);
        tokio::spawn(async move {
            run.await;
            drop(place);
        });
        jobs.push(job);
    }
    Ok((StatusCode::ACCEPTED, Json(schema::Jobs::of(jobs))).into_response())
}

/// A multipart form of files and text fields.
pub struct Form {
    /// (file name, declared content type, bytes).
    pub files: Vec<(String, Option<String>, bytes::Bytes)>,
    /// The `metadata` field (a JSON object).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Other text fields.
    pub fields: std::collections::HashMap<String, String>,
}

/// Reads a multipart form: parts with a file name are files (all together within the upload
/// limit, read as they arrive and refused as soon as they pass it), the others text fields.
///
/// # Errors
/// 413 past `max_bytes`, 400 for a malformed body, bad `metadata` or no file.
pub async fn read_form(max_bytes: usize, mut form: Multipart) -> Result<Form, ApiError> {
    let mut out = Form { files: Vec::new(), metadata: serde_json::Map::new(), fields: Default::default() };
    let mut left = max_bytes;
    let mut pace = Pace::new();
    while let Some(mut field) = pace.next(form.next_field()).await?.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        let Some(filename) = field.file_name().map(str::to_string) else {
            let text = text_field(&name, &mut field, &mut pace).await?;
            if out.fields.len() >= MAX_FIELDS {
                return Err(ApiError::invalid(&name, format!("a form may have at most {MAX_FIELDS} text fields")));
            }
            if name == "metadata" && text.len() > MAX_METADATA_BYTES {
                let message = format!(
                    "metadata is longer than the limit of {MAX_METADATA_BYTES} bytes (it is stored with every file)"
                );
                return Err(ApiError::invalid("metadata", message));
            }
            if name == "metadata" {
                out.metadata = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .ok_or_else(|| ApiError::invalid("metadata", "metadata must be a JSON object"))?;
            } else {
                out.fields.insert(name, text);
            }
            continue;
        };
        if out.files.len() >= MAX_FILES {
            return Err(ApiError::invalid("file", format!("one upload may hold at most {MAX_FILES} files")));
        }
        let ctype = field.content_type().map(str::to_string);
        let mut bytes = bytes::BytesMut::new();
        while let Some(chunk) = pace.next(field.chunk()).await?.map_err(multipart_error)? {
            if chunk.len() > left {
                return Err(ApiError::FileTooLarge(Some(max_bytes)));
            }
            left -= chunk.len();
            bytes.extend_from_slice(&chunk);
        }
        out.files.push((filename, ctype, bytes.freeze()));
    }
    if out.files.is_empty() {
        return Err(ApiError::invalid("file", "send at least one file (multipart/form-data)"));
    }
    Ok(out)
}

/// Longest wait for the next piece of an upload's body.
const BODY_STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// After this long, an upload's body must have come at [`MIN_BODY_RATE`] on average.
const BODY_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// Slowest average rate (bytes a second) at which an upload's body may arrive after
/// [`BODY_GRACE`]: a body trickling in must not hold an upload slot for long.
const MIN_BODY_RATE: f64 = 32.0 * 1024.0;

/// The body-read deadline of an upload: each piece within [`BODY_STALL`], and on average at
/// least [`MIN_BODY_RATE`] once [`BODY_GRACE`] has passed.
struct Pace {
    started: std::time::Instant,
    bytes: usize,
}

impl Pace {
    fn new() -> Self {
        Self { started: std::time::Instant::now(), bytes: 0 }
    }

    async fn next<T, E>(
        &mut self,
        f: impl std::future::Future<Output = Result<Option<T>, E>>,
    ) -> Result<Result<Option<T>, E>, ApiError>
    where
        T: PieceLen,
    {
        let got = tokio::time::timeout(BODY_STALL, f).await.map_err(|_| ApiError::BodyTimeout)?;
        if let Ok(Some(piece)) = &got {
            self.bytes += piece.piece_len();
        }
        let elapsed = self.started.elapsed();
        if elapsed > BODY_GRACE && (self.bytes as f64) < MIN_BODY_RATE * elapsed.as_secs_f64() {
            return Err(ApiError::BodyTimeout);
        }
        Ok(got)
    }
}

/// The bytes a piece of a body carries (a chunk's length; a field's header counts nothing).
trait PieceLen {
    fn piece_len(&self) -> usize;
}

impl PieceLen for bytes::Bytes {
    fn piece_len(&self) -> usize {
        self.len()
    }
}

impl PieceLen for axum::extract::multipart::Field<'_> {
    fn piece_len(&self) -> usize {
        0
    }
}

/// Most files one upload may hold.
pub const MAX_FILES: usize = 64;
/// Most text fields one upload form may hold.
const MAX_FIELDS: usize = 16;
/// Longest text field of an upload form, in bytes.
const MAX_FIELD_BYTES: usize = 1 << 20;
/// Longest `metadata` of an upload, in bytes: it is stored with every file of the request.
pub const MAX_METADATA_BYTES: usize = 16 << 10;
/// Most blocks (paragraphs, list items, headings) the files of one upload may hold in all.
pub const MAX_BLOCKS: usize = 200_000;

/// A text field of a form, refused past [`MAX_FIELD_BYTES`] as it arrives.
async fn text_field(
    name: &str,
    field: &mut axum::extract::multipart::Field<'_>,
    pace: &mut Pace,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = pace.next(field.chunk()).await?.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(ApiError::invalid(name, format!("a text field may be at most {MAX_FIELD_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::invalid(name, format!("{name} must be UTF-8 text")))
}

/// Parses every file now, so a bad one is a 4xx for the request. The files of one request
/// share one budget of extracted bytes and of blocks, so many files cannot multiply what one
/// file may expand to.
pub(crate) async fn parse_files(
    rag: &Rag,
    files: Vec<(String, Option<String>, bytes::Bytes)>,
    collection: &str,
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Upload>, ApiError> {
    let mut parsed = Vec::new();
    let (mut bytes_left, mut blocks_left) = (rag.parse_limits.max_expanded, MAX_BLOCKS);
    for (filename, ctype, bytes) in files {
        let limits = parse::ParseLimits { max_expanded: bytes_left };
        let (f, b) = (filename.clone(), bytes.clone());
        let doc = tokio::task::spawn_blocking(move || parse::parse(&b, &f, ctype.as_deref(), limits))
            .await
            .map_err(|_| ApiError::Internal)??;
        let extracted: u64 = doc.blocks.iter().map(|b| b.text.len() as u64).sum();
        bytes_left = bytes_left
            .checked_sub(extracted)
            .ok_or(ApiError::Document(parse::ParseError::TooLarge { limit: rag.parse_limits.max_expanded }))?;
        blocks_left = blocks_left
            .checked_sub(doc.blocks.len())
            .ok_or(ApiError::Document(parse::ParseError::TooManyBlocks { limit: MAX_BLOCKS }))?;
        let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let title = doc.title.clone();
        let new = NewDocument { name: filename, title, sha256, metadata: metadata.clone(), bytes: bytes.len() as u64 };
        parsed.push(Upload { collection: collection.to_string(), doc: new, parsed: doc });
    }
    Ok(parsed)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::FileTooLarge(None);
    }
    ApiError::BadRequest {
        message: format!("bad multipart body: {}", e.body_text()),
        param: None,
        code: "invalid_multipart",
    }
}

/// `GET /jobs/{id}`.
///
/// # Errors
/// 404 for an unknown (or long forgotten) job.
#[utoipa::path(get, path = "/jobs/{id}", tag = "retrieval", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Status and progress", body = schema::Job), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn get_job(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rag = rag(&app)?;
    let job = rag
        .job(&id)
        .await?
        .filter(|j| who.may_see(j["owner"].as_str().unwrap_or_default()))
        .ok_or_else(|| ApiError::Missing(Missing::Job(id.clone())))?;
    Ok(Json(job).into_response())
}

/// `GET /collections/{c}/documents`.
///
/// # Errors
/// 404.
#[utoipa::path(get, path = "/collections/{name}/documents", tag = "retrieval", params(("name" = String, Path, description = "Collection")), responses((status = 200, description = "Documents", body = schema::Documents), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn list_documents(
    State(app): State<AppState>,
    who: Principal,
    Path(c): Path<String>,
) -> Result<Json<schema::Documents>, ApiError> {
    let (store, stored) = (rag(&app)?.store.clone(), who.qualify(&c));
    let data = blocking_named(&c, move || store.list_documents(&stored)).await?;
    Ok(Json(schema::Documents::of(data)))
}

fn no_document(id: i64) -> ApiError {
    ApiError::Missing(Missing::Document(id))
}

/// `GET /collections/{c}/documents/{id}`.
///
/// # Errors
/// 404.
#[utoipa::path(get, path = "/collections/{name}/documents/{id}", tag = "retrieval", params(("name" = String, Path, description = "Collection"), ("id" = i64, Path, description = "Document id")), responses((status = 200, description = "The document", body = hearth_rag::store::DocumentInfo), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn get_document(
    State(app): State<AppState>,
    who: Principal,
    Path((c, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let (store, stored) = (rag(&app)?.store.clone(), who.qualify(&c));
    let doc = blocking_named(&c, move || store.document(&stored, id)).await?.ok_or_else(|| no_document(id))?;
    Ok(Json(doc).into_response())
}

/// `DELETE /collections/{c}/documents/{id}`.
///
/// # Errors
/// 404.
#[utoipa::path(delete, path = "/collections/{name}/documents/{id}", tag = "retrieval", params(("name" = String, Path, description = "Collection"), ("id" = i64, Path, description = "Document id")), responses((status = 200, description = "Deleted", body = schema::DocumentDeleted), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn delete_document(
    State(app): State<AppState>,
    who: Principal,
    Path((c, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let (store, stored) = (rag(&app)?.store.clone(), who.qualify(&c));
    if blocking_named(&c, move || store.delete_document(&stored, id)).await? {
        Ok(Json(schema::DocumentDeleted { id, deleted: true }).into_response())
    } else {
        Err(no_document(id))
    }
}

/// `POST /collections/{c}/search` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SearchRequest {
    /// The query text.
    pub query: Option<String>,
    /// `vector`, `keyword` or `hybrid` (default).
    #[serde(default)]
    #[schema(value_type = String, example = "hybrid")]
    pub mode: SearchMode,
    /// Results wanted (1-100, default 5).
    pub top_k: Option<i64>,
    /// Only documents whose metadata has these values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: serde_json::Map<String, serde_json::Value>,
}

/// `POST /collections/{c}/search`.
///
/// # Errors
/// 400 bad query, 404 collection.
#[utoipa::path(post, path = "/collections/{name}/search", tag = "retrieval", params(("name" = String, Path, description = "Collection")), request_body = SearchRequest, responses((status = 200, description = "Chunks, best first, with document, page, section and score", body = schema::SearchResults), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown collection, or retrieval disabled", body = ErrorBody)))]
pub async fn search(
    State(app): State<AppState>,
    who: Principal,
    caller: Option<Extension<Caller>>,
    Path(collection): Path<String>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<schema::SearchResults>, ApiError> {
    let rag = rag(&app)?;
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let text =
        req.query.filter(|q| !q.trim().is_empty()).ok_or_else(|| ApiError::invalid("query", "query is required"))?;
    let top_k = match req.top_k {
        None => SEARCH_TOP_K,
        Some(k @ 1..=100) => k as usize,
        Some(k) => return Err(ApiError::invalid("top_k", format!("top_k must be 1..=100, got {k}"))),
    };
    let vector = if req.mode == SearchMode::Keyword {
        None
    } else {
        Some(crate::pipeline::embed::embed_query(&app, &rag, &who, &text).await?)
    };
    let q = Query { vector, text, mode: req.mode, top_k, filter: req.filter };
    let (store, stored) = (rag.store.clone(), who.qualify(&collection));
    let hits = blocking_named(&collection, move || store.search(&stored, &q)).await?;
    Ok(Json(schema::SearchResults { object: "list", mode: req.mode, data: hits }))
}
