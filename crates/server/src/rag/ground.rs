//! Grounding: retrieve the chunks a question needs, fit them into the chat model's context,
//! and turn them into numbered sources the answer cites as `[n]`.

use super::Rag;
use crate::error::ApiError;
use crate::state::AppState;
use hearth_engine::{ModelHandle, TemplateMessage};
use hearth_rag::store::{Query, SearchMode};
use serde::Serialize;

/// Tokens kept free for the instructions, the question and the chat template.
const OVERHEAD: usize = 160;

/// One numbered source.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// The number the answer cites it by (`[1]` ...).
    pub n: usize,
    /// Document name.
    pub document: String,
    /// Document id.
    pub document_id: i64,
    /// Document title.
    pub title: Option<String>,
    /// Chunk id.
    pub chunk_id: i64,
    /// Page (PDF).
    pub page: Option<u32>,
    /// Section heading.
    pub section: Option<String>,
    /// Search score (reciprocal rank fusion).
    pub score: f32,
    /// The chunk's text.
    pub text: String,
}

/// Sources for a question, fitted to `budget` tokens of `chat`'s context.
///
/// # Errors
/// Unknown collection, embedding failures.
pub async fn retrieve(
    app: &AppState,
    rag: &Rag,
    chat: &ModelHandle,
    collection: &str,
    question: &str,
    top_k: usize,
    budget: usize,
) -> Result<Vec<Citation>, ApiError> {
    let vector = Some(super::routes::embed_query(app, rag, question).await?);
    let q = Query { vector, text: question.to_string(), mode: SearchMode::Hybrid, top_k, filter: Default::default() };
    let (store, c) = (rag.store.clone(), collection.to_string());
    let hits = tokio::task::spawn_blocking(move || store.search(&c, &q)).await.map_err(|_| ApiError::Internal)??;
    let mut used = 0;
    let mut out = Vec::new();
    for h in hits {
        let tokens = chat.tokenize(h.text.clone(), false).await?.len() + 16;
        if used + tokens > budget {
            break;
        }
        used += tokens;
        out.push(Citation {
            n: out.len() + 1,
            document: h.document,
            document_id: h.document_id,
            title: h.title,
            chunk_id: h.chunk_id,
            page: h.page,
            section: h.section,
            score: h.score,
            text: h.text,
        });
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
        let place = match (s.page, &s.section) {
            (Some(p), _) => format!(", page {p}"),
            (None, Some(sec)) => format!(", section \"{sec}\""),
            _ => String::new(),
        };
        text.push_str(&format!("[{}] ({}{place}) {}\n", s.n, s.document, s.text));
    }
    if sources.is_empty() {
        text.push_str("(no matching sources)\n");
    }
    match messages.first_mut() {
        Some(m) if m.role == "system" => m.content = format!("{}\n\n{text}", m.content),
        _ => messages.insert(0, TemplateMessage { role: "system".into(), content: text }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cite(n: usize, page: Option<u32>, section: Option<&str>) -> Citation {
        Citation {
            n,
            document: "d.pdf".into(),
            document_id: 1,
            title: None,
            chunk_id: n as i64,
            page,
            section: section.map(String::from),
            score: 0.1,
            text: format!("fact {n}"),
        }
    }

    #[test]
    fn sources_are_numbered_with_their_place() {
        let mut m = vec![TemplateMessage { role: "user".into(), content: "q".into() }];
        add_sources(&mut m, &[cite(1, Some(2), None), cite(2, None, Some("Intro"))]);
        assert_eq!(m[0].role, "system");
        assert!(m[0].content.contains("[1] (d.pdf, page 2) fact 1"));
        assert!(m[0].content.contains(r#"[2] (d.pdf, section "Intro") fact 2"#));
        let mut m = vec![TemplateMessage { role: "system".into(), content: "Be brief.".into() }];
        add_sources(&mut m, &[]);
        assert_eq!(m.len(), 1);
        assert!(m[0].content.starts_with("Be brief.") && m[0].content.contains("no matching sources"));
    }
}
