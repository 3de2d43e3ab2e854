"""Degenerate output never reaches the editor, judged on real models that loop: SmolLM2-135M-Instruct
(made elsewhere) and the embedded default model. Decoding stops where the loop starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from codegen_lsp.postprocess.repetition import find_repetition, is_degenerate
from support.default_model import LOOPS
from support.lsp import inline, open_doc, start, wait_for_stats

MAX_TOKENS = 32
# Text before the cursor, per model. Unfiltered, each of these loops to the token limit (see
# test_without_the_filter_these_cursors_loop).
LOOPING = {
    "smollm2": ["MAX = 1",  # 1000000000…
                "s = '"],  # ^(.*?)(.*?)(.*?)…
    "embedded": LOOPS,  # support/default_model.py
}


def model_path(name: str, smollm2: Path) -> Path | None:
    return smollm2 if name == "smollm2" else None  # None: the embedded default model


def position_at_end(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


async def ask(client: LanguageClient, tmp_path: Path, name: str, before: str) -> tuple[str, object]:
    uri = (tmp_path / name).as_uri()
    open_doc(client, uri, before + "\n")
    items = await inline(client, uri, *position_at_end(before))
    stats = await wait_for_stats(client, lambda s: s.kind == "request" and s.uri == uri and s.source == "model",
                                 what="the request's stats")
    return (str(items[0].insert_text) if items else ""), stats


@pytest.mark.parametrize("model", sorted(LOOPING))
async def test_a_looping_model_stops_early_and_nothing_degenerate_is_shown(client: LanguageClient, tmp_path: Path,
                                                                          smollm2: Path, model: str):
    await start(client, model_path(model, smollm2), tmp_path, maxTokens=MAX_TOKENS)
    for number, before in enumerate(LOOPING[model]):
        text, stats = await ask(client, tmp_path, f"loop{number}.py", before)
        assert stats.finish == "loop" and stats.generated_tokens < MAX_TOKENS, stats
        assert not is_degenerate(before + text) and find_repetition(text, before) is None, text
        assert (stats.reason == "ok") == bool(text), stats  # an empty answer says why


@pytest.mark.parametrize("model", sorted(LOOPING))
async def test_without_the_filter_these_cursors_loop(client: LanguageClient, tmp_path: Path, smollm2: Path,
                                                     model: str):
    """What `repetitionFilter` turns off: the test above fails this way without the filter."""
    await start(client, model_path(model, smollm2), tmp_path, maxTokens=MAX_TOKENS, repetitionFilter=False)
    for number, before in enumerate(LOOPING[model]):
        text, stats = await ask(client, tmp_path, f"loop{number}.py", before)
        assert stats.finish == "length" and stats.generated_tokens == MAX_TOKENS, stats
        assert find_repetition(text, before) is not None or stats.reason != "ok", (text, stats)
