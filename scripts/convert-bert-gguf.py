#!/usr/bin/env python3
"""Convert a BERT sentence-transformers checkpoint (safetensors) into a GGUF that llama.cpp loads.

    convert-bert-gguf.py SRC_DIR OUT.gguf --outtype {f32,f16,q8_0} [--pooling {mean,cls,last}]
                         [--name NAME] [--cross-encoder --head-seed N]

SRC_DIR is a sentence-transformers model directory (config.json, model.safetensors, tokenizer.json,
modules.json, 1_Pooling/config.json). The output is what llama.cpp's convert_hf_to_gguf.py
(class BertModel) writes for such a model, without torch: the same hyperparameter keys, the same
WordPiece vocabulary rewrite (phantom-space prefix), gguf's own SpecialVocab for the special ids
and add_bos/add_eos flags, and gguf's TensorNameMap for the tensor names.

--cross-encoder writes a *stand-in* reranker for tests (pooling RANK): the body, the BERT pooler
(pooler.dense.*, or seeded weights when the checkpoint has none) as llama.cpp's `cls` tensors, and
a seeded 1 x hidden classifier as `cls.output`. llama.cpp then scores a pair as
    cls.output( tanh( cls( h_CLS ) ) )
where h_CLS is the last hidden state of the first token. The scores mean nothing, but they are
reproducible: tests/python/bert_reference.py imports standin_head() from this file.

Only gguf, numpy and safetensors are needed (scripts/python-deps installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

OUTTYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
POOLING = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS, "last": gguf.PoolingType.LAST}

# Standard deviation of the stand-in classifier's weights and bias. BERT's pooled [CLS] states
# share a large common component, so a random direction mostly sees that: larger weights push every
# sigmoid(logit) towards 0 or 1 long before they spread documents apart. With 0.5 and seed 1234,
# MiniLM query/document pairs score about 0.14 to 0.19, far from saturation.
HEAD_STD = 0.5

PHANTOM_SPACE = "\u2581"

# BertNormalizer options that llama.cpp's WPM tokenizer reads (llama-vocab.cpp); gguf-py has no
# constants for them yet.
KEY_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"
KEY_STRIP_ACCENTS = "tokenizer.ggml.normalizer.strip_accents"
SPECIAL_TOKEN_TYPES = ("bos", "eos", "unk", "sep", "pad", "mask")

# Checkpoint tensors that no llama.cpp BERT graph reads (MLM / NSP heads, buffers).
SKIPPED_PREFIXES = ("cls.predictions", "cls.seq_relationship")
SKIPPED_NAMES = ("embeddings.position_ids",)

# Always f32: 1-D tensors (norms, biases) and the position / token-type embeddings, as
# convert_hf_to_gguf.py does (llama.cpp adds a 1-D view of token_types to f32 activations).
F32_TENSORS = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)


def standin_head(hidden: int, seed: int, pooler: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The stand-in reranker head, as float32 arrays keyed by GGUF tensor name.

    `cls.weight`/`cls.bias` are the BERT pooler (taken from `pooler` when given, which maps
    "weight"/"bias" to the checkpoint's pooler.dense tensors), `cls.output.weight` (1 x hidden)
    and `cls.output.bias` (1) the seeded classifier. The classifier is drawn first, so it is the
    same whether or not the checkpoint has a pooler.
    """
    rng = np.random.default_rng(seed)
    out_w = rng.normal(0.0, HEAD_STD, size=(1, hidden))
    out_b = rng.normal(0.0, HEAD_STD, size=(1,))
    if pooler is None:
        dense_w = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, hidden))
        dense_b = np.zeros(hidden)
    else:
        dense_w, dense_b = pooler["weight"], pooler["bias"]
    cls_name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.CLS]
    out_name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.CLS_OUT]
    head = {
        f"{cls_name}.weight": dense_w,
        f"{cls_name}.bias": dense_b,
        f"{out_name}.weight": out_w,
        f"{out_name}.bias": out_b,
    }
    return {k: np.asarray(v, dtype=np.float32) for k, v in head.items()}


def checkpoint_pooler(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The checkpoint's BERT pooler (pooler.dense.*), or None when it has none."""
    names = {"weight": "pooler.dense.weight", "bias": "pooler.dense.bias"}
    if not all(n in tensors for n in names.values()):
        return None
    return {k: tensors[n] for k, n in names.items()}


def load_checkpoint(src: Path) -> dict[str, np.ndarray]:
    """The safetensors tensors as float32, with the `bert.` prefix and gamma/beta names normalised."""
    tensors = {}
    for name, t in load_file(str(src / "model.safetensors")).items():
        name = name.removeprefix("bert.")
        if name.endswith(".gamma"):
            name = name[: -len(".gamma")] + ".weight"
        elif name.endswith(".beta"):
            name = name[: -len(".beta")] + ".bias"
        tensors[name] = t.astype(np.float32) if t.dtype != np.int64 else t
    return tensors


def default_pooling(src: Path) -> gguf.PoolingType:
    """The pooling of the sentence-transformers Pooling module, as convert_hf_to_gguf.py reads it."""
    modules = src / "modules.json"
    if not modules.is_file():
        return gguf.PoolingType.MEAN
    for module in json.loads(modules.read_text()):
        if module["type"] == "sentence_transformers.models.Pooling":
            cfg = json.loads((src / module["path"] / "config.json").read_text())
            if cfg.get("pooling_mode_mean_tokens"):
                return gguf.PoolingType.MEAN
            if cfg.get("pooling_mode_cls_token"):
                return gguf.PoolingType.CLS
            if cfg.get("pooling_mode_lasttoken"):
                return gguf.PoolingType.LAST
            sys.exit(f"convert-bert-gguf: unsupported pooling in {module['path']}/config.json: {cfg}")
    return gguf.PoolingType.MEAN


def wordpiece_vocab(src: Path, n_vocab: int) -> tuple[list[str], list[int]]:
    """Tokens and token types, rewritten for llama.cpp's WPM tokenizer.

    llama.cpp prefixes every word with U+2581 and then matches greedily, so a word-initial piece
    `x` becomes `\u2581x`, a continuation `##x` becomes `x`, and special tokens stay as they are.
    Specials (tokenizer.json added tokens marked special: [PAD] [UNK] [CLS] [SEP] [MASK]) are
    CONTROL; everything else NORMAL; ids past the tokenizer's vocabulary are padding, UNUSED.
    """
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    if tok["model"]["type"] != "WordPiece":
        sys.exit(f"convert-bert-gguf: tokenizer.json has a {tok['model']['type']} model, not WordPiece")
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    specials = {a["id"]: a["content"] for a in tok.get("added_tokens", []) if a.get("special")}
    by_id.update(specials)
    if max(by_id) >= n_vocab:
        sys.exit(f"convert-bert-gguf: tokenizer has id {max(by_id)} but config vocab_size is {n_vocab}")

    tokens, types = [], []
    for i in range(n_vocab):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in specials:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(text[2:] if text.startswith("##") else PHANTOM_SPACE + text)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def normalizer_flags(src: Path) -> tuple[bool, bool]:
    """(lowercase, strip_accents) of the BertNormalizer; strip_accents null follows lowercase."""
    norm = json.loads((src / "tokenizer.json").read_text(encoding="utf-8")).get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        return True, True
    lowercase = bool(norm.get("lowercase", True))
    strip = norm.get("strip_accents")
    return lowercase, lowercase if strip is None else bool(strip)


def tensor_qtype(gguf_name: str, data: np.ndarray, want: gguf.GGMLQuantizationType) -> gguf.GGMLQuantizationType:
    """F32 for 1-D tensors and the positional/type embeddings; `want` for other 2-D weights,
    falling back to F16 for rows that q8_0's 32-wide blocks do not divide."""
    if data.ndim <= 1 or any(gguf_name == gguf.TENSOR_NAMES[t] + ".weight" for t in F32_TENSORS):
        return gguf.GGMLQuantizationType.F32
    if want == gguf.GGMLQuantizationType.Q8_0:
        block, _ = gguf.GGML_QUANT_SIZES[want]
        if data.shape[-1] % block != 0:
            return gguf.GGMLQuantizationType.F16
    return want


def add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, want: gguf.GGMLQuantizationType) -> None:
    qtype = tensor_qtype(name, data, want)
    if qtype == gguf.GGMLQuantizationType.Q8_0:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    else:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype))


def body_tensors(tensors: dict[str, np.ndarray], n_layer: int) -> list[tuple[str, np.ndarray]]:
    """The encoder's tensors under their GGUF names, in checkpoint order."""
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    out = []
    for name, data in tensors.items():
        if name in SKIPPED_NAMES or name.startswith(SKIPPED_PREFIXES) or name.startswith("pooler."):
            continue
        new = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            sys.exit(f"convert-bert-gguf: no GGUF name for checkpoint tensor {name}")
        out.append((new, data))
    return out


def convert(args: argparse.Namespace) -> None:
    src = Path(args.src)
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model_type") != "bert":
        sys.exit(f"convert-bert-gguf: {src}/config.json has model_type {cfg.get('model_type')!r}, not 'bert'")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        sys.exit("convert-bert-gguf: only absolute position embeddings are supported")
    hidden, n_layer = cfg["hidden_size"], cfg["num_hidden_layers"]
    qtype, ftype = OUTTYPES[args.outtype]
    if args.cross_encoder:
        pooling = gguf.PoolingType.RANK
    elif args.pooling:
        pooling = POOLING[args.pooling]
    else:
        pooling = default_pooling(src)

    tensors = load_checkpoint(src)
    tokens, toktypes = wordpiece_vocab(src, cfg["vocab_size"])
    lowercase, strip_accents = normalizer_flags(src)

    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(args.name or src.resolve().name)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_block_count(n_layer)
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_layer_norm_eps(cfg["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")  # llama.cpp ignores the pre-tokenizer for WPM vocabularies
    writer.add_token_list(tokens)
    writer.add_token_types(toktypes)
    writer.add_token_type_count(cfg.get("type_vocab_size", 1))
    # Read by llama.cpp's WPM tokenizer (both default to true there when absent).
    writer.add_bool(KEY_LOWERCASE, lowercase)
    writer.add_bool(KEY_STRIP_ACCENTS, strip_accents)
    # bos=[CLS] eos=[SEP] unk sep pad mask ids and add_bos/add_eos/add_sep, read from tokenizer.json's
    # post-processor the way convert_hf_to_gguf.py does. No `cls`: llama.cpp has deprecated
    # tokenizer.ggml.cls_token_id and uses the BOS id for [CLS].
    special = gguf.SpecialVocab(src, n_vocab=len(tokens), special_token_types=SPECIAL_TOKEN_TYPES)
    special.add_to_gguf(writer, quiet=True)

    for name, data in body_tensors(tensors, n_layer):
        add_tensor(writer, name, data, qtype)
    if args.cross_encoder:
        for name, data in standin_head(hidden, args.head_seed, checkpoint_pooler(tensors)).items():
            add_tensor(writer, name, data, qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="sentence-transformers model directory")
    p.add_argument("out", help="output .gguf (written to OUT.tmp, then renamed)")
    p.add_argument("--outtype", choices=sorted(OUTTYPES), required=True, help="type of 2-D weights")
    p.add_argument("--pooling", choices=sorted(POOLING), help="default: from the Pooling module's config")
    p.add_argument("--name", help="general.name (default: the source directory's name)")
    p.add_argument("--cross-encoder", action="store_true", help="write a stand-in reranker (pooling RANK)")
    p.add_argument("--head-seed", type=int, help="seed of the stand-in classifier (with --cross-encoder)")
    args = p.parse_args()
    if args.cross_encoder and args.head_seed is None:
        p.error("--cross-encoder needs --head-seed")
    if args.cross_encoder and args.pooling:
        p.error("--cross-encoder always uses pooling RANK; drop --pooling")
    if args.head_seed is not None and not args.cross_encoder:
        p.error("--head-seed only applies to --cross-encoder")
    convert(args)


if __name__ == "__main__":
    main()
