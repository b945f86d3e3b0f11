//! The library without the server, on the real MiniLM GGUFs and the stand-in reranker.

use hearth_embed::{EmbedError, EmbeddingEngine, EngineConfig, Pooling};
use std::path::PathBuf;
use std::sync::Arc;

fn home() -> PathBuf {
    std::env::var_os("HEARTH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"))
}

fn model(name: &str) -> PathBuf {
    let p = home().join(name);
    assert!(p.is_file(), "{} missing: run scripts/fetch-models --test-fixtures", p.display());
    p
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn load_list_info_embed_unload() {
    let q8 = model("models/all-MiniLM-L6-v2.Q8_0.gguf");
    let engine = EmbeddingEngine::new(EngineConfig::builder().model_path(&q8).threads(2).build().unwrap()).unwrap();
    let f16 = engine.load_model(model("models/all-MiniLM-L6-v2.F16.gguf")).unwrap();
    assert_eq!(engine.list_models(), ["all-MiniLM-L6-v2.F16", "all-MiniLM-L6-v2.Q8_0"]);
    let info = engine.model_info(&f16).unwrap();
    assert_eq!((info.dimension, info.max_tokens, info.pooling), (384, 512, Pooling::Mean));
    assert_eq!((info.architecture.as_str(), info.quantization.as_str()), ("bert", "F16"));

    // The first model loaded is the default.
    let a = engine.embed("The cat sits on the mat.").unwrap();
    let b = engine.embed_with(Some(&f16), &["The cat sits on the mat."]).unwrap().remove(0);
    assert!((dot(&a, &a) - 1.0).abs() < 1e-4, "normalised by default");
    assert!(dot(&a, &b) > 0.99, "q8_0 and f16 agree");
    assert!(engine.embed_batch::<&str>(&[]).unwrap().is_empty());

    assert!(engine.unload_model("all-MiniLM-L6-v2.Q8_0"));
    assert!(!engine.unload_model("all-MiniLM-L6-v2.Q8_0"));
    assert_eq!(engine.list_models(), std::slice::from_ref(&f16));
    assert_eq!(engine.embed("still works").unwrap().len(), 384, "the default moved to the remaining model");
    assert!(matches!(engine.model_info("all-MiniLM-L6-v2.Q8_0"), Err(EmbedError::NotLoaded(_))));
}

#[test]
fn threads_calling_at_once_get_their_own_embeddings() {
    let cfg = EngineConfig::builder().model_path(model("models/all-MiniLM-L6-v2.Q8_0.gguf")).threads(2).build();
    let engine = Arc::new(EmbeddingEngine::new(cfg.unwrap()).unwrap());
    let texts: Vec<String> = [
        "The cat sleeps on the sofa.",
        "Stock markets fell sharply on Monday.",
        "She plays the violin in an orchestra.",
        "Rain is expected over the weekend.",
        "The recipe needs two eggs and flour.",
        "Quantum computers use qubits.",
        "He repaired the bicycle's flat tyre.",
        "The museum opens at nine o'clock.",
        "Volcanoes can erupt without warning.",
        "Our team won the football match.",
        "Tax forms are due in April.",
        "The baby laughed at the puppy.",
        "Mount Everest is the highest mountain.",
        "Please restart the database server.",
        "Tea is grown in the hills of Assam.",
        "The library lends e-books for free.",
    ]
    .map(String::from)
    .to_vec();
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| engine.embed(t).unwrap()).collect();
    let handles: Vec<_> = texts
        .iter()
        .cloned()
        .map(|t| {
            let e = engine.clone();
            std::thread::spawn(move || e.embed(&t).unwrap())
        })
        .collect();
    let most_alike = (0..16).flat_map(|i| (0..16).filter(move |&j| j != i).map(move |j| (i, j)));
    let most_alike = most_alike.map(|(i, j)| dot(&alone[i], &alone[j])).fold(f32::MIN, f32::max);
    assert!(most_alike < 0.9, "the sentences are told apart: {most_alike}");
    for (h, want) in handles.into_iter().zip(&alone) {
        // Alone vs packed with others, q8_0 kernels take other paths: measured 0.99987.
        let d = dot(&h.join().unwrap(), want);
        assert!(d > 0.999, "each thread gets its own embedding: {d}");
    }
}

#[test]
fn options_errors_and_rerank() {
    let path = model("models/all-MiniLM-L6-v2.Q8_0.gguf");
    let raw =
        EmbeddingEngine::new(EngineConfig::builder().model_path(&path).normalize(false).build().unwrap()).unwrap();
    let v = raw.embed("not normalised").unwrap();
    assert!((dot(&v, &v) - 1.0).abs() > 1e-2);
    let long = "word ".repeat(600);
    assert!(matches!(raw.embed(&long), Err(EmbedError::Engine(_))), "over the window without truncate");
    let cut = EmbeddingEngine::new(EngineConfig::builder().model_path(&path).truncate(true).build().unwrap()).unwrap();
    assert_eq!(cut.embed(&long).unwrap().len(), 384);

    let chat = model("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(matches!(cut.load_model(&chat), Err(EmbedError::NotAnEmbeddingModel(_))));
    assert!(matches!(cut.load_model("/nonexistent.gguf"), Err(EmbedError::BadModelFile { .. })));
    assert!(matches!(cut.rerank(None, "q", &["d"]), Err(EmbedError::Engine(_))), "not a reranker");

    let rr = cut.load_model(model("test-models/minilm-rerank-standin.gguf")).unwrap();
    assert_eq!(cut.model_info(&rr).unwrap().pooling, Pooling::Rank);
    let scores = cut.rerank(Some(&rr), "capital of France", &["Paris is in France.", "Bananas."]).unwrap();
    assert_eq!(scores.len(), 2);
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(cut.embed_with(Some(&rr), &["x"]).is_err(), "a reranker has no embeddings");
}
