"""Clipping a job's text (context/prompt.clip_segments) on real tokenizers: for a 2 MB document the clipped
segments give the engine the very prompt the whole document gives it (the fitted text, its tokens and the
token-healing plan), in the model's own prompt layout and in an infill layout with a suffix."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from codegen_lsp.context.prompt import (MAX_CHARS_PER_TOKEN, Text, Token, build_segments, clip_segments, expand,
                                        fit_segments)
from codegen_lsp.engine.jobs import EngineConfig
from codegen_lsp.engine.llama_runner import LlamaRunner

N_CTX = 2048
MAX_TOKENS = 64


def two_megabytes(seed: int) -> str:
    """Python with indentation, long lines, \\r\\n in places and a form feed now and then."""
    rng = random.Random(seed)
    parts, total, n = [], 0, 0
    while total < 2 * 2**20:
        n += 1
        brk = "\r\n" if n % 11 == 0 else "\n"
        words = " ".join(rng.choice(["sum", "the", "items", "of"]) for _ in range(rng.randint(1, 40)))
        block = brk.join([f"def step_{n}(items, limit={rng.randint(1, 99)}):",
                          f"    \"\"\"Step {n}: {words}.\"\"\"",
                          "    total = 0",
                          "    for item in items[:limit]:",
                          f"        total += item * {rng.randint(2, 9)}",
                          "    return total", "", ""]) + brk
        if n % 97 == 0:
            block += "\x0c\n"
        parts.append(block)
        total += len(block)
    return "".join(parts)


def prompt(runner: LlamaRunner, segments) -> tuple[list, list[int], object]:
    """What LlamaRunner.generate builds from `segments`: the fitted segments, their tokens, the heal plan."""
    llm = runner._llm
    n_ctx = min(llm.n_ctx(), len(llm.input_ids))
    max_tokens = max(1, min(MAX_TOKENS, n_ctx // 2))
    fitted = expand(fit_segments(segments, n_ctx - max_tokens - 1, lambda t: len(runner._tokenize(t)), 0.75,
                                 runner._token_starts))
    tokens, heal = [], None
    for segment in fitted:
        if isinstance(segment, Token):
            tokens.append(segment.token_id)
            continue
        ids = runner._tokenize(segment.text)
        if segment.role == "prefix":
            heal = runner._healer.plan(ids, segment.text)
            ids = heal.tokens
        tokens += ids
    return fitted, tokens, heal


@pytest.fixture(scope="module", params=["smollm2", "tiny_codegen1"])
def runner(request) -> LlamaRunner:
    model = request.getfixturevalue(request.param)
    path = model if isinstance(model, Path) else model.gguf_path
    made = LlamaRunner()
    made.load(EngineConfig(path, n_ctx=N_CTX, n_threads=1))
    yield made
    made.free()


@pytest.mark.parametrize("where", [0.5, 0.999, 0.0005])
def test_a_clipped_two_megabyte_document_gives_the_same_prompt(runner: LlamaRunner, where: float):
    text = two_megabytes(seed=int(where * 1000))
    cursor = int(len(text) * where)
    cursor = text.rfind("\n", 0, cursor) + 1 + 7  # inside a line: token healing has a word to heal
    prefix, suffix = text[:cursor], text[cursor:]
    info = runner.info
    n_ctx = max(64, min(N_CTX, info.context_length))  # what completion.py clips for
    layouts = [build_segments(info.prompt_format, prefix, suffix, info.token_ids),
               [Token(1), Text(prefix, "prefix"), Token(2), Text(suffix, "suffix"), Token(3)]]
    for segments in layouts:
        clipped = clip_segments(segments, n_ctx)
        sent = sum(len(s.text) for s in clipped if isinstance(s, Text))
        assert sent <= 2 * (n_ctx * MAX_CHARS_PER_TOKEN + 31) < len(text) / 3  # what travels is bounded by n_ctx
        whole_fitted, whole_tokens, whole_heal = prompt(runner, segments)
        fitted, tokens, heal = prompt(runner, clipped)
        assert fitted == whole_fitted
        assert tokens == whole_tokens and heal == whole_heal
        assert len(tokens) > 100  # a real prompt was compared
