//! The route table: each route is declared once here (method, path, who may call it, which
//! protocol's error shape it answers in, its handler and its documentation). The router, the
//! auth layer, the metrics' endpoint label, `/openapi.json` and the tests all read [`ROUTES`],
//! so a route cannot exist in one of them and not in another.

use crate::state::AppState;
use crate::{anthropic, chat, completions, conversations, embeddings, health, lifecycle, models, ollama};
use crate::{openapi, pull, rag, rerank, responses, tokenize, ui};
use axum::routing::{delete, get, patch, post, MethodRouter};
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An API key, when keys are configured.
    Key,
    /// An admin API key, when keys are configured (model lifecycle, `/metrics` unless
    /// `--public-metrics`).
    Admin,
    /// A probe: open when `--public-health` (probes send no key).
    Probe,
    /// API documentation: open when `--public-docs`.
    Docs,
    /// The browser UI's static files: always open (they hold nothing private; the UI asks
    /// for a key when the API answers 401).
    Ui,
}

/// The wire protocol a route speaks, which decides the shape of its errors (also those the
/// layers answer: a missing key, a rate limit, a body too large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI's `{"error": {"message", "type", "param", "code"}}` (also Hearth's own routes).
    OpenAi,
    /// Ollama's `{"error": "..."}`.
    Ollama,
    /// Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// One operation of the OpenAPI document, as `#[utoipa::path]` describes a handler.
#[derive(Clone)]
pub struct Operated {
    /// The path the annotation names (a test checks it is the route's).
    pub path: String,
    /// The methods the annotation names.
    pub methods: Vec<HttpMethod>,
    /// The operation.
    pub operation: Operation,
    /// The schemas it refers to.
    pub schemas: Vec<(String, RefOr<Schema>)>,
}

/// How a route appears in `/openapi.json`.
#[derive(Debug, Clone, Copy)]
pub enum Docs {
    /// Documented by its handler's annotation.
    Op(fn() -> Operated),
    /// Documented as another route (same handler under a second spelling).
    Alias(&'static str),
    /// Not an API operation (UI files, Swagger UI itself, redirects).
    Hidden,
}

/// The documentation of a handler annotated with `#[utoipa::path]` (its `__path_*` type).
pub fn op<P: utoipa::Path + utoipa::__dev::SchemaReferences>() -> Operated {
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    Operated { path: P::path(), methods: P::methods(), operation: P::operation(), schemas }
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The shape of its errors.
    pub protocol: Protocol,
    /// Its handler.
    pub handler: fn() -> MethodRouter<AppState>,
    /// Its documentation.
    pub docs: Docs,
    /// Its body may be an upload (`--max-upload-bytes` instead of `--max-body-bytes`).
    pub upload: bool,
    /// The content type of its streamed answers (`text/event-stream`, `application/x-ndjson`).
    pub streams: Option<&'static str>,
}

impl Route {
    const fn new(method: &'static str, path: &'static str, handler: fn() -> MethodRouter<AppState>) -> Self {
        Route {
            method,
            path,
            access: Access::Key,
            protocol: Protocol::OpenAi,
            handler,
            docs: Docs::Hidden,
            upload: false,
            streams: None,
        }
    }

    const fn sse(self) -> Self {
        Route { streams: Some("text/event-stream"), ..self }
    }

    const fn ndjson(self) -> Self {
        Route { streams: Some("application/x-ndjson"), ..self }
    }

    const fn doc(self, f: fn() -> Operated) -> Self {
        Route { docs: Docs::Op(f), ..self }
    }

    const fn alias(self, of: &'static str) -> Self {
        Route { docs: Docs::Alias(of), ..self }
    }

    const fn open(self, access: Access) -> Self {
        Route { access, ..self }
    }

    const fn ollama(self) -> Self {
        Route { protocol: Protocol::Ollama, ..self }
    }

    const fn anthropic(self) -> Self {
        Route { protocol: Protocol::Anthropic, ..self }
    }

    /// The path as OpenAPI writes it: a parameter that takes the rest of the path (`{*id}`)
    /// is a plain one (`{id}`).
    pub fn doc_path(&self) -> String {
        self.path.replace("{*", "{")
    }

    const fn upload(self) -> Self {
        Route { upload: true, ..self }
    }
}

const GET: &str = "GET";
const POST: &str = "POST";
const PATCH: &str = "PATCH";
const DELETE: &str = "DELETE";

/// Every route. Canonical spellings are documented; aliases point at them.
pub static ROUTES: &[Route] = &[
    // OpenAI
    Route::new(POST, "/v1/chat/completions", || post(chat::chat_completions))
        .sse()
        .doc(op::<chat::__path_chat_completions>),
    Route::new(POST, "/v1/completions", || post(completions::completions))
        .sse()
        .doc(op::<completions::__path_completions>),
    Route::new(POST, "/v1/responses", || post(responses::create)).sse().doc(op::<responses::__path_create>),
    Route::new(POST, "/v1/embeddings", || post(embeddings::embeddings)).doc(op::<embeddings::__path_embeddings>),
    Route::new(POST, "/embeddings", || post(embeddings::embeddings)).alias("/v1/embeddings"),
    Route::new(POST, "/v1/rerank", || post(rerank::rerank)).doc(op::<rerank::__path_rerank>),
    Route::new(POST, "/rerank", || post(rerank::rerank)).alias("/v1/rerank"),
    Route::new(GET, "/v1/models", || get(models::list_models)).doc(op::<models::__path_list_models>),
    Route::new(GET, "/api/models", || get(models::list_models)).alias("/v1/models"),
    // Ids may hold slashes (`hf.co/OWNER/REPO:QUANT`, as OpenAI clients send them unescaped).
    Route::new(GET, "/v1/models/{*id}", || get(models::get_model)).doc(op::<models::__path_get_model>),
    // Anthropic
    Route::new(POST, "/v1/messages", || post(anthropic::messages))
        .anthropic()
        .sse()
        .doc(op::<anthropic::__path_messages>),
    Route::new(POST, "/v1/messages/count_tokens", || post(anthropic::count_tokens))
        .anthropic()
        .doc(op::<anthropic::__path_count_tokens>),
    // Ollama
    Route::new(GET, "/api/version", || get(ollama::version)).ollama().doc(op::<ollama::__path_version>),
    Route::new(GET, "/api/tags", || get(ollama::tags)).ollama().doc(op::<ollama::__path_tags>),
    Route::new(POST, "/api/show", || post(ollama::show)).ollama().doc(op::<ollama::__path_show>),
    Route::new(GET, "/api/ps", || get(ollama::ps)).ollama().doc(op::<ollama::__path_ps>),
    Route::new(POST, "/api/generate", || post(ollama::generate)).ollama().ndjson().doc(op::<ollama::__path_generate>),
    Route::new(POST, "/api/generate/stream", || post(ollama::generate_stream))
        .ollama()
        .ndjson()
        .doc(op::<ollama::__path_generate_stream>),
    Route::new(POST, "/api/chat", || post(ollama::chat)).ollama().ndjson().doc(op::<ollama::__path_chat>),
    Route::new(POST, "/api/embed", || post(ollama::embed)).ollama().doc(op::<ollama::__path_embed>),
    Route::new(POST, "/api/embeddings", || post(ollama::embeddings)).ollama().doc(op::<ollama::__path_embeddings>),
    Route::new(POST, "/api/pull", || post(pull::ollama_pull))
        .ollama()
        .ndjson()
        .open(Access::Admin)
        .doc(op::<pull::__path_ollama_pull>),
    Route::new(DELETE, "/api/delete", || delete(ollama::delete))
        .ollama()
        .open(Access::Admin)
        .doc(op::<ollama::__path_delete>),
    // llama-server
    Route::new(POST, "/tokenize", || post(tokenize::tokenize)).doc(op::<tokenize::__path_tokenize>),
    Route::new(POST, "/detokenize", || post(tokenize::detokenize)).doc(op::<tokenize::__path_detokenize>),
    // Hearth: models, retrieval, sessions, conversations
    Route::new(POST, "/models/load", || post(lifecycle::load)).open(Access::Admin).doc(op::<lifecycle::__path_load>),
    Route::new(POST, "/models/unload", || post(lifecycle::unload))
        .open(Access::Admin)
        .doc(op::<lifecycle::__path_unload>),
    Route::new(GET, "/models/loaded", || get(lifecycle::loaded)).doc(op::<lifecycle::__path_loaded>),
    Route::new(POST, "/models/pull", || post(pull::jobs::start))
        .open(Access::Admin)
        .doc(op::<pull::jobs::__path_start>),
    Route::new(GET, "/models/pull", || get(pull::jobs::list)).open(Access::Admin).doc(op::<pull::jobs::__path_list>),
    Route::new(GET, "/models/pull/{id}", || get(pull::jobs::get_job))
        .open(Access::Admin)
        .doc(op::<pull::jobs::__path_get_job>),
    Route::new(DELETE, "/models/pull/{id}", || delete(pull::jobs::cancel))
        .open(Access::Admin)
        .doc(op::<pull::jobs::__path_cancel>),
    Route::new(POST, "/collections", || post(rag::routes::create_collection))
        .doc(op::<rag::routes::__path_create_collection>),
    Route::new(GET, "/collections", || get(rag::routes::list_collections))
        .doc(op::<rag::routes::__path_list_collections>),
    Route::new(GET, "/collections/{name}", || get(rag::routes::get_collection))
        .doc(op::<rag::routes::__path_get_collection>),
    Route::new(DELETE, "/collections/{name}", || delete(rag::routes::delete_collection))
        .doc(op::<rag::routes::__path_delete_collection>),
    Route::new(POST, "/collections/{name}/documents", || post(rag::routes::upload))
        .upload()
        .doc(op::<rag::routes::__path_upload>),
    Route::new(GET, "/collections/{name}/documents", || get(rag::routes::list_documents))
        .doc(op::<rag::routes::__path_list_documents>),
    Route::new(GET, "/collections/{name}/documents/{id}", || get(rag::routes::get_document))
        .doc(op::<rag::routes::__path_get_document>),
    Route::new(DELETE, "/collections/{name}/documents/{id}", || delete(rag::routes::delete_document))
        .doc(op::<rag::routes::__path_delete_document>),
    Route::new(POST, "/collections/{name}/search", || post(rag::routes::search)).doc(op::<rag::routes::__path_search>),
    Route::new(GET, "/jobs/{id}", || get(rag::routes::get_job)).doc(op::<rag::routes::__path_get_job>),
    Route::new(POST, "/api/v1/generate", || post(rag::generate::generate))
        .sse()
        .doc(op::<rag::generate::__path_generate>),
    Route::new(POST, "/api/v1/generate/upload", || post(rag::generate::generate_upload))
        .upload()
        .doc(op::<rag::generate::__path_generate_upload>),
    Route::new(GET, "/api/v1/sessions", || get(rag::generate::list_sessions))
        .doc(op::<rag::generate::__path_list_sessions>),
    Route::new(GET, "/api/v1/sessions/{id}", || get(rag::generate::get_session))
        .doc(op::<rag::generate::__path_get_session>),
    Route::new(DELETE, "/api/v1/sessions/{id}", || delete(rag::generate::delete_session))
        .doc(op::<rag::generate::__path_delete_session>),
    Route::new(GET, "/api/v1/conversations", || get(conversations::list)).doc(op::<conversations::__path_list>),
    Route::new(POST, "/api/v1/conversations", || post(conversations::create)).doc(op::<conversations::__path_create>),
    Route::new(GET, "/api/v1/conversations/{id}", || get(conversations::get)).doc(op::<conversations::__path_get>),
    Route::new(PATCH, "/api/v1/conversations/{id}", || patch(conversations::update))
        .doc(op::<conversations::__path_update>),
    Route::new(DELETE, "/api/v1/conversations/{id}", || delete(conversations::delete))
        .doc(op::<conversations::__path_delete>),
    // Operations: metrics, probes, documentation, the UI
    Route::new(GET, "/metrics", || get(health::metrics)).open(Access::Admin).doc(op::<health::__path_metrics>),
    Route::new(GET, "/health", || get(health::health)).open(Access::Probe).doc(op::<health::__path_health>),
    Route::new(GET, "/healthz", || get(health::health)).open(Access::Probe).alias("/health"),
    Route::new(GET, "/health/live", || get(health::live)).open(Access::Probe).doc(op::<health::__path_live>),
    Route::new(GET, "/health/ready", || get(health::ready)).open(Access::Probe).doc(op::<health::__path_ready>),
    Route::new(GET, "/openapi.json", || get(openapi::openapi_json)).open(Access::Docs),
    Route::new(GET, "/docs", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/docs/", || get(openapi::docs_index)).open(Access::Docs),
    Route::new(GET, "/docs/{*rest}", || get(openapi::docs_asset)).open(Access::Docs),
    Route::new(GET, "/swagger-ui", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/swagger-ui/", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/", || get(ui::index)).open(Access::Ui),
    Route::new(GET, "/assets/{*file}", || get(ui::file)).open(Access::Ui),
    Route::new(GET, "/favicon.svg", || get(ui::favicon)).open(Access::Ui),
];

/// The route a request's method and path are served by (`None`: no such route).
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == method && matches(r.path, path))
        .or_else(|| ROUTES.iter().find(|r| matches(r.path, path)))
}

/// Whether `path` fits the route template (`{x}` one segment, `{*x}` the rest).
fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(a), Some(_)) if a.starts_with("{*") => return true,
            (Some(a), Some(b)) if a.starts_with('{') || a == b => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_is_its_annotation() {
        for r in ROUTES {
            match r.docs {
                Docs::Op(f) => {
                    let o = f();
                    assert_eq!(o.path, r.doc_path(), "the annotation of {} {} names another path", r.method, r.path);
                    let named = |m: &HttpMethod| match m {
                        HttpMethod::Get => "GET",
                        HttpMethod::Post => "POST",
                        HttpMethod::Patch => "PATCH",
                        HttpMethod::Delete => "DELETE",
                        _ => "other",
                    };
                    assert!(o.methods.iter().any(|m| named(m) == r.method), "{} {}: another method", r.method, r.path);
                }
                Docs::Alias(of) => {
                    assert!(
                        ROUTES.iter().any(|o| o.path == of && o.method == r.method && matches!(o.docs, Docs::Op(_))),
                        "{} is an alias of an undocumented {of}",
                        r.path
                    );
                }
                Docs::Hidden => {
                    assert!(
                        !matches!(r.access, Access::Key | Access::Admin),
                        "{} {} is an API route without docs",
                        r.method,
                        r.path
                    )
                }
            }
        }
    }

    #[test]
    fn no_route_is_declared_twice() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(!ROUTES[..i].iter().any(|o| o.method == r.method && o.path == r.path), "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn templates_match_paths() {
        assert_eq!(find("GET", "/v1/models/abc").map(|r| r.path), Some("/v1/models/{*id}"));
        assert_eq!(find("GET", "/v1/models/hf.co/o/r:q8_0").map(|r| r.path), Some("/v1/models/{*id}"));
        assert_eq!(find("GET", "/docs/a/b.css").map(|r| r.path), Some("/docs/{*rest}"));
        assert_eq!(find("POST", "/api/generate/stream").map(|r| r.path), Some("/api/generate/stream"));
        assert!(find("GET", "/nope/../x").is_none());
        assert_eq!(find("POST", "/v1/messages").map(|r| r.protocol), Some(Protocol::Anthropic));
    }
}
