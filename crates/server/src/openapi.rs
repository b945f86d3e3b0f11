//! The OpenAPI 3.1 document at `/openapi.json`, generated from the route table (each route's
//! handler annotation, `#[utoipa::path]`) and the protocol types, and Swagger UI at `/docs/`
//! (its files are vendored into the binary; nothing is fetched at run time).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use crate::routes::{Docs, ROUTES};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hearth", description = "One server, several wire protocols over the same engine: OpenAI's Chat Completions, Completions, Responses and Embeddings; Ollama's `/api/*`; Anthropic's Messages; rerank, tokenization, model lifecycle and retrieval. The paths come from the route table (`crates/server/src/routes.rs`)."),
    components(schemas(hearth_protocol::openai::ChatCompletionChunk)),
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

/// The document as JSON (built once).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        add_routes(&mut doc);
        doc.to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise the OpenAPI document");
            "{}".into()
        })
    })
}

/// Every documented route's operation, and its aliases under their own paths.
fn add_routes(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for r in ROUTES {
        if let Docs::Op(f) = r.docs {
            let o = f();
            components.schemas.extend(o.schemas);
            doc.paths.add_path_operation(r.path, o.methods, o.operation);
        }
    }
    for r in ROUTES {
        if let Docs::Alias(of) = r.docs {
            if let Some(item) = doc.paths.paths.get(of).cloned() {
                doc.paths.paths.insert(r.path.to_string(), item);
            }
        }
    }
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
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
        Ok(Some(file)) => ([(header::CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response(),
        Ok(None) => crate::ApiError::NotFound(format!("/docs/{path}")).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
