//! Grounding: retrieve the chunks a question needs, fit them into the chat model's context,
//! and turn them into numbered sources the answer cites as `[n]`.

use crate::http::error::ApiError;
use crate::services::owner::Principal;
use crate::services::retrieval::Rag;
use crate::services::state::AppState;
use hearth_engine::{ModelHandle, TemplateMessage};
use hearth_rag::store::{Hit, Query, SearchMode};
use serde::Serialize;

/// Tokens kept free for the instructions, the question and the chat template.
const OVERHEAD: usize = 160;
/// Sources a grounded answer gets when the request names no `top_k`.
pub const DEFAULT_TOP_K: usize = 4;
/// Most tokens in a grounded answer when the request names no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// One numbered source: a search hit and the number the answer cites it by (`[1]` ...).
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// Its number.
    pub n: usize,
    /// The chunk, its document, page or section, offsets and score.
    #[serde(flatten)]
    pub source: Hit,
}

/// Sources for `who`'s question (its embedding charged to them), fitted to `budget` tokens of
/// `chat`'s context, from the collection they named `collection`.
///
/// # Errors
/// Unknown collection, embedding failures.
pub async fn retrieve(
    app: &AppState,
    rag: &Rag,
    chat: &ModelHandle,
    (who, collection): (&Principal, &str),
    question: &str,
    top_k: usize,
    budget: usize,
) -> Result<Vec<Citation>, ApiError> {
    let vector = Some(crate::pipeline::embed::embed_query(app, rag, who, question).await?);
    let q = Query { vector, text: question.to_string(), mode: SearchMode::Hybrid, top_k, filter: Default::default() };
    let (store, c) = (rag.store.clone(), who.qualify(collection));
    let hits = crate::services::retrieval::blocking_named(collection, move || store.search(&c, &q)).await?;
    let mut used = 0;
    let mut out = Vec::new();
    for h in hits {
        let tokens = chat.count_tokens(h.text.clone()).await? + 16;
        if used + tokens > budget {
            break;
        }
        used += tokens;
        out.push(Citation { n: out.len() + 1, source: h });
    }
    Ok(out)
}

/// Tokens the sources may take: the context less the completion, the question and overhead.
pub fn budget(chat: &ModelHandle, max_tokens: usize, question_tokens: usize) -> usize {
    (chat.loaded.n_ctx as usize).saturating_sub(max_tokens + question_tokens + OVERHEAD)
}

/// The system message carrying the sources; it goes before the conversation (merged into an
/// existing system message).
pub fn add_sources(messages: &mut Vec<TemplateMessage>, sources: &[Citation]) {
    let mut text = String::from(
        "Answer the question using only the numbered sources below. After each fact, cite its source \
         as [n]. If the sources do not contain the answer, say that you do not know.\n\nSources:\n",
    );
    for s in sources {
        let h = &s.source;
        let place = match (h.page, &h.section) {
            (Some(p), _) => format!(", page {p}"),
            (None, Some(sec)) => format!(", section \"{sec}\""),
            _ => String::new(),
        };
        text.push_str(&format!("[{}] ({}{place}) {}\n", s.n, h.document, h.text));
    }
    if sources.is_empty() {
        text.push_str("(no matching sources)\n");
    }
    match messages.first_mut() {
        Some(m) if m.role == "system" => m.content = format!("{}\n\n{text}", m.content),
        _ => messages.insert(0, TemplateMessage { role: "system".into(), content: text, ..Default::default() }),
    }
}

/// Retrieves sources for the last user message and puts them in a system message.
pub async fn ground(
    app: &AppState,
    handle: &hearth_engine::ModelHandle,
    (who, opts): (&Principal, &hearth_protocol::openai::RagOptions),
    req: &hearth_protocol::openai::ChatCompletionRequest,
    messages: &mut Vec<hearth_engine::TemplateMessage>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let rag = app.rag.clone().ok_or_else(|| ApiError::unsupported("rag", "retrieval is not enabled on this server"))?;
    let top_k = match opts.top_k {
        None => DEFAULT_TOP_K,
        Some(k @ 1..=50) => k as usize,
        Some(k) => return Err(ApiError::invalid("rag.top_k", format!("rag.top_k must be 1..=50, got {k}"))),
    };
    let question = messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()).unwrap_or_default();
    let max_tokens =
        req.max_completion_tokens.or(req.max_tokens).unwrap_or(i64::from(DEFAULT_MAX_TOKENS)).clamp(1, 1 << 20)
            as usize;
    // The whole conversation counts against the context, not only the question.
    let mut conversation_tokens = 0;
    for m in messages.iter() {
        conversation_tokens += handle.count_tokens(m.content.clone()).await? + 4;
    }
    let budget = budget(handle, max_tokens, conversation_tokens);
    let collection = (who, opts.collection.as_str());
    let sources = retrieve(app, &rag, handle, collection, &question, top_k, budget).await?;
    add_sources(messages, &sources);
    Ok(sources.iter().filter_map(|s| serde_json::to_value(s).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cite(n: usize, page: Option<u32>, section: Option<&str>) -> Citation {
        let source = Hit {
            chunk_id: n as i64,
            document_id: 1,
            document: "d.pdf".into(),
            title: None,
            text: format!("fact {n}"),
            page,
            section: section.map(String::from),
            start: 0,
            end: 6,
            score: 0.1,
        };
        Citation { n, source }
    }

    #[test]
    fn sources_are_numbered_with_their_place() {
        let mut m = vec![TemplateMessage { role: "user".into(), content: "q".into(), ..Default::default() }];
        add_sources(&mut m, &[cite(1, Some(2), None), cite(2, None, Some("Intro"))]);
        assert_eq!(m[0].role, "system");
        assert!(m[0].content.contains("[1] (d.pdf, page 2) fact 1"));
        assert!(m[0].content.contains(r#"[2] (d.pdf, section "Intro") fact 2"#));
        let mut m = vec![TemplateMessage { role: "system".into(), content: "Be brief.".into(), ..Default::default() }];
        add_sources(&mut m, &[]);
        assert_eq!(m.len(), 1);
        assert!(m[0].content.starts_with("Be brief.") && m[0].content.contains("no matching sources"));
    }
}
