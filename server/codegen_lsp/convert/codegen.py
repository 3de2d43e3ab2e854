"""CodeGen 1 / CodeGen 2 checkpoints → llama.cpp's `phi2` graph (same block, see docs/ARCHITECTURE.md).

The recipe: split `qkv_proj` into Q, V, K by its `mp_num` blocks; reorder the rotary rows of Q and K
from GPT-J's interleaved pairs to NeoX halves; zero attention biases; keep lm_head's bias.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..gguf.meta import Family, PromptFormat, PromptInfo
from .checkpoint import Checkpoint, find_mp_num
from .errors import ConversionError
from .plan import ConversionPlan, PlannedTensor
from .vocab import ENDOFTEXT, GGUFVocab, load_hf_vocab

CODEGEN1_MP_NUM = 4  # transformers' modeling_codegen.py, which CodeGen 1 checkpoints are written for


def split_qkv(qkv: np.ndarray, n_embd: int, mp_num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of `qkv_proj.weight` are mp_num blocks laid out [Q_m | V_m | K_m]; gather Q, K, V."""
    if qkv.shape[0] != 3 * n_embd or n_embd % mp_num:
        raise ValueError(f"qkv_proj of shape {qkv.shape} does not split into {mp_num} blocks of n_embd={n_embd}")
    blocks = qkv.reshape(mp_num, 3, n_embd // mp_num, qkv.shape[1])
    q, v, k = (blocks[:, part].reshape(n_embd, qkv.shape[1]) for part in range(3))
    return q, k, v


def interleaved_to_neox(weight: np.ndarray, n_head: int, rotary_dim: int) -> np.ndarray:
    """Within each head, rows [0..rotary_dim) go from pairs (0,1),(2,3).. to halves [0,2,4..,1,3,5..]."""
    head_dim = weight.shape[0] // n_head
    order = np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2), np.arange(rotary_dim, head_dim)])
    heads = weight.reshape(n_head, head_dim, -1)[:, order, :]
    return heads.reshape(weight.shape)


def _hparam(ckpt: Checkpoint, key: str) -> int:
    value = ckpt.config.get(key)
    if not isinstance(value, int) or value <= 0:
        raise ConversionError(ckpt.folder / "config.json", f"{key!r} must be a positive integer, got {value!r}")
    return value


def resolve_mp_num(ckpt: Checkpoint, family: Family, override: int | None) -> int:
    if override is not None:
        return override
    from_file = find_mp_num(ckpt.modeling_source())
    if from_file is not None:
        return from_file
    if family is Family.CODEGEN1:
        return CODEGEN1_MP_NUM
    raise ConversionError(ckpt.folder, "mp_num is not stated by the checkpoint's modeling_codegen.py; "
                                       "pass --mp-num (CodeGen2 sizes use 4 or 8)")


def detect_family(vocab: GGUFVocab) -> Family:
    return Family.CODEGEN2 if vocab.id_of("<mask_1>") is not None and vocab.id_of("<sep>") is not None else Family.CODEGEN1


def detect_variant(ckpt: Checkpoint) -> str:
    names = f"{ckpt.config.get('_name_or_path', '')} {ckpt.folder.name}"
    found = re.search(r"(mono|multi|nl|instruct)\b", names)
    return found.group(1) if found else ""


def plan_codegen(ckpt: Checkpoint, mp_num_override: int | None = None) -> ConversionPlan:
    cfg = ckpt.config
    n_embd, n_layer, n_head = (_hparam(ckpt, k) for k in ("n_embd", "n_layer", "n_head"))
    rotary_dim = int(cfg.get("rotary_dim") or n_embd // n_head)
    n_inner = int(cfg.get("n_inner") or 4 * n_embd)
    n_ctx = int(cfg.get("n_positions") or cfg.get("n_ctx") or 2048)
    if n_embd % n_head:
        raise ConversionError(ckpt.folder / "config.json", f"n_embd={n_embd} is not divisible by n_head={n_head}")
    head_dim = n_embd // n_head
    if rotary_dim > head_dim or rotary_dim % 2:
        raise ConversionError(ckpt.folder / "config.json", f"rotary_dim={rotary_dim} must be even and ≤ head_dim={head_dim}")
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        raise ConversionError(ckpt.folder / "config.json", f"activation {act!r} is not the tanh GELU llama.cpp's phi2 graph uses")

    n_rows = ckpt.entry("transformer.wte.weight").shape[0]
    vocab = load_hf_vocab(ckpt.folder).padded_to(n_rows, ckpt.folder)
    family = detect_family(vocab)
    mp_num = resolve_mp_num(ckpt, family, mp_num_override)
    # Heads may straddle the mp_num blocks: transformers' CodeGen joins the blocks' Q (K, V) before it
    # splits heads, as split_qkv does, so only n_embd must divide.
    if mp_num <= 0 or n_embd % mp_num:
        raise ConversionError(ckpt.folder, f"mp_num={mp_num} does not divide n_embd={n_embd}")

    eos = vocab.id_of(ENDOFTEXT)
    if eos is None:
        eos = int(cfg.get("eos_token_id", n_rows - 1))
    special = {"bos": int(cfg.get("bos_token_id", eos)), "eos": eos, "unk": eos}
    end_ids = [eos]
    mask, sep, eom = (vocab.id_of(t) for t in ("<mask_1>", "<sep>", "<eom>"))
    if family is Family.CODEGEN2:
        if eom is None:
            raise ConversionError(ckpt.folder, "CodeGen2 tokenizer has <mask_1> and <sep> but no <eom>")
        special["eom"] = eom
        end_ids.append(eom)
    prompt = PromptInfo(
        family=family,
        prompt_format=PromptFormat.CODEGEN2_INFILL if family is Family.CODEGEN2 else PromptFormat.LEFT_TO_RIGHT,
        context_length=n_ctx, end_token_ids=tuple(end_ids), variant=detect_variant(ckpt),
        mask_token_id=mask, sep_token_id=sep, eom_token_id=eom, source=str(cfg.get("_name_or_path", "")),
    )
    plan = ConversionPlan(
        architecture="phi2",
        hparams={"context_length": n_ctx, "embedding_length": n_embd, "feed_forward_length": n_inner,
                 "block_count": n_layer, "attention.head_count": n_head, "attention.head_count_kv": n_head,
                 "attention.layer_norm_epsilon": float(cfg.get("layer_norm_epsilon", 1e-5)),
                 "rope.dimension_count": rotary_dim},
        vocab=vocab, special_ids=special, prompt=prompt, name=ckpt.folder.name,
    )

    def add(name: str, shape: tuple[int, ...], produce) -> None:
        plan.tensors.append(PlannedTensor(name, shape, produce))

    def copy(src: str, shape: tuple[int, ...]):
        ckpt.check_shape(src, shape)
        return lambda: ckpt.load(src)

    def zeros(n: int):
        return lambda: np.zeros(n, dtype=np.float32)

    add("token_embd.weight", (n_rows, n_embd), copy("transformer.wte.weight", (n_rows, n_embd)))
    for i in range(n_layer):
        src, dst = f"transformer.h.{i}", f"blk.{i}"
        qkv_name = f"{src}.attn.qkv_proj.weight"
        ckpt.check_shape(qkv_name, (3 * n_embd, n_embd))
        add(f"{dst}.attn_norm.weight", (n_embd,), copy(f"{src}.ln_1.weight", (n_embd,)))
        add(f"{dst}.attn_norm.bias", (n_embd,), copy(f"{src}.ln_1.bias", (n_embd,)))
        add(f"{dst}.attn_qkv.weight", (3 * n_embd, n_embd), _fused_qkv(ckpt, qkv_name, n_embd, n_head, rotary_dim, mp_num))
        add(f"{dst}.attn_qkv.bias", (3 * n_embd,), zeros(3 * n_embd))
        add(f"{dst}.attn_output.weight", (n_embd, n_embd), copy(f"{src}.attn.out_proj.weight", (n_embd, n_embd)))
        add(f"{dst}.attn_output.bias", (n_embd,), zeros(n_embd))
        add(f"{dst}.ffn_up.weight", (n_inner, n_embd), copy(f"{src}.mlp.fc_in.weight", (n_inner, n_embd)))
        add(f"{dst}.ffn_up.bias", (n_inner,), copy(f"{src}.mlp.fc_in.bias", (n_inner,)))
        add(f"{dst}.ffn_down.weight", (n_embd, n_inner), copy(f"{src}.mlp.fc_out.weight", (n_embd, n_inner)))
        add(f"{dst}.ffn_down.bias", (n_embd,), copy(f"{src}.mlp.fc_out.bias", (n_embd,)))
    add("output_norm.weight", (n_embd,), copy("transformer.ln_f.weight", (n_embd,)))
    add("output_norm.bias", (n_embd,), copy("transformer.ln_f.bias", (n_embd,)))
    add("output.weight", (n_rows, n_embd), copy("lm_head.weight", (n_rows, n_embd)))
    if "lm_head.bias" in ckpt.tensor_names():
        add("output.bias", (n_rows,), copy("lm_head.bias", (n_rows,)))
    else:
        add("output.bias", (n_rows,), zeros(n_rows))
    return plan


def _fused_qkv(ckpt: Checkpoint, name: str, n_embd: int, n_head: int, rotary_dim: int, mp_num: int):
    def produce() -> np.ndarray:
        q, k, v = split_qkv(ckpt.load(name), n_embd, mp_num)
        q, k = (interleaved_to_neox(w, n_head, rotary_dim) for w in (q, k))
        return np.concatenate([q, k, v], axis=0)  # llama.cpp's fused layout is Q, K, V

    return produce


