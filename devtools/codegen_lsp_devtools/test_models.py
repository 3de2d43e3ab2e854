"""Tiny CodeGen models for tests: random (or briefly trained) weights, a real BPE tokenizer, our converter.

Every test of the project runs against models made here. Each build is cached in a folder keyed by
its spec (and the Python version, whose standard library is the tokenizer's training text), so a
test session builds a model once. Needs the dev extra (torch, transformers, tokenizers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

FACTORY_VERSION = 1
ENDOFTEXT = "<|endoftext|>"
WHITESPACE_TOKENS = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]
CODEGEN2_SENTINELS = [f"<mask_{i}>" for i in range(1, 9)] + ["<sep>", "<eom>", "<pad>"]
MP8_MARKER = ("# Written by codegen-lsp's test-model factory. As in CodeGen2's own modeling_codegen.py,\n"
              "# this checkpoint's qkv_proj rows are laid out in blocks of:\n"
              "mp_num = 8\n")


@dataclass(frozen=True)
class TinyModelSpec:
    family: str = "codegen1"  # codegen1 (left-to-right) | codegen2 (infill sentinels) | codegen25 (LLaMA)
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    rotary_dim: int = 16
    n_inner: int | None = None
    mp_num: int = 4
    bpe_vocab: int = 1024  # merges learned by the tokenizer trainer
    pad_rows_to: int = 64  # embedding rows rounded up to this multiple, as CodeGen pads to 51200
    n_positions: int = 1024
    init_std: float = 0.02
    seed: int = 0
    outtype: str = "f32"
    corpus_files: int = 120
    train_steps: int = 0  # > 0: a brief causal-LM training run on the corpus (confident, realistic logits)
    train_seq_len: int = 128
    train_batch: int = 8
    learning_rate: float = 3e-3
    memorize: tuple[str, ...] = ()  # train on these snippets (and infill cuts of them) until reproduced

    def key(self) -> str:
        payload = {"spec": dataclasses.asdict(self), "v": FACTORY_VERSION, "py": list(sys.version_info[:2])}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TinyModel:
    spec: TinyModelSpec
    hf_dir: Path
    gguf_path: Path

    def quantized(self, qtype: str) -> Path:
        """The same checkpoint converted to another type (cached beside the first)."""
        from codegen_lsp.convert import convert_checkpoint

        out = self.gguf_path.with_name(f"model-{qtype}.gguf")
        if not out.exists():
            with _lock(out.parent):
                if not out.exists():
                    convert_checkpoint(self.hf_dir, out, qtype, progress=False)
        return out


def codegen_350m_shape() -> TinyModelSpec:
    """Random weights in CodeGen-350M's shape (20 layers, n_embd 1024, 51200 rows): for timing only."""
    return TinyModelSpec(n_embd=1024, n_layer=20, n_head=16, rotary_dim=32, n_inner=4096, pad_rows_to=51200,
                         n_positions=2048, seed=350)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CODEGEN_LSP_TEST_MODELS", Path.cwd() / ".cache" / "test-models"))


def corpus_files(limit: int) -> list[Path]:
    """A deterministic, varied slice of the running interpreter's standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and "test" not in p.parts)
    step = max(1, len(files) // max(1, limit))
    return files[::step][:limit]


def read_corpus(limit: int) -> list[str]:
    texts = []
    for path in corpus_files(limit):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return texts


def train_tokenizer(texts: list[str], bpe_vocab: int, family: str):
    """Byte-level BPE like GPT-2's, then CodeGen's added tokens in CodeGen's order."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_special_tokens([AddedToken(ENDOFTEXT, special=True, normalized=False)])
    tokenizer.add_tokens([AddedToken(t, normalized=False) for t in WHITESPACE_TOKENS])
    if family == "codegen2":
        tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CODEGEN2_SENTINELS])
    return tokenizer


def pack_qkv(q, k, v, mp_num: int):
    """Inverse of the converter's split: lay Q, V, K out in mp_num blocks [Q_m | V_m | K_m]."""
    import numpy as np

    n_embd = q.shape[0]
    parts = [x.reshape(mp_num, n_embd // mp_num, -1) for x in (q, v, k)]
    return np.stack(parts, axis=1).reshape(3 * n_embd, -1)


def unpack_qkv_mp4(qkv):
    """transformers' CodeGen layout (mp_num = 4) → Q, K, V, written from its reshape for the tests."""
    n_embd = qkv.shape[0] // 3
    blocks = qkv.reshape(4, 3, n_embd // 4, -1)
    q, v, k = (blocks[:, i].reshape(n_embd, -1) for i in range(3))
    return q, k, v


def _optimize(model, spec: TinyModelSpec, steps: int, next_batch) -> float:
    """AdamW for `steps` steps on batches from `next_batch()` → (input_ids, labels); returns the last loss."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        input_ids, labels = next_batch()
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


def train_causal_lm(model, documents: list[list[int]], spec: TinyModelSpec) -> float:
    """A short, seeded next-token training run on random windows of the corpus."""
    import torch

    data = torch.tensor([token for doc in documents for token in doc], dtype=torch.long)
    generator = torch.Generator().manual_seed(spec.seed)

    def next_batch():
        starts = torch.randint(0, len(data) - spec.train_seq_len - 1, (spec.train_batch,), generator=generator)
        batch = torch.stack([data[s:s + spec.train_seq_len] for s in starts.tolist()])
        return batch, batch

    return _optimize(model, spec, spec.train_steps, next_batch)


def snippet_documents(tokenizer, spec: TinyModelSpec) -> list[list[int]]:
    """Each snippet left to right; for codegen2 also every one-line infill cut in CodeGen2's format."""
    ids = lambda text: tokenizer.encode(text).ids  # noqa: E731
    eos = tokenizer.token_to_id(ENDOFTEXT)
    docs = [ids(snippet) + [eos] for snippet in spec.memorize]
    if spec.family == "codegen2":
        mask, sep, eom = (tokenizer.token_to_id(t) for t in ("<mask_1>", "<sep>", "<eom>"))
        for snippet in spec.memorize:
            lines = snippet.splitlines(keepends=True)
            for i, line in enumerate(lines):
                indent = len(line) - len(line.lstrip())
                prefix, middle = "".join(lines[:i]) + line[:indent], line[indent:]
                suffix = "".join(lines[i + 1:])
                docs.append(ids(prefix) + [mask] + ids(suffix) + [eos, sep, mask] + ids(middle) + [eom])
    return docs


def memorize_snippets(model, documents: list[list[int]], spec: TinyModelSpec) -> float:
    """Full-batch training on whole documents (padding masked out) for spec.train_steps steps."""
    import torch

    width = max(len(d) for d in documents)
    batch = torch.zeros((len(documents), width), dtype=torch.long)
    labels = torch.full((len(documents), width), -100, dtype=torch.long)
    for row, doc in enumerate(documents):
        batch[row, : len(doc)] = torch.tensor(doc)
        labels[row, : len(doc)] = torch.tensor(doc)
    torch.manual_seed(spec.seed)
    return _optimize(model, spec, spec.train_steps or 300, lambda: (batch, labels))


def tiktoken_ranks_of(tokenizer) -> dict[bytes, int]:
    """A trained byte-level BPE's vocabulary as tiktoken merge ranks (ids are in merge order)."""
    from codegen_lsp.convert.vocab import bytes_to_unicode

    decode = {ch: byte for byte, ch in bytes_to_unicode().items()}
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    return {bytes(decode[ch] for ch in text): rank for rank, (text, _) in enumerate(ordered)}


def build_codegen25_checkpoint(spec: TinyModelSpec, out_dir: Path) -> None:
    """A tiny LLaMA with a tiktoken rank file, shaped like CodeGen 2.5's checkpoints."""
    import base64

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(read_corpus(spec.corpus_files), spec.bpe_vocab, "codegen1")
    ranks = tiktoken_ranks_of(tokenizer)
    n_rows = -(-(len(ranks) + 1 + 62 + 8) // spec.pad_rows_to) * spec.pad_rows_to
    config = LlamaConfig(vocab_size=n_rows, hidden_size=spec.n_embd, intermediate_size=spec.n_inner or 3 * spec.n_embd,
                         num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                         num_key_value_heads=spec.n_head, max_position_embeddings=spec.n_positions,
                         rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=len(ranks),
                         eos_token_id=len(ranks), initializer_range=spec.init_std)
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for _, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.1)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    lines = [f"{base64.b64encode(token).decode()} {rank}" for token, rank in sorted(ranks.items(), key=lambda x: x[1])]
    (out_dir / "gpt2.tiktoken").write_text("\n".join(lines) + "\n")
    (out_dir / "codegen_lsp_spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1))


def build_hf_checkpoint(spec: TinyModelSpec, out_dir: Path) -> None:
    if spec.family == "codegen25":
        return build_codegen25_checkpoint(spec, out_dir)
    import torch
    from transformers import CodeGenConfig, CodeGenForCausalLM

    texts = read_corpus(spec.corpus_files)
    tokenizer = train_tokenizer(texts, spec.bpe_vocab, spec.family)
    n_tokens = tokenizer.get_vocab_size(with_added_tokens=True)
    n_rows = -(-n_tokens // spec.pad_rows_to) * spec.pad_rows_to
    eos = tokenizer.token_to_id(ENDOFTEXT)
    config = CodeGenConfig(
        vocab_size=n_rows, n_positions=spec.n_positions, n_ctx=spec.n_positions, n_embd=spec.n_embd,
        n_layer=spec.n_layer, n_head=spec.n_head, rotary_dim=spec.rotary_dim, n_inner=spec.n_inner,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        initializer_range=spec.init_std, bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=False,
    )
    config._name_or_path = f"codegen-lsp-tiny-{spec.family}"
    torch.manual_seed(spec.seed)
    model = CodeGenForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so the conversion of each is exercised
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.1)
    if spec.memorize:
        memorize_snippets(model, snippet_documents(tokenizer, spec), spec)
    elif spec.train_steps:
        train_causal_lm(model, [tokenizer.encode(t).ids + [eos] for t in texts], spec)
    save_hf_checkpoint(model, tokenizer, out_dir, spec.family, spec.mp_num, spec.n_positions)
    (out_dir / "codegen_lsp_spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1))


def save_hf_checkpoint(model, tokenizer, out_dir: Path, family: str, mp_num: int = 4,
                       n_positions: int = 1024, **save_options) -> None:
    """A CodeGen checkpoint folder as the hub has them: weights, config, tokenizer, and for CodeGen2 the
    modeling file that states mp_num (our converter reads it; it never guesses). `save_options` go to
    `save_pretrained` (a `state_dict` in another dtype, `max_shard_size`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True, **save_options)
    if mp_num != 4:
        _relayout_qkv(out_dir, mp_num)
    elif family == "codegen2":
        (out_dir / "modeling_codegen.py").write_text(MP8_MARKER.replace("8", "4"))
    tokenizer.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": ENDOFTEXT, "bos_token": ENDOFTEXT,
         "unk_token": ENDOFTEXT, "model_max_length": n_positions}, indent=1))


def _relayout_qkv(out_dir: Path, mp_num: int) -> None:
    """Rewrite qkv_proj into an mp_num-block layout and say so in a modeling file, as CodeGen2 does."""
    from safetensors.numpy import load_file, save_file

    path = out_dir / "model.safetensors"
    tensors = load_file(str(path))
    for name in [n for n in tensors if n.endswith("attn.qkv_proj.weight")]:
        tensors[name] = pack_qkv(*unpack_qkv_mp4(tensors[name]), mp_num)
    save_file(tensors, str(path), metadata={"format": "pt"})
    (out_dir / "modeling_codegen.py").write_text(MP8_MARKER.replace("8", str(mp_num)))


class _lock:
    """A file lock so parallel test processes build a model once."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        self._lock = FileLock(str(folder / ".lock"))

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


def build_test_model(spec: TinyModelSpec = TinyModelSpec(), cache_dir: Path | None = None) -> TinyModel:
    from codegen_lsp.convert import convert_checkpoint

    folder = (cache_dir or default_cache_dir()) / f"{spec.family}-{spec.key()}"
    hf_dir, gguf_path = folder / "hf", folder / f"model-{spec.outtype}.gguf"
    if gguf_path.exists():
        return TinyModel(spec, hf_dir, gguf_path)
    with _lock(folder):
        if not gguf_path.exists():
            if not (hf_dir / "codegen_lsp_spec.json").exists():
                build_hf_checkpoint(spec, hf_dir)
            convert_checkpoint(hf_dir, gguf_path, spec.outtype, progress=False)
    return TinyModel(spec, hf_dir, gguf_path)


def build_fim_test_model(family: str, memorize: tuple[tuple[str, str, str], ...] = (), cache_dir: Path | None = None,
                         **spec):
    """A tiny GGUF for a FIM family (starcoder, codellama, deepseek, qwen, codegen25) with that family's
    real special tokens and id layout: see fim_models.py."""
    from .fim_models import FimModelSpec, build_fim_model

    return build_fim_model(FimModelSpec(family=family, memorize=memorize, **spec), cache_dir)
