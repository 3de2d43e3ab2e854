"""The converted GGUF computes what transformers computes: logits, greedy continuations, q8_0 top-1."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model, pack_qkv  # noqa: E402

from support import STDLIB_DIR  # noqa: E402

# head_dim 64 and 80, rotary_dim < head_dim, mp_num 4 and 8, 2–3 layers, both tokenizer families.
CONFIGS = {
    "hd64-rot16-mp4-l2": TinyModelSpec(n_embd=256, n_head=4, rotary_dim=16, n_layer=2, seed=11, train_steps=150),
    "hd80-rot32-mp4-l3": TinyModelSpec(n_embd=320, n_head=4, rotary_dim=32, n_layer=3, seed=12, train_steps=150),
    "hd64-rot32-mp8-l2-cg2": TinyModelSpec(family="codegen2", n_embd=512, n_head=8, rotary_dim=32, mp_num=8,
                                           n_layer=2, seed=13, train_steps=150),
    # 6 heads in 4 blocks: heads straddle blocks (the default model's shapes: n_embd 192, 6 heads of 32)
    "hd32-rot16-mp4-h6-cg2": TinyModelSpec(family="codegen2", n_embd=192, n_head=6, rotary_dim=16, n_layer=2,
                                           seed=15, train_steps=150),
    "hd80-rot64-mp8-l3-cg2": TinyModelSpec(family="codegen2", n_embd=640, n_head=8, rotary_dim=64, mp_num=8,
                                           n_layer=3, seed=14, train_steps=100),
}


def reference_model(model):
    """transformers' CodeGen with the checkpoint's weights, qkv re-laid to its own mp_num = 4."""
    from safetensors.numpy import load_file
    from transformers import CodeGenForCausalLM

    hf = CodeGenForCausalLM.from_pretrained(model.hf_dir).eval()
    mp_num = model.spec.mp_num
    if mp_num != 4:
        saved = load_file(str(model.hf_dir / "model.safetensors"))
        with torch.no_grad():
            for name, param in hf.named_parameters():
                if name.endswith("qkv_proj.weight"):
                    w = saved[name]
                    e = w.shape[1]
                    blocks = w.reshape(mp_num, 3, e // mp_num, e)  # [Q_m | V_m | K_m] per block
                    q, v, k = (blocks[:, i].reshape(e, e) for i in range(3))
                    param.copy_(torch.from_numpy(pack_qkv(q, k, v, 4)))
    return hf


def source_token_ids(model, n: int) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model.hf_dir / "tokenizer.json"))
    text = (STDLIB_DIR / "argparse.py").read_text(encoding="utf-8")
    return tokenizer.encode(text[:40000]).ids[:n]


@pytest.fixture(scope="module", params=list(CONFIGS), ids=list(CONFIGS))
def case(request):
    model = build_test_model(CONFIGS[request.param])
    return model, reference_model(model)


def llama_logits(path, ids: list[int]) -> np.ndarray:
    llm = llama_cpp.Llama(str(path), n_ctx=1024, logits_all=True, verbose=False, n_threads=2)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def test_f32_logits_match_transformers_at_every_position(case):
    model, hf = case
    ids = source_token_ids(model, 64)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0].numpy()
    got = llama_logits(model.gguf_path, ids)
    assert got.shape == ref.shape
    worst = np.abs(got - ref).max(axis=-1)  # per position
    bound = 1e-3 * np.abs(ref).max()
    print(f"max |Δ| {worst.max():.2e}, bound {bound:.2e}, ratio {worst.max() / np.abs(ref).max():.2e}")
    assert (worst <= bound).all(), f"positions over bound: {np.nonzero(worst > bound)[0].tolist()}"


def test_greedy_continuation_is_identical(case):
    model, hf = case
    prompt = source_token_ids(model, 24)
    with torch.no_grad():
        expected = hf.generate(torch.tensor([prompt]), max_new_tokens=32, min_new_tokens=32, do_sample=False,
                               pad_token_id=0)[0][len(prompt):].tolist()
    llm = llama_cpp.Llama(str(model.gguf_path), n_ctx=256, verbose=False, n_threads=2)
    got: list[int] = []
    try:
        for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            got.append(token)
            if len(got) == 32:
                break
    finally:
        llm.close()
    assert got == expected


def test_q8_0_top1_agreement(case):
    model, hf = case
    ids = source_token_ids(model, 512)
    assert len(ids) == 512
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0].numpy()
    got = llama_logits(model.quantized("q8_0"), ids)
    agreement = float((got.argmax(-1) == ref.argmax(-1)).mean())
    print(f"q8_0 top-1 agreement {agreement:.4f}")
    assert agreement >= 0.98


def test_codegen25_llama_path_matches_transformers():
    from transformers import LlamaForCausalLM

    model = build_test_model(TinyModelSpec(family="codegen25", n_embd=128, n_head=4, seed=15))
    hf = LlamaForCausalLM.from_pretrained(model.hf_dir).eval()
    ids = list(range(3, 67))
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0].numpy()
    got = llama_logits(model.gguf_path, ids)
    assert np.abs(got - ref).max() <= 1e-3 * np.abs(ref).max()
