"""A numpy (float32) forward pass of all-MiniLM-L6-v2, the reference the embeddings tests check
Hearth against.

It reads the same safetensors checkpoint that scripts/convert-bert-gguf.py converted (under
$HEARTH_HOME/sources/all-MiniLM-L6-v2, which scripts/fetch-models writes) and tokenizes with the
`tokenizers` package from the model's own tokenizer.json, so it is independent of llama.cpp.

    embed(texts, normalize=True)       sentence-transformers' output: mean pooling over every token
                                       ([CLS] and [SEP] included), then L2 normalisation
    rerank_logit(query, doc, head_seed)
                                       the stand-in reranker's raw score, computed the way
                                       llama.cpp's RANK pooling does
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[2]
HEARTH_HOME = Path(os.environ.get("HEARTH_HOME", Path.home() / ".cache" / "hearth"))
MODEL_DIR = HEARTH_HOME / "sources" / "all-MiniLM-L6-v2"


@functools.cache
def converter():
    """scripts/convert-bert-gguf.py as a module, for the stand-in head it writes."""
    path = REPO / "scripts" / "convert-bert-gguf.py"
    spec = importlib.util.spec_from_file_location("convert_bert_gguf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def tokenizer(model_dir: Path = MODEL_DIR) -> Tokenizer:
    """tokenizer.json without its padding (fixed 128) and truncation settings."""
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def tokenize(text: str, add_special: bool = True) -> list[int]:
    return tokenizer().encode(text, add_special_tokens=add_special).ids


def tokenize_pair(query: str, doc: str) -> list[int]:
    """[CLS] query [SEP] doc [SEP], the template of tokenizer.json's post-processor."""
    return tokenizer().encode(query, doc).ids


class Bert:
    """The BERT encoder (embeddings, N post-norm transformer layers) in float32."""

    def __init__(self, model_dir: Path = MODEL_DIR):
        self.config = json.loads((model_dir / "config.json").read_text())
        self.t = {k.removeprefix("bert."): v.astype(np.float32) for k, v in
                  load_file(str(model_dir / "model.safetensors")).items() if v.dtype != np.int64}
        self.eps = self.config["layer_norm_eps"]
        self.n_head = self.config["num_attention_heads"]

    def layer_norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.t[prefix + ".weight"] + self.t[prefix + ".bias"]

    def linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.t[prefix + ".weight"].T + self.t[prefix + ".bias"]

    def hidden_states(self, ids: list[int]) -> np.ndarray:
        """Last hidden state, one row per token, for one unpadded sequence.

        Token type 0 for every token, sentence pairs included: llama.cpp's BERT graph adds only
        row 0 of token_types (models/bert.cpp, "token types are hardcoded to zero"), so that is
        what a GGUF reranker computes, and what this reference must compute to match it.
        """
        t = self.t
        n = len(ids)
        x = (t["embeddings.word_embeddings.weight"][ids]
             + t["embeddings.position_embeddings.weight"][:n]
             + t["embeddings.token_type_embeddings.weight"][0])
        x = self.layer_norm(x, "embeddings.LayerNorm")
        d_head = x.shape[1] // self.n_head
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (self.linear(x, p + f"attention.self.{w}").reshape(n, self.n_head, d_head).transpose(1, 0, 2)
                       for w in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(d_head)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = self.linear(ctx.transpose(1, 0, 2).reshape(n, -1), p + "attention.output.dense")
            x = self.layer_norm(x + attn, p + "attention.output.LayerNorm")
            ffn = self.linear(gelu(self.linear(x, p + "intermediate.dense")), p + "output.dense")
            x = self.layer_norm(x + ffn, p + "output.LayerNorm")
        return x


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of Hugging Face's "gelu"; llama.cpp uses the tanh approximation,
    which differs by under 1e-3 and is part of the tolerance."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


@functools.cache
def model() -> Bert:
    return Bert()


def embed_ids(ids: list[int], normalize: bool = True) -> np.ndarray:
    v = model().hidden_states(ids).mean(0)
    return v / np.linalg.norm(v) if normalize else v


def embed(texts: list[str], normalize: bool = True) -> np.ndarray:
    """One row per text: mean over all tokens, [CLS] and [SEP] included, then L2-normalised."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts")
    return np.stack([embed_ids(tokenize(s), normalize) for s in texts])


@functools.cache
def rerank_head(head_seed: int) -> dict[str, np.ndarray]:
    """The stand-in reranker head exactly as the converter wrote it (same function, same seed)."""
    conv = converter()
    bert = model()
    return conv.standin_head(bert.config["hidden_size"], head_seed, conv.checkpoint_pooler(bert.t))


def rerank_logit(query: str, doc: str, head_seed: int) -> float:
    """What llama.cpp's RANK pooling (llama-graph.cpp build_pooling) computes for a BERT GGUF:
    take the hidden state of the sequence's first token ([CLS]; the encoder is not causal), then
    cls.output( tanh( cls(h) ) ), i.e. the BERT pooler followed by the 1 x hidden classifier."""
    head = rerank_head(head_seed)
    h = model().hidden_states(tokenize_pair(query, doc))[0]
    pooled = np.tanh(head["cls.weight"] @ h + head["cls.bias"])
    return float((head["cls.output.weight"] @ pooled + head["cls.output.bias"])[0])


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
