//! The OpenAPI 3.1 document at `/openapi.json`, generated from the route table (each route's
//! handler annotation, `#[utoipa::path]`) and the protocol types, and Swagger UI at `/docs/`
//! (its files are vendored into the binary; nothing is fetched at run time).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use crate::http::route::{Access, Protocol};
use crate::route::{Docs, Route};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hearth", description = "One server, several wire protocols over the same engine: OpenAI's Chat Completions, Completions, Responses and Embeddings; Ollama's `/api/*`; Anthropic's Messages; rerank, tokenization, model lifecycle and retrieval. The paths come from the route table (`crates/server/src/routes.rs`)."),
    components(schemas(
        hearth_protocol::openai::ChatCompletionChunk,
        hearth_protocol::openai::ErrorBody,
        hearth_protocol::ollama::Error,
        hearth_protocol::anthropic::ErrorBody
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document of `routes` as JSON (built once: the table is the same for the process).
pub fn document(routes: &[Route]) -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        add_routes(&mut doc, routes);
        doc.to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise the OpenAPI document");
            "{}".into()
        })
    })
}

/// Every documented route's operation, and its aliases under their own paths.
fn add_routes(doc: &mut utoipa::openapi::OpenApi, routes: &[Route]) {
    let components = doc.components.get_or_insert_with(Default::default);
    for r in routes {
        if let Docs::Op(f) = r.docs {
            let mut o = f();
            components.schemas.extend(o.schemas);
            layer_answers(r, &mut o.operation);
            doc.paths.add_path_operation(r.doc_path(), o.methods, o.operation);
        }
    }
    for r in routes {
        if let Docs::Alias(of) = r.docs {
            if let Some(item) = doc.paths.paths.get(of).cloned() {
                doc.paths.paths.insert(r.path.to_string(), item);
            }
        }
    }
}

/// What every API route may answer besides its handler's own: the errors of the layers (key,
/// admin, rate and admission limits, body size and type, timeout, shutdown) in the route's
/// protocol's shape, and its streamed answers' content type.
fn layer_answers(r: &Route, op: &mut Operation) {
    if !matches!(r.access, Access::Key | Access::Admin) {
        return;
    }
    let schema = match r.protocol {
        Protocol::OpenAi => "ErrorBody",
        Protocol::Ollama => "OllamaError",
        Protocol::Anthropic => "AnthropicErrorBody",
    };
    let json_body = op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
    let mut answers = vec![
        ("400", "Malformed request"),
        ("401", "Missing or wrong API key"),
        ("429", "Too many requests, or over the key's rate limit"),
        ("503", "Overloaded, unavailable or shutting down"),
        ("504", "Longer than the request timeout"),
    ];
    if r.access == Access::Admin {
        answers.push(("403", "Needs an admin API key"));
    }
    if r.path.contains('{') {
        answers.push(("404", "Unknown id, or another key's"));
    }
    if op.request_body.is_some() {
        answers.push(("413", "Body over the size limit"));
    }
    if json_body {
        answers.push(("415", "Body is not `application/json`"));
    }
    for (status, description) in answers {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| {
            let content = Content::new(Some(Ref::from_schema_name(schema)));
            RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
        });
    }
    if let Some(kind) = r.streams {
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.content.entry(kind.to_string()).or_insert_with(|| Content::new(None::<Ref>));
        }
    }
}

/// Swagger UI's pages share the origin where the browser UI keeps its API key: only its own
/// scripts run, it calls only this server, and no other site may frame it. (Swagger UI sets
/// inline styles from its scripts, hence `'unsafe-inline'` for styles only.)
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// `GET /openapi.json`: the document of `routes`.
pub fn openapi_json(routes: &[Route]) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document(routes)).into_response()
}

/// `GET /docs`: to `/docs/`, so the page's relative asset paths resolve.
pub async fn docs_redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

/// `GET /docs/`: Swagger UI's page.
pub async fn docs_index() -> Response {
    swagger_file("")
}

/// `GET /docs/{*rest}`: Swagger UI's assets.
pub async fn docs_asset(Path(rest): Path<String>) -> Response {
    swagger_file(&rest)
}

fn swagger_file(path: &str) -> Response {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"]))).clone();
    match utoipa_swagger_ui::serve(path, config) {
        Ok(Some(file)) => {
            let mut res = ([(header::CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            res
        }
        Ok(None) => crate::ApiError::NotFound(format!("/docs/{path}")).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
