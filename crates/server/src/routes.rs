//! The route table: each route is declared once here (method, path, who may call it, which
//! protocol's error shape it answers in, its handler and its documentation). The router, the
//! auth layer, the metrics' endpoint label, `/openapi.json` and the tests all read [`ROUTES`],
//! so a route cannot exist in one of them and not in another.

use crate::http::route::{Access, Matched};
use crate::models::{lifecycle, list as models, pull, pull_jobs};
use crate::openai::{chat, completions, embeddings, rerank, tokenize};
use crate::retrieval as rag;
use crate::route::{matches, op, Route};
use crate::{anthropic, conversations, health, ollama, openapi, responses, ui};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};

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
    Route::new(POST, "/models/pull", || post(pull_jobs::start)).open(Access::Admin).doc(op::<pull_jobs::__path_start>),
    Route::new(GET, "/models/pull", || get(pull_jobs::list)).open(Access::Admin).doc(op::<pull_jobs::__path_list>),
    Route::new(GET, "/models/pull/{id}", || get(pull_jobs::get_job))
        .open(Access::Admin)
        .doc(op::<pull_jobs::__path_get_job>),
    Route::new(DELETE, "/models/pull/{id}", || delete(pull_jobs::cancel))
        .open(Access::Admin)
        .doc(op::<pull_jobs::__path_cancel>),
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
    Route::new(GET, "/openapi.json", || get(|| async { openapi::openapi_json(ROUTES) })).open(Access::Docs),
    Route::new(GET, "/docs", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/docs/", || get(openapi::docs_index)).open(Access::Docs),
    Route::new(GET, "/docs/{*rest}", || get(openapi::docs_asset)).open(Access::Docs),
    Route::new(GET, "/swagger-ui", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/swagger-ui/", || get(openapi::docs_redirect)).open(Access::Docs),
    Route::new(GET, "/", || get(ui::index)).open(Access::Ui),
    Route::new(GET, "/assets/{*file}", || get(ui::file)).open(Access::Ui),
    Route::new(GET, "/favicon.svg", || get(ui::favicon)).open(Access::Ui),
];

/// The layer that finds a request's route once, for every layer after it ([`Matched`]).
pub async fn resolve(mut req: Request, next: Next) -> Response {
    if let Some(r) = find(req.method().as_str(), req.uri().path()) {
        req.extensions_mut().insert(Matched { path: r.path, access: r.access, protocol: r.protocol });
    }
    next.run(req).await
}

/// The route a request's method and path are served by (`None`: no such route).
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == method && matches(r.path, path))
        .or_else(|| ROUTES.iter().find(|r| matches(r.path, path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::route::Protocol;
    use crate::route::Docs;
    use utoipa::openapi::path::HttpMethod;

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
    fn endpoint_labels_are_route_templates() {
        let label = |m, p| find(m, p).map_or("other", |r| r.path);
        assert_eq!(label("GET", "/v1/models/hf.co/o/r:q4_k_m"), "/v1/models/{*id}");
        assert_eq!(label("POST", "/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(label("GET", "/nope/../x"), "other");
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

    #[test]
    fn no_two_schemas_share_a_name() {
        // utoipa keeps one schema per name: two types of one name would document one route
        // with the other's shape.
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        for r in ROUTES {
            let Docs::Op(f) = r.docs else { continue };
            for (name, schema) in f().schemas {
                let json = serde_json::to_string(&schema).unwrap_or_default();
                let before = seen.entry(name.clone()).or_insert_with(|| json.clone());
                assert_eq!(*before, json, "two schemas named {name} (give one `#[schema(as = ...)]`)");
            }
        }
    }

    #[test]
    fn every_api_operation_documents_the_layers_answers() {
        let doc: serde_json::Value = serde_json::from_str(openapi::document(ROUTES)).unwrap();
        let chat = &doc["paths"]["/v1/chat/completions"]["post"]["responses"];
        for status in ["400", "401", "413", "415", "429", "503", "504"] {
            assert!(chat.get(status).is_some(), "{status}");
        }
        assert!(chat["200"]["content"].get("text/event-stream").is_some());
        let unload = &doc["paths"]["/models/unload"]["post"]["responses"];
        assert!(unload.get("403").is_some());
        let tags = &doc["paths"]["/api/chat"]["post"]["responses"];
        assert_eq!(tags["401"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/OllamaError");
    }
}
