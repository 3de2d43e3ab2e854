"""Tiny GGUFs for each FIM family, written directly with gguf-py, with the family's real special tokens.

StarCoder (starcoder2 graph), CodeLlama and DeepSeek-Coder (llama graph), Qwen2.5-Coder (qwen2 graph):
a small byte-level BPE vocabulary (tokenizer model "gpt2") laid out as the real model lays out its ids
(StarCoder's specials first, CodeLlama's `▁<PRE>`… at 32007-32010 of 32016 rows, DeepSeek-Coder's at
32013-32021 of 32256, Qwen2.5's at 151643-151664 of 151936), the special tokens typed CONTROL, the
`tokenizer.ggml.fim_*_token_id` keys and the family's pre-tokenizer name. No `codegen_lsp.*` prompt
metadata: the server recognises the family from the FIM tokens, as it does for a GGUF made elsewhere.
CodeGen2.5 (llama graph, tiktoken vocabulary, CodeGen2 sentinels) goes through our own converter.
Caveat: CodeLlama's real vocabulary is sentencepiece (tokenizer model "llama", scores, byte fallback);
here it is byte-level BPE like the others, with CodeLlama's token texts and ids.

With `memorize`, a tiny transformers model of the same architecture is trained until greedy decoding
of each (prefix, suffix) FIM prompt gives its middle and then the family's end token; its weights are
then written to the GGUF. The training prompts are tokenized by llama.cpp from the GGUF's own vocabulary
(as the engine tokenizes), so what is memorized is exactly what the server will evaluate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

FIM_FACTORY_VERSION = 1
FIM_FAMILIES = ("starcoder", "codellama", "deepseek", "qwen", "codegen25")


@dataclass(frozen=True)
class FimModelSpec:
    family: str = "starcoder"  # one of FIM_FAMILIES
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_kv_head: int = 2  # grouped-query attention, as StarCoder2, Qwen2.5 and larger LLaMAs have
    n_ff: int = 128
    context_length: int = 1024
    bpe_vocab: int = 512
    corpus_files: int = 40
    seed: int = 0
    train_steps: int = 0  # used with memorize; 0: 300
    learning_rate: float = 3e-3
    # (prefix, middle, suffix) triples the model learns to infill in its family's layout
    memorize: tuple[tuple[str, str, str], ...] = ()

    def key(self) -> str:
        payload = {"spec": dataclasses.asdict(self), "v": FIM_FACTORY_VERSION, "py": list(sys.version_info[:2])}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FimModel:
    spec: FimModelSpec
    gguf_path: Path


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    ids: dict[str, int]  # metadata role → id: bos, eos, eot, unk, pad, fim_pre, fim_suf, fim_mid, fim_pad...

    def layout(self, family: str, prefix: list[int], suffix: list[int]) -> list[int]:
        """The family's prompt, written from the model cards (independent of the server's build_segments)."""
        i = self.ids
        return [i["fim_pre"], *prefix, i["fim_suf"], *suffix, i["fim_mid"]]

    @property
    def end(self) -> int:
        """The token the family's models emit after the middle."""
        return self.ids.get("eot", self.ids["eos"])


# ---------------------------------------------------------------------------------------------- vocab

def _bpe(spec: FimModelSpec) -> tuple[list[str], list[str]]:
    """A byte-level BPE trained on the standard library: tokens in id order, and merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from .test_models import read_corpus

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.bpe_vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(read_corpus(spec.corpus_files), trainer)
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, merges


STARCODER_SPECIALS = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<filename>",
                      "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>",
                      "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<empty_output>", "<commit_before>",
                      "<commit_msg>", "<commit_after>", "<reponame>"]
DEEPSEEK_SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>",
                     "<｜fim▁end｜>", "<pad>", "<|User|>", "<|Assistant|>", "<|EOT|>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                 "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
CODELLAMA_SPECIALS = ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]


def family_vocab(family: str, bpe_tokens: list[str], merges: list[str]) -> Vocab:
    """The family's id layout around our BPE tokens; unused rows are fillers, as the real files pad."""
    from gguf import TokenType

    tokens: list[str] = []
    types: list[int] = []

    def put(items: list[str], kind: int) -> None:
        tokens.extend(items)
        types.extend([int(kind)] * len(items))

    def fill_to(n: int) -> None:
        if len(tokens) > n:
            raise ValueError(f"{family}: the BPE vocabulary is too large for the family's layout ({len(tokens)} > {n})")
        put([f"[PAD{i}]" for i in range(len(tokens), n)], TokenType.UNUSED)

    if family == "starcoder":
        put(STARCODER_SPECIALS, TokenType.CONTROL)
        put(bpe_tokens, TokenType.NORMAL)
        ids = {"bos": 0, "eos": 0, "unk": 0, "fim_pre": 1, "fim_mid": 2, "fim_suf": 3, "fim_pad": 4}
        pre = "starcoder"
    elif family == "codellama":
        put(["<unk>"], TokenType.UNKNOWN)
        put(["<s>", "</s>"], TokenType.CONTROL)
        put(bpe_tokens, TokenType.NORMAL)
        fill_to(32007)
        put(CODELLAMA_SPECIALS, TokenType.CONTROL)
        fill_to(32016)
        ids = {"unk": 0, "bos": 1, "eos": 2, "fim_pre": 32007, "fim_suf": 32008, "fim_mid": 32009, "eot": 32010}
        pre = "gpt-2"  # the real one is a sentencepiece ("llama") vocabulary: see the module docstring's caveat
    elif family == "deepseek":
        put(bpe_tokens, TokenType.NORMAL)
        fill_to(32013)
        put(DEEPSEEK_SPECIALS, TokenType.CONTROL)
        fill_to(32256)
        ids = {"bos": 32013, "eos": 32014, "pad": 32014, "fim_suf": 32015, "fim_pre": 32016, "fim_mid": 32017}
        pre = "deepseek-coder"
    elif family == "qwen":
        put(bpe_tokens, TokenType.NORMAL)
        fill_to(151643)
        put(QWEN_SPECIALS, TokenType.CONTROL)
        fill_to(151936)
        ids = {"bos": 151643, "eos": 151643, "pad": 151643, "fim_pre": 151659, "fim_mid": 151660, "fim_suf": 151661,
               "fim_pad": 151662, "fim_rep": 151663, "fim_sep": 151664}
        pre = "qwen2"
    else:
        raise ValueError(f"unknown FIM family {family!r}")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{family}: duplicate token strings in the vocabulary")
    return Vocab(tokens, types, merges, pre, ids)


# --------------------------------------------------------------------------------------- architectures

ARCH = {"starcoder": "starcoder2", "codellama": "llama", "deepseek": "llama", "qwen": "qwen2"}


def torch_model(spec: FimModelSpec, n_vocab: int):
    import torch

    torch.manual_seed(spec.seed)
    common = dict(vocab_size=n_vocab, hidden_size=spec.n_embd, intermediate_size=spec.n_ff,
                  num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                  num_key_value_heads=spec.n_kv_head, max_position_embeddings=spec.context_length,
                  tie_word_embeddings=False, rope_theta=10000.0, initializer_range=0.02)
    arch = ARCH[spec.family]
    if arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        model = LlamaForCausalLM(LlamaConfig(rms_norm_eps=1e-5, **common))
    elif arch == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        model = Qwen2ForCausalLM(Qwen2Config(rms_norm_eps=1e-6, use_sliding_window=False, **common))
    else:
        from transformers import Starcoder2Config, Starcoder2ForCausalLM

        model = Starcoder2ForCausalLM(Starcoder2Config(norm_epsilon=1e-5, use_bias=True, hidden_act="gelu_pytorch_tanh",
                                                       sliding_window=None, residual_dropout=0.0, embedding_dropout=0.0,
                                                       attention_dropout=0.0, **common))
    model.eval()
    with torch.no_grad():  # non-trivial norms and biases, so each is exercised in the GGUF
        for _, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.05)
    return model


def _permute(weight, n_head: int):
    """HF LLaMA rotates halves; llama.cpp's llama graph rotates pairs: reorder Q/K rows per head."""
    return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def gguf_tensors(model, spec: FimModelSpec) -> dict[str, "object"]:
    """HF state dict → llama.cpp tensor names (numpy arrays)."""
    arch = ARCH[spec.family]
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {"token_embd.weight": sd["model.embed_tokens.weight"], "output.weight": sd["lm_head.weight"]}
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
    for key, value in sd.items():
        if key.startswith("model.norm."):
            out["output_norm." + key.rsplit(".", 1)[1]] = value
            continue
        if not key.startswith("model.layers."):
            continue
        _, _, i, rest = key.split(".", 3)
        module, kind = rest.rsplit(".", 1)
        if module not in names:
            continue  # rotary caches and the like
        if arch == "llama" and module == "self_attn.q_proj":
            value = _permute(value, spec.n_head)
        elif arch == "llama" and module == "self_attn.k_proj":
            value = _permute(value, spec.n_kv_head)
        out[f"blk.{i}.{names[module]}.{kind}"] = value
    return out


def write_fim_gguf(path: Path, spec: FimModelSpec, vocab: Vocab, tensors: dict) -> None:
    """Big matrices f16, norms and biases f32, as llama.cpp's converter writes an f16 file."""
    import gguf
    import numpy as np

    arch = ARCH[spec.family]
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_name(f"codegen-lsp-tiny-{spec.family}-fim")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_kv_head)
    writer.add_rope_freq_base(10000.0)
    if arch == "starcoder2":
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_layer_norm_rms_eps(1e-5 if arch == "llama" else 1e-6)
    if arch == "llama":
        writer.add_rope_dimension_count(spec.n_embd // spec.n_head)
        writer.add_vocab_size(len(vocab.tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    for role, value in vocab.ids.items():
        writer.add_uint32(f"tokenizer.ggml.{role}_token_id", value)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    for name, value in tensors.items():
        value = np.ascontiguousarray(value, dtype=np.float16 if value.ndim == 2 else np.float32)
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)


# -------------------------------------------------------------------------------------------- training

def tokenizer_of(gguf_path: Path):
    """llama.cpp's own tokenizer for a GGUF, as the engine calls it (no BOS, special tokens as text)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)

    def tokenize(text: str) -> list[int]:
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    return tokenize


def memorize_fim(model, documents: list[tuple[list[int], list[int]]], steps: int, lr: float, seed: int) -> float:
    """Full-batch training; loss on the answer (middle + end token) only. Documents: (prompt, answer)."""
    import torch

    width = max(len(p) + len(a) for p, a in documents)
    batch = torch.zeros((len(documents), width), dtype=torch.long)
    labels = torch.full((len(documents), width), -100, dtype=torch.long)
    for row, (prompt, answer) in enumerate(documents):
        ids = prompt + answer
        batch[row, : len(ids)] = torch.tensor(ids)
        labels[row, len(prompt): len(ids)] = torch.tensor(answer)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        loss = model(input_ids=batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


def _expand(tensors: dict, vocab: Vocab, rows: list[int], proxy: int, seed: int) -> dict:
    """A model trained on the used rows only (BPE tokens and specials) → the family's full id layout.
    Filler rows: small random embeddings, and the output row of `proxy` (a special never in an
    answer, which training pushed below every answer token), so no filler outranks what was learned."""
    import numpy as np

    n_full = len(vocab.tokens)
    embd, output = tensors["token_embd.weight"], tensors["output.weight"]
    full_embd = np.random.default_rng(seed).normal(0.0, 0.02, (n_full, embd.shape[1])).astype(np.float32)
    full_out = np.repeat(output[rows.index(proxy)][None, :], n_full, axis=0)
    full_embd[rows], full_out[rows] = embd, output
    return {**tensors, "token_embd.weight": full_embd, "output.weight": full_out}


def _build_fim_family(spec: FimModelSpec, out: Path) -> None:
    """Training runs on a compact vocabulary (the rows that are not fillers): Qwen2.5's 151936 rows
    would make every optimizer step ~300 times as costly for nothing."""
    from gguf import TokenType

    bpe_tokens, merges = _bpe(spec)
    vocab = family_vocab(spec.family, bpe_tokens, merges)
    rows = [i for i, kind in enumerate(vocab.types) if kind != int(TokenType.UNUSED)]
    compact = {full: i for i, full in enumerate(rows)}
    model = torch_model(spec, len(rows))
    proxy = next(i for i in rows if vocab.types[i] == int(TokenType.CONTROL) and i not in (vocab.end, vocab.ids["eos"]))
    write_fim_gguf(out, spec, vocab, _expand(gguf_tensors(model, spec), vocab, rows, proxy, spec.seed))
    if not spec.memorize:
        return
    tokenize = tokenizer_of(out)  # the random-weight file's vocabulary, as llama.cpp reads it
    documents = [(vocab.layout(spec.family, tokenize(p), tokenize(s)), tokenize(m) + [vocab.end])
                 for p, m, s in spec.memorize]
    memorize_fim(model, [([compact[t] for t in p], [compact[t] for t in a]) for p, a in documents],
                 spec.train_steps or 300, spec.learning_rate, spec.seed)
    write_fim_gguf(out, spec, vocab, _expand(gguf_tensors(model, spec), vocab, rows, proxy, spec.seed))


def _build_codegen25(spec: FimModelSpec, folder: Path, out: Path) -> None:
    """CodeGen2.5 through our own converter (tiktoken ranks → llama), trained in CodeGen2's infill
    layout: prefix <mask_1> suffix <|endoftext|> <sep> <mask_1> → middle <eom>."""
    from transformers import LlamaForCausalLM

    from codegen_lsp.convert import convert_checkpoint
    from codegen_lsp.gguf.inspect import inspect_model_file

    from .test_models import TinyModelSpec, build_codegen25_checkpoint

    hf_dir = folder / "hf"
    base = TinyModelSpec(family="codegen25", n_layer=spec.n_layer, n_embd=spec.n_embd, n_head=spec.n_head,
                         n_inner=spec.n_ff, bpe_vocab=spec.bpe_vocab, corpus_files=spec.corpus_files,
                         n_positions=spec.context_length, seed=spec.seed)
    build_codegen25_checkpoint(base, hf_dir)
    convert_checkpoint(hf_dir, out, "f16", progress=False)
    if not spec.memorize:
        return
    ids = inspect_model_file(out).token_ids
    tokenize = tokenizer_of(out)
    documents = [(tokenize(p) + [ids["mask"]] + tokenize(s) + [ids["eos"], ids["sep"], ids["mask"]],
                  tokenize(m) + [ids["infill_eom"]]) for p, m, s in spec.memorize]
    model = LlamaForCausalLM.from_pretrained(hf_dir)
    memorize_fim(model, documents, spec.train_steps or 300, spec.learning_rate, spec.seed)
    model.save_pretrained(hf_dir, safe_serialization=True)
    convert_checkpoint(hf_dir, out, "f16", progress=False)


def build_fim_model(spec: FimModelSpec, cache_dir: Path | None = None) -> FimModel:
    """The tiny GGUF for `spec`, built once and cached in a folder keyed by the spec."""
    from .test_models import _lock, default_cache_dir

    if spec.family not in FIM_FAMILIES:
        raise ValueError(f"unknown FIM family {spec.family!r} (choose from {', '.join(FIM_FAMILIES)})")
    folder = (cache_dir or default_cache_dir()) / f"fim-{spec.family}-{spec.key()}"
    out = folder / "model-f16.gguf"
    if out.exists():
        return FimModel(spec, out)
    with _lock(folder):
        if not out.exists():
            building = folder / "building.gguf"
            if spec.family == "codegen25":
                _build_codegen25(spec, folder, building)
            else:
                _build_fim_family(spec, building)
            (folder / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1))
            building.replace(out)
    return FimModel(spec, out)
