"""The engine's tokenization helpers on real vocabularies (SmolLM2, the default model): where each token
starts in the text (what prompt fitting estimates from), and the remembered tokenizations."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen_lsp.engine.jobs import EngineConfig
from codegen_lsp.engine.llama_runner import LlamaRunner
from support.default_model import MODEL as DEFAULT_MODEL

TEXTS = ["def add(a, b):\n    return a + b\n", "naïve = 'café' + \"日本語\"  # ünïcode\nx = 1\n"]


@pytest.fixture(scope="module")
def runner(smollm2: Path) -> LlamaRunner:
    made = LlamaRunner()
    made.load(EngineConfig(smollm2, n_ctx=256))
    yield made
    made.free()


@pytest.mark.parametrize("text", TEXTS)
def test_token_starts_point_at_each_tokens_text(runner: LlamaRunner, text: str):
    ids = runner._tokenize(text)
    starts = runner._token_starts(text)
    pieces = runner._healer.pieces
    assert len(starts) == len(ids) and starts == sorted(starts) and starts[0] == 0
    data, at = text.encode(), 0
    for token, start in zip(ids, starts):
        piece = pieces[token]
        assert data[at:at + len(piece)] == piece  # the pieces spell the text
        # The token's first byte lies in the character at `start` (a piece may begin inside one).
        assert len(text[:start].encode()) <= at < len(text[:start + 1].encode()), (token, start, at)
        at += len(piece)
    # Where the text is plain ASCII, each start is the exact offset of the token's text.
    if text.isascii():
        assert [text[s:s + len(pieces[t])] for t, s in zip(ids, starts)] == [pieces[t].decode() for t in ids]


def test_remembered_tokenizations_are_per_model_and_safe_to_change(runner: LlamaRunner, smollm2: Path):
    text = TEXTS[0]
    first = runner._tokenize(text)
    first.append(-1)  # a caller changing its list does not change what is remembered
    assert runner._tokenize(text) == first[:-1]
    other = LlamaRunner()
    other.load(EngineConfig(DEFAULT_MODEL, n_ctx=256))
    try:
        expected = other._tokenize(text)
        # The same runner after loading another model: the other vocabulary's ids, not the remembered ones.
        runner.load(EngineConfig(DEFAULT_MODEL, n_ctx=256))
        assert runner._tokenize(text) == expected != first[:-1]
    finally:
        other.free()
        runner.load(EngineConfig(smollm2, n_ctx=256))
