"""KV reuse after an edit: typing into the middle of an infill prompt evaluates a few tokens, not the suffix.

The exactness checks use a one-layer model: there a cached cell's keys/values depend only on its token
and position, so moving the suffix cells is exact and greedy results must equal an engine that
re-evaluates everything after the common prefix. Deeper models get an approximation (measured in
docs/ARCHITECTURE.md, "KV reuse"), so for them only the token counts are asserted.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from codegen_lsp.context.prompt import build_segments
from codegen_lsp.engine import kv_reuse, llama_runner
from codegen_lsp.engine.jobs import EngineConfig, GenerationJob, GenerationResult
from codegen_lsp.engine.kv_reuse import ReusePlan, plan_reuse
from codegen_lsp.engine.llama_runner import LlamaRunner
from codegen_lsp.gguf.meta import PromptFormat

INFILL = PromptFormat.CODEGEN2_INFILL
TYPED = "total = compute(alpha, beta)"


def _buffer() -> tuple[str, str]:
    lines = [f"def handler_{i}(request, value={i}):\n    return request.get('key_{i}', value) * {i % 7}\n"
             for i in range(26)]
    return "".join(lines[:14]) + "    ", "\n" + "".join(lines[14:])


@pytest.fixture(scope="module")
def one_layer_codegen2():
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model

    # Random but peaky (init_std 0.1): quick to build, and greedy picks are not near-ties.
    return build_test_model(TinyModelSpec(family="codegen2", n_layer=1, init_std=0.1, seed=12))


def _engine(model, chunk_reuse: bool = True) -> LlamaRunner:
    engine = LlamaRunner()  # in this process: the unit under test is the runner, not the engine process
    engine.load(EngineConfig(Path(model.gguf_path), n_ctx=1024, n_threads=1))
    assert engine._chunk_reuse  # the context was recreated with two sequences
    engine._chunk_reuse = chunk_reuse
    return engine


def _ask(engine: LlamaRunner, prefix: str, suffix: str, fmt=INFILL, cancel=None, max_tokens=8,
         heal: bool = False) -> GenerationResult:
    """Without token healing by default: these tests compare the prompt's own evaluation (healing
    evaluates a first token under its mask before the logits are read)."""
    segments = build_segments(fmt, prefix, suffix if fmt is INFILL else "", engine.info.token_ids)
    job = GenerationJob(segments, max_tokens=max_tokens, temperature=0.0, heal=heal)
    if cancel is not None:
        job.cancel = cancel
    return engine.generate(job)


def _prompt_logits(engine: LlamaRunner, prefix: str, suffix: str):
    """The logits at the prompt's last token (max_tokens=1: the sampled token is not evaluated).
    A random model's greedy text hardly depends on the prompt; its logits do."""
    import llama_cpp
    import numpy as np

    result = _ask(engine, prefix, suffix, max_tokens=1)
    llm = engine._llm
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),)).copy()
    return result, logits


def _same(got, want) -> bool:
    return got.argmax() == want.argmax() and float(abs(got - want).max()) < 1e-3 * float(abs(want).max())


@pytest.fixture(scope="module")
def engines(one_layer_codegen2):
    reusing, exact = _engine(one_layer_codegen2), _engine(one_layer_codegen2, chunk_reuse=False)
    yield reusing, exact
    reusing.free()
    exact.free()


def test_plan_finds_the_moved_chunk():
    cached = list(range(100)) + [900, 901]  # old prompt then a generated tail
    typed = list(range(40)) + [500, 501] + list(range(40, 100))  # two tokens inserted at 40
    assert plan_reuse(cached, typed, 40) == ReusePlan(40, 42, 40, 59)  # the last token is never reused
    deleted = list(range(30)) + list(range(40, 100))
    assert plan_reuse(cached, deleted, 30) == ReusePlan(30, 30, 40, 59)
    assert plan_reuse(cached, list(range(40)) + [7] * 60, 40) is None  # nothing long enough in common
    assert plan_reuse(cached, list(range(50)), 40) is None  # too little after the prefix to bother


def test_typing_into_an_infill_prompt_evaluates_a_few_tokens_and_stays_exact(engines, monkeypatch):
    monkeypatch.setattr(llama_runner, "MAX_DRIFT_TOKENS", 10 ** 6)
    reusing, exact = engines
    prefix, suffix = _buffer()
    first = _ask(reusing, prefix, suffix)
    assert first.evaluated_prompt_tokens == first.prompt_tokens > 300
    for k in range(1, len(TYPED) + 1):
        (got, got_logits), (want, want_logits) = (_prompt_logits(e, prefix + TYPED[:k], suffix)
                                                  for e in (reusing, exact))
        assert got.evaluated_prompt_tokens <= 8, k
        assert want.evaluated_prompt_tokens > 300  # prefix reuse alone pays for the whole suffix
        assert got.prompt_tokens == want.prompt_tokens and _same(got_logits, want_logits), k
        assert _ask(reusing, prefix + TYPED[:k], suffix).text == _ask(exact, prefix + TYPED[:k], suffix).text
    for k in range(len(TYPED) - 1, len(TYPED) - 6, -1):  # backspace: pure deletions
        (got, got_logits), (want, want_logits) = (_prompt_logits(e, prefix + TYPED[:k], suffix)
                                                  for e in (reusing, exact))
        assert got.evaluated_prompt_tokens <= 8 and _same(got_logits, want_logits), k
    # Editing the suffix instead (the cursor moved below): a deletion right after the prefix.
    (got, got_logits), (want, want_logits) = (_prompt_logits(e, prefix, suffix[40:]) for e in (reusing, exact))
    assert got.evaluated_prompt_tokens <= 8 and _same(got_logits, want_logits)


def test_typing_with_token_healing_still_evaluates_a_few_tokens(engines, monkeypatch):
    """Healing takes the prefix's last token off and decodes tokens of its own: the cache still serves
    the next keystroke, and healing gives the same text as an engine that evaluates everything."""
    monkeypatch.setattr(llama_runner, "MAX_DRIFT_TOKENS", 10 ** 6)
    reusing, exact = engines
    prefix, suffix = _buffer()
    assert _ask(reusing, prefix, suffix, heal=True).healed  # the prefix ends in indentation
    counts = []
    for k in range(1, len(TYPED) + 1):
        got = _ask(reusing, prefix + TYPED[:k], suffix, heal=True)
        counts.append(got.evaluated_prompt_tokens)
        assert got.text == _ask(exact, prefix + TYPED[:k], suffix, heal=True).text, k
    assert sorted(counts)[len(counts) // 2] <= 8, counts


def test_drifted_cells_are_evaluated_again(engines, monkeypatch):
    monkeypatch.setattr(llama_runner, "MAX_DRIFT_TOKENS", 12)
    reusing, exact = engines
    prefix, suffix = _buffer()
    prefix = prefix.replace("handler_3(", "handler_three(")  # the cache holds another text: a full evaluation
    assert _ask(reusing, prefix, suffix).evaluated_prompt_tokens > 300
    counts = [_ask(reusing, prefix + TYPED[:k], suffix).evaluated_prompt_tokens for k in range(1, 20)]
    assert sorted(counts)[len(counts) // 2] <= 8  # median
    assert max(counts) > 150  # at least one refresh of the moved suffix
    (_, got_logits), (_, want_logits) = (_prompt_logits(e, prefix + TYPED, suffix) for e in (reusing, exact))
    assert _same(got_logits, want_logits)


class _CancelOnCall(threading.Event):
    """is_set() turns true on its n-th call: a cancel that lands at a chosen check."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.calls, self.n = 0, n

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n or super().is_set()


def test_cancel_during_the_moved_path_leaves_a_usable_cache(engines, monkeypatch):
    monkeypatch.setattr(llama_runner, "MAX_DRIFT_TOKENS", 10 ** 6)
    reusing, exact = engines
    prefix, suffix = _buffer()
    _ask(reusing, prefix, suffix)
    pasted = "".join(f"    v{i} = fn_{i}(x, y, z)\n" for i in range(20))  # > one 64-token chunk
    # Call 1 is the check on entry, call 2 the check before the first chunk of the pasted tokens.
    cancelled = _ask(reusing, prefix + pasted, suffix, cancel=_CancelOnCall(2))
    assert cancelled.cancelled and cancelled.evaluated_prompt_tokens == 0
    cancelled = _ask(reusing, prefix + pasted, suffix, cancel=_CancelOnCall(3))
    assert cancelled.cancelled and cancelled.evaluated_prompt_tokens == llama_runner.PROMPT_CHUNK_TOKENS
    (got, got_logits), (want, want_logits) = (_prompt_logits(e, prefix + pasted, suffix) for e in (reusing, exact))
    assert got.evaluated_prompt_tokens < want.evaluated_prompt_tokens and _same(got_logits, want_logits)


def test_a_llama_cpp_error_falls_back_to_prefix_reuse(one_layer_codegen2, monkeypatch):
    import llama_cpp

    engine, exact = _engine(one_layer_codegen2), _engine(one_layer_codegen2, chunk_reuse=False)
    try:
        prefix, suffix = _buffer()
        _ask(engine, prefix, suffix), _ask(exact, prefix, suffix)
        monkeypatch.setattr(llama_cpp, "llama_decode", lambda ctx, batch: -1)  # only kv_reuse calls it this way
        (got, got_logits), (want, want_logits) = (_prompt_logits(e, prefix + "x", suffix) for e in (engine, exact))
        assert _same(got_logits, want_logits)
        assert got.evaluated_prompt_tokens == want.evaluated_prompt_tokens > 300
        assert not engine._chunk_reuse
    finally:
        engine.free()
        exact.free()


def test_left_to_right_keeps_prefix_reuse(engines):
    reusing, exact = engines
    prefix, _ = _buffer()
    _ask(reusing, prefix, "", PromptFormat.LEFT_TO_RIGHT)
    for k in range(1, 12):
        got = _ask(reusing, prefix + TYPED[:k], "", PromptFormat.LEFT_TO_RIGHT)
        want = _ask(exact, prefix + TYPED[:k], "", PromptFormat.LEFT_TO_RIGHT)
        assert got.evaluated_prompt_tokens <= 2 and got.text == want.text, k
        assert reusing._drift == 0  # nothing was moved


def test_deeper_model_also_evaluates_few_tokens(tiny_codegen2):
    engine = _engine(tiny_codegen2)
    try:
        prefix, suffix = _buffer()
        _ask(engine, prefix, suffix)
        counts = [_ask(engine, prefix + TYPED[:k], suffix).evaluated_prompt_tokens for k in range(1, 16)]
        assert sorted(counts)[len(counts) // 2] <= 32
    finally:
        engine.free()


def test_kv_reuse_constants_are_sane():
    assert kv_reuse.MIN_REUSE_TOKENS > kv_reuse.ANCHOR
