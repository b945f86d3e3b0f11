//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the protocol types, at `/openapi.json`, and Swagger UI at `/docs/` (its files are vendored
//! into the binary; nothing is fetched at run time).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

/// Routes served under another path too, documented under both.
const ALIASES: &[(&str, &str)] = &[("/embeddings", "/v1/embeddings"), ("/rerank", "/v1/rerank")];

#[derive(OpenApi)]
#[openapi(
    info(title = "Hearth", description = "OpenAI-compatible API for GGUF models served by llama.cpp, with embeddings, rerank, tokenization and model lifecycle."),
    paths(
        crate::chat::chat_completions,
        crate::completions::completions,
        crate::embeddings::embeddings,
        crate::rerank::rerank,
        crate::tokenize::tokenize,
        crate::tokenize::detokenize,
        crate::models::list_models,
        crate::models::get_model,
        crate::lifecycle::load,
        crate::lifecycle::unload,
        crate::lifecycle::loaded,
        crate::health::health,
        crate::health::live,
        crate::health::ready,
        crate::health::metrics,
        crate::rag::routes::create_collection,
        crate::rag::routes::list_collections,
        crate::rag::routes::get_collection,
        crate::rag::routes::delete_collection,
        crate::rag::routes::upload,
        crate::rag::routes::list_documents,
        crate::rag::routes::get_document,
        crate::rag::routes::delete_document,
        crate::rag::routes::search,
        crate::rag::routes::get_job,
        crate::rag::generate::generate,
        crate::rag::generate::generate_upload,
        crate::rag::generate::list_sessions,
        crate::rag::generate::get_session,
        crate::rag::generate::delete_session,
        crate::conversations::list,
        crate::conversations::create,
        crate::conversations::get,
        crate::conversations::update,
        crate::conversations::delete,
    ),
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
        for (alias, path) in ALIASES {
            if let Some(item) = doc.paths.paths.get(*path).cloned() {
                doc.paths.paths.insert((*alias).to_string(), item);
            }
        }
        doc.to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise the OpenAPI document");
            "{}".into()
        })
    })
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
