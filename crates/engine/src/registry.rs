//! The model registry: what GGUF files are on disk and what they are, read without loading.
//!
//! A model's id is its file stem. A client-supplied name is only ever looked up in the
//! registry's map; it is never joined to a path, so `../x` or `/etc/passwd` is simply unknown.

use crate::error::EngineError;
use crate::gguf::{self, GgufHeader};
use crate::model::{KvType, Pooling};
pub use crate::model::{ModelKind, TemplateSource};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What the registry knows about one model file.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Model id: the file stem.
    pub id: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// `general.architecture`.
    pub arch: String,
    /// Number of weights.
    pub n_params: u64,
    /// Quantisation (`general.file_type`).
    pub quant: String,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Chat template.
    pub template: TemplateSource,
    /// Causal or embedding.
    pub kind: ModelKind,
    /// Pooling of an embedding model (`{arch}.pooling_type`, mean when the file says none);
    /// `None` for a causal model.
    pub pooling: Option<Pooling>,
    /// Hidden size (`{arch}.embedding_length`); 0 when the file does not say.
    pub n_embd: u32,
    /// Bytes of KV cache one token takes (f16 keys and values over all layers), from the
    /// header; 0 when the file does not say.
    pub kv_bytes_per_token: u64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// File modification time, seconds since the epoch.
    pub created: u64,
}

const EMBEDDING_ARCHS: &[&str] = &["bert", "nomic-bert", "jina-bert-v2", "jina-bert-v3", "modern-bert", "t5encoder"];

impl ModelInfo {
    /// Reads a model's header.
    ///
    /// # Errors
    /// When the file is not a readable GGUF file.
    pub fn from_file(path: &Path) -> Result<Self, gguf::GgufError> {
        let h = gguf::read_header(path)?;
        Self::from_read(path, &h).map_err(Into::into)
    }

    /// The facts of the file at `path` whose header is `h` (its size and time from the disk).
    fn from_read(path: &Path, h: &GgufHeader) -> std::io::Result<Self> {
        let md = std::fs::metadata(path)?;
        let created =
            md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        Ok(Self::from_header(path, h, md.len(), created))
    }

    fn from_header(path: &Path, h: &GgufHeader, size_bytes: u64, created: u64) -> Self {
        let arch = h.str("general.architecture").unwrap_or("unknown").to_string();
        let pooling = h.int(&format!("{arch}.pooling_type"));
        let kind = if EMBEDDING_ARCHS.contains(&arch.as_str()) || pooling.is_some_and(|p| p > 0) {
            ModelKind::Embedding
        } else {
            ModelKind::Causal
        };
        let n_embd = h.int(&format!("{arch}.embedding_length")).unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
        let kv_bytes_per_token = kv_bytes_per_token(h, &arch);
        let pooling = match kind {
            ModelKind::Causal => None,
            ModelKind::Embedding => Some(pooling.and_then(Pooling::from_gguf).unwrap_or_default()),
        };
        let template = match h.str("tokenizer.chat_template") {
            Some(t) if !t.trim().is_empty() => TemplateSource::Gguf(t.to_string()),
            _ => TemplateSource::Builtin(crate::template::builtin_for_arch(&arch)),
        };
        Self {
            id: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            path: path.to_path_buf(),
            n_params: h.n_params,
            quant: gguf::file_type_name(h.int("general.file_type").unwrap_or(-1)).to_string(),
            n_ctx_train: h.int(&format!("{arch}.context_length")).unwrap_or(2048).clamp(1, u32::MAX as i64) as u32,
            arch,
            template,
            kind,
            pooling,
            n_embd,
            kv_bytes_per_token,
            size_bytes,
            created,
        }
    }

    /// Estimated memory when loaded with `kv_cells` KV cells of `kv_type`: the file plus the
    /// KV cache.
    pub fn memory_bytes(&self, kv_cells: u64, kv_type: KvType) -> u64 {
        self.size_bytes.saturating_add(kv_type.bytes(self.kv_bytes_per_token.saturating_mul(kv_cells)))
    }

    /// The chat template's text (the file's, or the built-in one chosen for it).
    pub fn template_text(&self) -> &str {
        match &self.template {
            TemplateSource::Gguf(t) => t,
            TemplateSource::Builtin(name) => crate::template::builtin_source(name),
        }
    }

    /// What the model can be asked for, as Ollama names it.
    pub fn capabilities(&self) -> Vec<&'static str> {
        match (self.kind, self.pooling) {
            (ModelKind::Causal, _) => vec!["completion", "tools"],
            (ModelKind::Embedding, Some(Pooling::Rank)) => vec!["rerank"],
            (ModelKind::Embedding, _) => vec!["embedding"],
        }
    }

    /// Metadata as JSON, for `/v1/models`.
    pub fn meta_json(&self) -> serde_json::Value {
        let template = match &self.template {
            TemplateSource::Gguf(_) => "gguf".to_string(),
            TemplateSource::Builtin(name) => format!("builtin:{name}"),
        };
        serde_json::json!({
            "architecture": self.arch,
            "parameters": self.n_params,
            "quantization": self.quant,
            "context_length": self.n_ctx_train,
            "chat_template": template,
            "kind": match self.kind { ModelKind::Causal => "causal", ModelKind::Embedding => "embedding" },
            "pooling": self.pooling.map(Pooling::name),
            "embedding_length": self.n_embd,
            "size_bytes": self.size_bytes,
        })
    }
}

/// KV bytes per token: layers x KV heads x (key + value width) x 2 bytes (f16).
fn kv_bytes_per_token(h: &GgufHeader, arch: &str) -> u64 {
    let get = |k: &str| h.int(&format!("{arch}.{k}")).filter(|v| *v > 0).map(|v| v as u64);
    let (Some(layers), Some(n_embd)) = (get("block_count"), get("embedding_length")) else { return 0 };
    let heads = get("attention.head_count").unwrap_or(1);
    let kv_heads = get("attention.head_count_kv").unwrap_or(heads);
    let head = n_embd / heads.max(1);
    let (k, v) = (get("attention.key_length").unwrap_or(head), get("attention.value_length").unwrap_or(head));
    layers.saturating_mul(kv_heads).saturating_mul(k + v).saturating_mul(2)
}

/// The models available to the server.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// By id, sorted for stable listings.
    models: BTreeMap<String, ModelInfo>,
    /// Alias -> id.
    aliases: HashMap<String, String>,
    /// The folder and filters it was scanned with, to scan it again.
    source: Option<Source>,
}

impl Registry {
    /// The folder it was scanned from.
    pub fn dir(&self) -> Option<&Path> {
        self.source.as_ref().map(|s| s.dir.as_path())
    }
}

/// What a registry was scanned from.
#[derive(Debug, Clone)]
struct Source {
    dir: PathBuf,
    allowed: Vec<String>,
    aliases: Vec<(String, String)>,
}

/// The split suffix of a file stem (`-00001-of-00003`): the stem before it, the part and the
/// count (llama.cpp's naming of split models, `gguf-split`).
pub fn split_part(stem: &str) -> Option<(&str, u32, u32)> {
    let (head, count) = stem.rsplit_once("-of-")?;
    let (base, part) = head.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(part) || !digits(count) {
        return None;
    }
    let (part, count): (u32, u32) = (part.parse().ok()?, count.parse().ok()?);
    (part >= 1 && part <= count).then_some((base, part, count))
}

/// Whether a GGUF file holds all its header says it does (a copy or download in progress does
/// not).
fn complete(path: &Path, h: &GgufHeader) -> bool {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    h.min_len.is_none_or(|need| len >= need)
}

/// One GGUF file of a folder, read; `None` when it is not (yet) a whole model file.
fn read_model(path: &Path) -> Option<ModelInfo> {
    let h = match gguf::read_header(path) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "skipping unreadable model file");
            return None;
        }
    };
    if !complete(path, &h) {
        tracing::debug!(path = %path.display(), "skipping an incomplete model file (still being written?)");
        return None;
    }
    ModelInfo::from_read(path, &h).ok()
}

/// The file in a models folder that maps the names models were pulled as
/// (`hf.co/OWNER/REPO:QUANT`) to their ids, so a client that pulled a name can use it.
pub const PULLED_ALIASES: &str = ".hearth-aliases.json";

fn pulled_aliases(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join(PULLED_ALIASES)) else { return Vec::new() };
    let map: BTreeMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
    map.into_iter().collect()
}

/// Records that `names` refer to the model `id` of the models folder `dir` (read by every
/// later scan); written to a temporary file and renamed, so a reader never sees half of it.
///
/// # Errors
/// When the file cannot be written.
pub fn remember_aliases(dir: &Path, names: &[String], id: &str) -> std::io::Result<()> {
    let mut map: BTreeMap<String, String> = pulled_aliases(dir).into_iter().collect();
    for n in names.iter().filter(|n| *n != id) {
        map.insert(n.clone(), id.to_string());
    }
    let tmp = dir.join(format!("{PULLED_ALIASES}.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&map).unwrap_or_default())?;
    std::fs::rename(&tmp, dir.join(PULLED_ALIASES))
}

/// The files of a model: its one file, or every part of a split one.
pub fn files_of(info: &ModelInfo) -> Vec<PathBuf> {
    let stem = info.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match split_part(&stem) {
        Some((base, _, count)) => {
            (1..=count).map(|i| info.path.with_file_name(format!("{base}-{i:05}-of-{count:05}.gguf"))).collect()
        }
        None => vec![info.path.clone()],
    }
}

/// The parts of split models, by the model's id, as they are found.
type Splits = BTreeMap<String, (u32, BTreeMap<u32, ModelInfo>)>;

/// A split model whose every part is there and whole: the first part's facts, with the id,
/// size and weights of the whole.
fn join_split(id: String, count: u32, parts: BTreeMap<u32, ModelInfo>) -> Option<ModelInfo> {
    if parts.len() != count as usize || parts.keys().copied().ne(1..=count) {
        tracing::debug!(model = %id, have = parts.len(), count, "skipping a split model with parts missing");
        return None;
    }
    let size_bytes = parts.values().map(|p| p.size_bytes).sum();
    let n_params = parts.values().map(|p| p.n_params).sum();
    let mut first = parts.into_values().next()?;
    first.id = id;
    first.size_bytes = size_bytes;
    first.n_params = n_params;
    Some(first)
}

impl Registry {
    /// Scans `dir` for `*.gguf` files. Unreadable files, and files shorter than their header
    /// says (a copy in progress), are skipped; the parts of a split model
    /// (`NAME-00001-of-00003.gguf`...) are one model, `NAME`, once all are there.
    /// `allowed`, when non-empty, limits the registry to those ids.
    ///
    /// # Errors
    /// When `dir` cannot be listed.
    pub fn scan(dir: &Path, allowed: &[String], aliases: &[(String, String)]) -> std::io::Result<Self> {
        let mut models = BTreeMap::new();
        let mut splits = Splits::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let is_gguf = path.extension().is_some_and(|e| e == "gguf");
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_gguf || hidden || !path.is_file() {
                continue;
            }
            let Some(info) = read_model(&path) else { continue };
            match split_part(&info.id) {
                Some((base, part, count)) => {
                    let set = splits.entry(base.to_string()).or_insert_with(|| (count, BTreeMap::new()));
                    set.1.insert(part, info);
                }
                None => {
                    models.insert(info.id.clone(), info);
                }
            }
        }
        for (id, (count, parts)) in splits {
            if let Some(info) = join_split(id, count, parts) {
                models.insert(info.id.clone(), info);
            }
        }
        models.retain(|id, _| allowed.is_empty() || allowed.contains(id));
        let source = Source { dir: dir.to_path_buf(), allowed: allowed.to_vec(), aliases: aliases.to_vec() };
        let pulled = pulled_aliases(dir);
        Ok(Self { models, aliases: HashMap::new(), source: Some(source) }.with_aliases(&pulled).with_aliases(aliases))
    }

    /// The folder scanned again with the same filters; `None` for a registry not read from a
    /// folder.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn rescan(&self) -> Option<std::io::Result<Self>> {
        let s = self.source.as_ref()?;
        Some(Self::scan(&s.dir, &s.allowed, &s.aliases))
    }

    /// This registry without `id` (a model whose file was deleted).
    pub fn without(&self, id: &str) -> Self {
        let mut r = self.clone();
        r.models.remove(id);
        r.aliases.retain(|_, v| v != id);
        r
    }

    /// This registry with `models` kept as they are (a model seen for the first time is taken
    /// only once a later scan sees it unchanged, see `ModelManager::refresh`).
    pub fn keeping(mut self, mut keep: impl FnMut(&ModelInfo) -> bool) -> Self {
        self.models.retain(|_, m| keep(m));
        self
    }

    /// A registry over the given models (for tests and embedding).
    pub fn from_models(models: Vec<ModelInfo>) -> Self {
        Self { models: models.into_iter().map(|m| (m.id.clone(), m)).collect(), aliases: HashMap::new(), source: None }
    }

    /// The same registry with `aliases` (alias, id) added; aliases of unknown ids are dropped.
    pub fn with_aliases(mut self, aliases: &[(String, String)]) -> Self {
        for (a, id) in aliases {
            if self.models.contains_key(id) {
                self.aliases.insert(a.clone(), id.clone());
            }
        }
        self
    }

    /// Looks a client-supplied name up by id or alias.
    ///
    /// # Errors
    /// [`EngineError::ModelNotFound`] for anything that is not a known id or alias.
    pub fn resolve(&self, name: &str) -> Result<&ModelInfo, EngineError> {
        let id = self.aliases.get(name).map_or(name, String::as_str);
        self.models.get(id).ok_or_else(|| EngineError::ModelNotFound { model: name.to_string() })
    }

    /// All models, sorted by id.
    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.values()
    }

    /// Aliases of a model id.
    pub fn aliases_of(&self, id: &str) -> Vec<String> {
        let mut a: Vec<String> = self.aliases.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect();
        a.sort();
        a
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gguf::tests::write_gguf;

    /// A causal model's facts, for tests.
    pub(crate) fn info(id: &str) -> ModelInfo {
        ModelInfo {
            id: id.into(),
            path: PathBuf::from(format!("/models/{id}.gguf")),
            arch: "llama".into(),
            n_params: 0,
            quant: "Q8_0".into(),
            n_ctx_train: 2048,
            template: TemplateSource::Builtin("chatml"),
            kind: ModelKind::Causal,
            pooling: None,
            n_embd: 0,
            kv_bytes_per_token: 0,
            size_bytes: 0,
            created: 0,
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hearth-reg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn scans_ids_kinds_and_templates() {
        let d = dir("scan");
        write_gguf(
            &d.join("chat.gguf"),
            &[("general.architecture", "llama"), ("tokenizer.chat_template", "{{x}}")],
            &[("llama.context_length", 8192)],
        );
        write_gguf(&d.join("base.gguf"), &[("general.architecture", "gemma3")], &[]);
        write_gguf(&d.join("emb.gguf"), &[("general.architecture", "bert")], &[("bert.embedding_length", 384)]);
        write_gguf(&d.join("rank.gguf"), &[("general.architecture", "bert")], &[("bert.pooling_type", 4)]);
        std::fs::write(d.join("broken.gguf"), b"nope").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        let r = Registry::scan(&d, &[], &[("fast".into(), "chat".into())]).unwrap();
        assert_eq!(r.models().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["base", "chat", "emb", "rank"]);
        assert_eq!(r.resolve("fast").unwrap().id, "chat");
        assert_eq!(r.resolve("chat").unwrap().n_ctx_train, 8192);
        assert_eq!(r.resolve("base").unwrap().template, TemplateSource::Builtin("gemma"));
        assert_eq!(r.resolve("emb").unwrap().kind, ModelKind::Embedding);
        assert_eq!(r.resolve("emb").unwrap().pooling, Some(Pooling::Mean));
        assert_eq!(r.resolve("emb").unwrap().n_embd, 384);
        assert_eq!(r.resolve("rank").unwrap().pooling, Some(Pooling::Rank));
        assert_eq!(r.resolve("chat").unwrap().pooling, None);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_split_model_is_all_its_parts() {
        let mut m = info("m");
        m.path = PathBuf::from("/models/m-Q8_0-00001-of-00003.gguf");
        let files = files_of(&m);
        assert_eq!(files.len(), 3);
        assert_eq!(files[2], PathBuf::from("/models/m-Q8_0-00003-of-00003.gguf"));
        m.path = PathBuf::from("/models/m.gguf");
        assert_eq!(files_of(&m), [PathBuf::from("/models/m.gguf")]);
    }

    #[test]
    fn kv_bytes_per_token_from_the_header() {
        let d = dir("kv");
        let ints = [
            ("llama.block_count", 2),
            ("llama.embedding_length", 64),
            ("llama.attention.head_count", 4),
            ("llama.attention.head_count_kv", 2),
        ];
        write_gguf(&d.join("m.gguf"), &[("general.architecture", "llama")], &ints);
        let r = Registry::scan(&d, &[], &[]).unwrap();
        let m = r.resolve("m").unwrap();
        // 2 layers x 2 KV heads x (16 + 16) x 2 bytes.
        assert_eq!(m.kv_bytes_per_token, 256);
        assert_eq!(m.memory_bytes(10, KvType::F16), m.size_bytes + 2560);
        assert_eq!(m.memory_bytes(64, KvType::Q8_0), m.size_bytes + 256 * 34, "34 bytes per 32 values");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn path_like_names_are_not_found() {
        let d = dir("paths");
        write_gguf(&d.join("m.gguf"), &[("general.architecture", "llama")], &[]);
        let r = Registry::scan(&d, &[], &[]).unwrap();
        for bad in ["../m", "/etc/passwd", "m.gguf", "./m", "", "m/../m"] {
            assert!(matches!(r.resolve(bad), Err(EngineError::ModelNotFound { .. })), "{bad}");
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn allowed_models_limit_the_registry() {
        let d = dir("allowed");
        write_gguf(&d.join("a.gguf"), &[("general.architecture", "llama")], &[]);
        write_gguf(&d.join("b.gguf"), &[("general.architecture", "llama")], &[]);
        let r = Registry::scan(&d, &["b".into()], &[]).unwrap();
        assert!(r.resolve("a").is_err());
        assert!(r.resolve("b").is_ok());
        std::fs::remove_dir_all(&d).ok();
    }
}
