"""CodeGen 2.5 (LLaMA architecture, tiktoken vocabulary) → llama.cpp's `llama` graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..gguf.meta import Family, PromptFormat, PromptInfo
from .checkpoint import Checkpoint
from .errors import ConversionError
from .plan import ConversionPlan, PlannedTensor
from .vocab import ENDOFTEXT, GGUFVocab, codegen25_added_tokens, read_tiktoken_ranks, tiktoken_vocab


def permute_for_llama_cpp(weight: np.ndarray, n_head: int) -> np.ndarray:
    """HF LLaMA rotates halves; llama.cpp's llama graph rotates pairs: reorder Q/K rows per head."""
    return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def load_tiktoken_ranks(folder: Path) -> dict[bytes, int]:
    """The GPT-2 ranks CodeGen 2.5's tokenizer code builds on: a .tiktoken file in the checkpoint,
    else tiktoken's own `gpt2` encoding (which tiktoken downloads and caches)."""
    files = sorted(folder.glob("*.tiktoken"))
    if files:
        return read_tiktoken_ranks(files[0])
    try:
        import tiktoken

        return dict(tiktoken.get_encoding("gpt2")._mergeable_ranks)
    except Exception as exc:  # noqa: BLE001 - missing package or no network for its download
        raise ConversionError(folder, "CodeGen 2.5 needs GPT-2's tiktoken ranks: put a gpt2.tiktoken file in the "
                                      f"checkpoint folder or install tiktoken with its cache ({exc})") from None


def plan_codegen25(ckpt: Checkpoint) -> ConversionPlan:
    cfg = ckpt.config
    try:
        n_embd, n_layer, n_head = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
        n_ff = int(cfg["intermediate_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(ckpt.folder / "config.json", f"missing or bad LLaMA hyper-parameter {exc}") from None
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    n_ctx = int(cfg.get("max_position_embeddings", 2048))
    head_dim = n_embd // n_head
    n_rows = ckpt.entry("model.embed_tokens.weight").shape[0]

    ranks = load_tiktoken_ranks(ckpt.folder)
    first_added = len(ranks) + 1  # after <|endoftext|>
    if n_rows < first_added + 64:
        raise ConversionError(ckpt.folder, f"embedding has {n_rows} rows, too few for the tiktoken vocabulary ({first_added})")
    vocab: GGUFVocab = tiktoken_vocab(ranks, codegen25_added_tokens(first_added, n_rows))
    eos, mask, sep, eom = (vocab.id_of(t) for t in (ENDOFTEXT, "<mask_1>", "<sep>", "<eom>"))
    assert eos is not None and eom is not None
    prompt = PromptInfo(family=Family.CODEGEN25, prompt_format=PromptFormat.CODEGEN2_INFILL, context_length=n_ctx,
                        end_token_ids=(eos, eom), mask_token_id=mask, sep_token_id=sep, eom_token_id=eom,
                        source=str(cfg.get("_name_or_path", "")))
    plan = ConversionPlan(
        architecture="llama",
        hparams={"context_length": n_ctx, "embedding_length": n_embd, "block_count": n_layer,
                 "feed_forward_length": n_ff, "rope.dimension_count": head_dim, "attention.head_count": n_head,
                 "attention.head_count_kv": n_kv, "attention.layer_norm_rms_epsilon": float(cfg.get("rms_norm_eps", 1e-6)),
                 "rope.freq_base": float(cfg.get("rope_theta", 10000.0))},
        vocab=vocab, special_ids={"bos": eos, "eos": eos, "unk": eos, "eom": eom}, prompt=prompt, name=ckpt.folder.name,
    )

    def add(dst: str, src: str, shape: tuple[int, ...], heads: int | None = None) -> None:
        ckpt.check_shape(src, shape)
        if heads is None:
            plan.tensors.append(PlannedTensor(dst, shape, lambda: ckpt.load(src)))
        else:
            plan.tensors.append(PlannedTensor(dst, shape, lambda: permute_for_llama_cpp(ckpt.load(src), heads)))

    add("token_embd.weight", "model.embed_tokens.weight", (n_rows, n_embd))
    for i in range(n_layer):
        s, d = f"model.layers.{i}", f"blk.{i}"
        add(f"{d}.attn_norm.weight", f"{s}.input_layernorm.weight", (n_embd,))
        add(f"{d}.attn_q.weight", f"{s}.self_attn.q_proj.weight", (n_embd, n_embd), heads=n_head)
        add(f"{d}.attn_k.weight", f"{s}.self_attn.k_proj.weight", (n_kv * head_dim, n_embd), heads=n_kv)
        add(f"{d}.attn_v.weight", f"{s}.self_attn.v_proj.weight", (n_kv * head_dim, n_embd))
        add(f"{d}.attn_output.weight", f"{s}.self_attn.o_proj.weight", (n_embd, n_embd))
        add(f"{d}.ffn_norm.weight", f"{s}.post_attention_layernorm.weight", (n_embd,))
        add(f"{d}.ffn_gate.weight", f"{s}.mlp.gate_proj.weight", (n_ff, n_embd))
        add(f"{d}.ffn_up.weight", f"{s}.mlp.up_proj.weight", (n_ff, n_embd))
        add(f"{d}.ffn_down.weight", f"{s}.mlp.down_proj.weight", (n_embd, n_ff))
    add("output_norm.weight", "model.norm.weight", (n_embd,))
    add("output.weight", "lm_head.weight", (n_rows, n_embd))
    return plan
