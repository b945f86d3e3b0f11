//! A model's vocabulary loaded without its weights (llama.cpp's `vocab_only`), shared by
//! every request of the model for tokenizing on the request's side.

use hearth_engine::error::LoadError;
use hearth_engine::{SpecialTokens, Token, Vocab};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::path::Path;

/// A vocabulary-only model. llama.cpp's tokenizer reads the vocabulary only, so many threads
/// may tokenize at once (llama-server does so on its HTTP threads).
pub(crate) struct VocabOnly {
    model: LlamaModel,
    n_vocab: u32,
}

impl VocabOnly {
    /// Reads the vocabulary of the GGUF at `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, LoadError> {
        let model =
            crate::init::load_model(path, &LlamaModelParams::default().with_vocab_only(true).with_n_gpu_layers(0))?;
        let n_vocab = u32::try_from(model.n_vocab()).unwrap_or(0);
        Ok(Self { model, n_vocab })
    }

    fn id(&self, t: LlamaToken) -> Option<Token> {
        u32::try_from(t.0).ok().filter(|&t| t < self.n_vocab)
    }
}

impl Vocab for VocabOnly {
    fn n_vocab(&self) -> u32 {
        self.n_vocab
    }

    fn tokenize_text(&self, text: &str) -> Vec<Token> {
        self.model.vocab().tokenize(text.as_bytes(), false, false).into_iter().map(|t| t.0 as u32).collect()
    }

    fn piece(&self, token: Token) -> Vec<u8> {
        if token >= self.n_vocab {
            return Vec::new();
        }
        self.model.vocab().token_to_piece(LlamaToken(token as i32), false, None)
    }

    fn controls(&self) -> Vec<(String, Token)> {
        let vocab = self.model.vocab();
        (0..self.n_vocab)
            .map(|t| LlamaToken(t as i32))
            .filter(|&t| vocab.is_control(t))
            .map(|t| (String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned(), t.0 as u32))
            .collect()
    }

    fn special(&self) -> SpecialTokens {
        let vocab = self.model.vocab();
        SpecialTokens {
            bos: self.id(vocab.bos()),
            eos: self.id(vocab.eos()),
            sep: self.id(vocab.sep()),
            add_bos: vocab.should_add_bos(),
            add_eos: vocab.should_add_eos(),
            add_sep: vocab.should_add_sep(),
        }
    }
}

/// How much lower than the model's threads background threads run: a core shared by a model
/// thread and a tokenizing one splits about 3:1 (Linux's nice weights 1024 and 335), so a long
/// prompt being tokenized takes a quarter of a core from running streams, and all idle time.
/// Measured against nice 0, 10 and 19 in BENCHMARKS.md ("Tokenizing on the request's side").
const BACKGROUND_NICE: libc::c_int = 5;

/// Lowers the calling thread's CPU priority (Linux keeps a nice value per thread). Threads it
/// starts inherit the value, so it is called only on threads that start none.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority reads no memory of ours; `who` 0 is the calling thread.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a background thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::Tokenizer;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn model(name: &str) -> PathBuf {
        let home = std::env::var_os("HEARTH_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth"),
            PathBuf::from,
        );
        let path = home.join("models").join(name);
        assert!(path.is_file(), "run scripts/fetch-models first ({} missing)", path.display());
        path
    }

    const PROSE: &str = "  Hello, how are you?\n\nÜnïcödé 日本語 🙂 — fn main() {\n    let x = 42;\n}\t end ";

    /// Our split at control tokens, then text-only tokenizing, gives what llama.cpp's own
    /// `parse_special` tokenizing gives on prompts whose control tokens are the template's.
    #[test]
    fn splitting_at_control_tokens_matches_llama_cpp() {
        let cases = [
            ("SmolLM2-135M-Instruct.Q4_1.gguf", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"),
            ("gemma-3-270m-q4_k_m.gguf", "<bos><start_of_turn>user\n"),
        ];
        for (file, head) in cases {
            let v = VocabOnly::load(&model(file)).unwrap();
            let reference = |text: &str| -> Vec<Token> {
                v.model.vocab().tokenize(text.as_bytes(), false, true).into_iter().map(|t| t.0 as u32).collect()
            };
            let controls = v.controls();
            assert!(controls.len() >= 3, "{file}: {controls:?}");
            let tok = Tokenizer::new(Arc::new(VocabOnly::load(&model(file)).unwrap()));
            for text in [PROSE.to_string(), format!("{head}{PROSE}"), format!("{head}a{PROSE}{head}")] {
                assert_eq!(tok.tokenize(&text, false), reference(&text), "{file}: {text:?}");
            }
            // Text-only tokenizing keeps control tokens' spellings as text.
            let plain = tok.tokenize_text(head, false);
            assert!(plain.iter().all(|t| !controls.iter().any(|(_, c)| c == t)), "{file}");
            assert_eq!(tok.detokenize(&plain).unwrap(), head);
        }
    }

    #[test]
    fn bos_is_added_once_where_the_model_wants_it() {
        let tok = Tokenizer::new(Arc::new(VocabOnly::load(&model("gemma-3-270m-q4_k_m.gguf")).unwrap()));
        let bos = tok.special().bos.unwrap();
        assert!(tok.special().add_bos);
        assert_eq!(tok.tokenize("hi", true)[0], bos);
        let twice = tok.tokenize("<bos>hi", true);
        assert_eq!(twice.iter().filter(|&&t| t == bos).count(), 1, "{twice:?}");
    }
}
