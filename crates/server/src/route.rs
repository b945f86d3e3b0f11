//! The shape of one route of the table (`crate::routes::ROUTES`): its method and path, access,
//! protocol, handler and documentation.

use crate::http::route::{Access, Protocol};
use crate::services::state::AppState;
use axum::routing::MethodRouter;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

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
    pub(crate) const fn new(method: &'static str, path: &'static str, handler: fn() -> MethodRouter<AppState>) -> Self {
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

    pub(crate) const fn sse(self) -> Self {
        Route { streams: Some("text/event-stream"), ..self }
    }

    pub(crate) const fn ndjson(self) -> Self {
        Route { streams: Some("application/x-ndjson"), ..self }
    }

    pub(crate) const fn doc(self, f: fn() -> Operated) -> Self {
        Route { docs: Docs::Op(f), ..self }
    }

    pub(crate) const fn alias(self, of: &'static str) -> Self {
        Route { docs: Docs::Alias(of), ..self }
    }

    pub(crate) const fn open(self, access: Access) -> Self {
        Route { access, ..self }
    }

    pub(crate) const fn ollama(self) -> Self {
        Route { protocol: Protocol::Ollama, ..self }
    }

    pub(crate) const fn anthropic(self) -> Self {
        Route { protocol: Protocol::Anthropic, ..self }
    }

    /// The path as OpenAPI writes it: a parameter that takes the rest of the path (`{*id}`)
    /// is a plain one (`{id}`).
    pub fn doc_path(&self) -> String {
        self.path.replace("{*", "{")
    }

    pub(crate) const fn upload(self) -> Self {
        Route { upload: true, ..self }
    }
}

/// Whether `path` fits the route template (`{x}` one segment, `{*x}` the rest).
pub(crate) fn matches(template: &str, path: &str) -> bool {
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
