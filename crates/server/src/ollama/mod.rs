//! Ollama's API: `/api/tags`, `/api/show`, `/api/ps`, `/api/version`, `/api/delete` here;
//! generation in [`generate`] (a translation into the same chat request as
//! `/v1/chat/completions`, framed as NDJSON), embeddings in [`embed`]. Errors are `{"error":
//! "..."}` (the route table marks these routes as Ollama's, see [`crate::http::error::in_protocol`]).

mod convert;
mod embed;
mod generate;
mod stream;
mod time;

pub use embed::{__path_embed, __path_embeddings, embed, embeddings};
pub use generate::{__path_chat, __path_generate, __path_generate_stream, chat, generate, generate_stream};

use crate::http::error::ApiError;
use crate::http::extract::AnyJson;
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::State;
use axum::Json;
use hearth_engine::ModelInfo;
use hearth_protocol::ollama::{Details, Error, ModelRef, Ps, PsModel, Show, TagModel, Tags, Version};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The Ollama API version Hearth follows: clients compare `/api/version` against Ollama's
/// releases to decide which features to use.
pub const OLLAMA_API_VERSION: &str = "0.12.0";

/// A client's model name as Hearth's id: Ollama's default tag `:latest` is dropped.
pub(crate) fn model_name(name: &str) -> &str {
    name.strip_suffix(":latest").unwrap_or(name)
}

/// A model id as Ollama lists names: with its tag (`:latest`, the only one).
fn tagged(id: &str) -> String {
    format!("{id}:latest")
}

/// `GET /api/version`.
#[utoipa::path(get, path = "/api/version", tag = "ollama", responses((status = 200, description = "The Ollama API version Hearth follows, and Hearth's", body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version { version: OLLAMA_API_VERSION.into(), hearth: env!("CARGO_PKG_VERSION").into() })
}

/// `GET /api/tags`: every model in the models folder.
#[utoipa::path(get, path = "/api/tags", tag = "ollama", responses((status = 200, description = "The models", body = Tags)))]
pub async fn tags(State(app): State<AppState>, who: Principal) -> Json<Tags> {
    let models = who.models(&app.models).list().iter().map(tag).collect();
    Json(Tags { models })
}

fn tag(m: &ModelInfo) -> TagModel {
    TagModel {
        name: tagged(&m.id),
        model: tagged(&m.id),
        modified_at: time::rfc3339(m.created),
        size: m.size_bytes,
        digest: digest(m),
        details: details(m),
    }
}

/// A stable digest of the file's identity (path, size, modification time); hashing the
/// bytes of a multi-gigabyte file on every listing would take seconds.
fn digest(m: &ModelInfo) -> String {
    let mut h = Sha256::new();
    h.update(m.path.to_string_lossy().as_bytes());
    h.update(m.size_bytes.to_le_bytes());
    h.update(m.created.to_le_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn details(m: &ModelInfo) -> Details {
    Details {
        parent_model: String::new(),
        format: "gguf".into(),
        family: m.arch.clone(),
        families: vec![m.arch.clone()],
        parameter_size: parameter_size(m.n_params),
        quantization_level: m.quant.clone(),
    }
}

/// `135M`, `1.2B`, as Ollama writes parameter counts.
fn parameter_size(n: u64) -> String {
    match n {
        0 => "unknown".into(),
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{}M", (n as f64 / 1e6).round()),
        n => format!("{}K", (n as f64 / 1e3).round()),
    }
}

/// `POST /api/show`: a model's details, metadata, template and capabilities.
///
/// # Errors
/// 404 for an unknown model.
#[utoipa::path(post, path = "/api/show", tag = "ollama", request_body = ModelRef, responses((status = 200, description = "The model", body = Show), (status = 404, description = "Unknown model", body = Error)))]
pub async fn show(
    State(app): State<AppState>,
    who: Principal,
    AnyJson(req): AnyJson<ModelRef>,
) -> Result<Json<Show>, ApiError> {
    let name = req.named();
    let m = who.models(&app.models).resolve(model_name(name))?;
    let template = m.template_text().to_string();
    let loaded = app.models.loaded().into_iter().find(|h| h.info.id == m.id);
    let n_ctx = loaded.map_or(m.n_ctx_train.min(app.models.settings().ctx_size), |h| h.loaded.n_ctx);
    let parameters = parameters(&template, n_ctx, &app.models.settings().sampling);
    let arch = &m.arch;
    let model_info = json!({
        "general.architecture": arch,
        "general.parameter_count": m.n_params,
        "general.file_type": m.quant,
        format!("{arch}.context_length"): m.n_ctx_train,
        format!("{arch}.embedding_length"): m.n_embd,
    });
    let capabilities = m.capabilities().into_iter().map(str::to_string).collect();
    let modelfile = format!("# Served by Hearth from {}\nFROM {}\n{parameters}", m.id, m.id);
    Ok(Json(Show {
        license: String::new(),
        modelfile,
        parameters,
        template,
        details: details(&m),
        model_info,
        capabilities,
        modified_at: time::rfc3339(m.created),
    }))
}

/// Default parameters as Modelfile lines: the context, the sampling defaults, and the stop
/// markers the template ends a turn with.
fn parameters(template: &str, n_ctx: u32, d: &hearth_engine::SamplingDefaults) -> String {
    let mut lines = vec![
        format!("num_ctx {n_ctx}"),
        format!("temperature {}", d.temperature),
        format!("top_k {}", d.top_k),
        format!("top_p {}", d.top_p),
    ];
    for marker in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>", "<|end|>"] {
        if template.contains(marker) {
            lines.push(format!("stop \"{marker}\""));
        }
    }
    lines.join("\n")
}

/// `GET /api/ps`: the models in memory.
#[utoipa::path(get, path = "/api/ps", tag = "ollama", responses((status = 200, description = "Loaded models", body = Ps)))]
pub async fn ps(State(app): State<AppState>, who: Principal) -> Json<Ps> {
    let now = std::time::SystemTime::now();
    let scope = who.models(&app.models);
    let models = app
        .models
        .resident()
        .into_iter()
        .filter(|r| scope.allows(&r.handle.info.id))
        .map(|r| {
            let m = &r.handle.info;
            // Ollama writes a far future time for a model that stays.
            let expires = r.expires_in.and_then(|d| now.checked_add(d)).map_or(time::FAR_FUTURE, time::secs);
            PsModel {
                name: tagged(&m.id),
                model: tagged(&m.id),
                size: r.memory_bytes,
                digest: digest(m),
                details: details(m),
                expires_at: time::rfc3339(expires.min(time::FAR_FUTURE)),
                size_vram: r.handle.loaded.placement.device_bytes,
                context_length: r.handle.loaded.n_ctx,
            }
        })
        .collect();
    Json(Ps { models })
}

/// `DELETE /api/delete`: unloads a model and removes its file from the models folder.
///
/// # Errors
/// 400 without a model name (the default model is never deleted by omission), 404 unknown
/// model, 409 while it has running requests, 500 when the file cannot be removed.
#[utoipa::path(delete, path = "/api/delete", tag = "ollama", request_body = ModelRef, responses((status = 200, description = "Deleted"), (status = 404, description = "Unknown model", body = Error), (status = 409, description = "The model has running requests", body = Error)))]
pub async fn delete(
    State(app): State<AppState>,
    who: crate::services::owner::Principal,
    AnyJson(req): AnyJson<ModelRef>,
) -> Result<(), ApiError> {
    let name = req.named();
    // Never the default model by omission: deleting takes a name.
    if name.trim().is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    // A key limited to some models cannot delete one outside them (it is not found to it).
    let id = who.models(&app.models).resolve(model_name(name))?.id;
    app.models.delete(&id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes_as_ollama_writes_them() {
        assert_eq!(model_name("smol:latest"), "smol");
        assert_eq!(model_name("smol:q4"), "smol:q4");
        assert_eq!(parameter_size(134_515_008), "135M");
        assert_eq!(parameter_size(1_240_000_000), "1.2B");
        let d = hearth_engine::SamplingDefaults::default();
        let p = parameters("{{'<|im_start|>' + m + '<|im_end|>'}}", 2048, &d);
        assert!(p.contains("num_ctx 2048") && p.contains("stop \"<|im_end|>\""), "{p}");
    }
}
