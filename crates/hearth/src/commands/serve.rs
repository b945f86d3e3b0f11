//! `hearth serve`: the model manager over the models folder, retrieval's and conversations'
//! stores, the HTTP server until a shutdown signal, then the model workers' exit.

use crate::config::Settings;
use anyhow::Context;
use hearth_engine::{ModelKind, ModelManager, Registry};
use hearth_server::AppState;
use std::sync::Arc;

/// Scans the models directory and builds the model manager.
pub(crate) fn build_manager(s: &Settings) -> anyhow::Result<ModelManager> {
    std::fs::create_dir_all(&s.models_dir).with_context(|| format!("cannot create {}", s.models_dir.display()))?;
    let registry = Registry::scan(&s.models_dir, &s.allowed_models, &s.aliases)
        .with_context(|| format!("cannot read {}", s.models_dir.display()))?;
    let default_model = match &s.default_model {
        Some(m) => {
            registry.resolve(m).with_context(|| format!("default model {m:?} is not in {}", s.models_dir.display()))?;
            Some(m.clone())
        }
        None => {
            let chat: Vec<_> = registry.models().filter(|m| m.kind == ModelKind::Causal).collect();
            (chat.len() == 1).then(|| chat[0].id.clone())
        }
    };
    for m in registry.models() {
        tracing::info!(id = %m.id, arch = %m.arch, quant = %m.quant, params = m.n_params, "model available");
    }
    let loader = hearth_llama::LlamaLoader::new().map_err(|e| anyhow::anyhow!("llama.cpp: {e}"))?;
    Ok(ModelManager::new(registry, Arc::new(loader), s.engine.clone(), default_model))
}

pub async fn serve(s: Settings) -> anyhow::Result<()> {
    let models = Arc::new(build_manager(&s)?);
    let devices = models.devices();
    if s.engine.gpu.layers.explicit() && devices.is_empty() {
        let reason = hearth_engine::error::LoadError::NoGpu(models.backends());
        anyhow::bail!("--gpu-layers {}: {reason}", s.engine.gpu.layers);
    }
    for d in &devices {
        tracing::info!(device = %d.name, backend = %d.backend, description = %d.description, total_mib = d.memory_total >> 20, free_mib = d.memory_free >> 20, "GPU device");
    }
    if models.registry().models().next().is_none() {
        tracing::warn!(dir = %s.models_dir.display(), "no *.gguf models found; run scripts/fetch-models");
    }
    if let Some(default) = models.default_model().map(str::to_string) {
        // Load the default model now, so /health/ready turns 200 without waiting for a request.
        let models = models.clone();
        tokio::spawn(async move {
            if let Err(e) = models.get(&default).await {
                tracing::error!(model = %default, error = %e, "the default model failed to load");
            }
        });
    }
    models.spawn_reaper(std::time::Duration::from_secs(1));
    if s.auth.keys.is_empty() && !s.addr.ip().is_loopback() {
        tracing::warn!(addr = %s.addr, "no API key configured and listening beyond loopback: anyone who can reach the port can use the API");
    }
    let (rag, conversations) = stores(&s, &models)?;
    let mut state = AppState::new(models.clone(), s.limits)
        .with_hub(s.hub.clone())
        .with_auth(s.auth.clone())
        .with_cors(s.cors_origins.clone())
        .with_log_prompts(s.log.log_prompts)
        .with_ui(s.ui);
    if let Some(store) = conversations {
        state = state.with_conversations(store);
    }
    if let Some(rag) = rag {
        state = state.with_rag(rag);
    }
    let listener = hearth_server::http::listen::bind(s.addr).with_context(|| format!("cannot listen on {}", s.addr))?;
    tracing::info!(addr = %s.addr, keys = s.auth.keys.len(), "hearth listening; OpenAI API at http://{}/v1", s.addr);
    hearth_server::shutdown::serve(listener, state, shutdown_signal(), s.shutdown_grace).await?;
    // The requests are drained: end the model workers (their processes, in process isolation).
    models.shutdown(WORKER_EXIT_GRACE).await;
    tracing::info!("hearth stopped");
    Ok(())
}

/// How long model workers may take to free their models and exit at shutdown.
const WORKER_EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

type Stores =
    (Option<hearth_server::services::retrieval::Rag>, Option<Arc<dyn hearth_rag::conversation::ConversationStore>>);

/// Retrieval over the configured store, if an embedding model is available, and the same
/// store for conversations (opened for them alone when retrieval is off; without it the
/// server keeps no conversations, which is logged).
fn stores(s: &Settings, models: &ModelManager) -> anyhow::Result<Stores> {
    if let Some(rag) = rag(s, models)? {
        // AppState::with_rag keeps conversations in retrieval's store.
        return Ok((Some(rag), None));
    }
    let location = s.vector_store.clone();
    match tokio::task::block_in_place(|| location.open()) {
        Ok(store) => Ok((None, Some(store))),
        Err(e) => {
            tracing::warn!(store = %s.vector_store, error = %e, "cannot open the store: no conversations are kept");
            Ok((None, None))
        }
    }
}

/// Retrieval over the configured store, if an embedding model is available.
fn rag(s: &Settings, models: &ModelManager) -> anyhow::Result<Option<hearth_server::services::retrieval::Rag>> {
    let registry = models.registry();
    let embedders: Vec<&str> = registry
        .models()
        .filter(|m| m.kind == ModelKind::Embedding && m.pooling != Some(hearth_engine::Pooling::Rank))
        .map(|m| m.id.as_str())
        .collect();
    let model = match &s.rag_embedding_model {
        Some(m) => Some(models.resolve(m).with_context(|| format!("--rag-embedding-model {m:?} is not a model"))?.id),
        None if embedders.contains(&"all-MiniLM-L6-v2.Q8_0") => Some("all-MiniLM-L6-v2.Q8_0".to_string()),
        None if embedders.len() == 1 => Some(embedders[0].to_string()),
        None => None,
    };
    let Some(model) = model else {
        tracing::info!("retrieval is off: no embedding model (set --rag-embedding-model)");
        return Ok(None);
    };
    // Opening may connect to PostgreSQL, whose blocking client must not run on a runtime thread.
    let location = s.vector_store.clone();
    let store = tokio::task::block_in_place(|| location.open())
        .with_context(|| format!("cannot open the document store {}", s.vector_store))?;
    tracing::info!(store = %s.vector_store, model = %model, "retrieval on");
    Ok(Some(hearth_server::services::retrieval::Rag::new(store, model, s.max_upload_bytes)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
