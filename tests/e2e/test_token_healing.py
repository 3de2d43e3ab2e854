"""Token healing through the real server, judged on a real model made elsewhere (SmolLM2-135M-Instruct,
Q4_1): a cursor after a space, on an indented blank line or inside a word gets the suggestion the model
gives at a natural token boundary, with nothing typed twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from support.lsp import inline, open_doc, start, wait_for_stats

# (text before the cursor, what the suggestion must start with). Without healing SmolLM2 answers
# `10 + a, b`, `10 * len(f)`, `1000000000…`, `2`, a blank line, ` = 10` (see test_without_healing…).
CURSORS = [
    ("def add(a, b):\n    return ", "a + b"),
    ("def read(path):\n    with open(path) as f:\n        return ", "f.read()"),
    ("try:\n    x = int(s)\nexcept ", "ValueError"),
    ("def square(x):\n    return x * ", "x"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ", "self.y = y"),
    ("def greet(name):\n    pri", "nt("),
]


def position_at_end(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


async def suggestion(client: LanguageClient, tmp_path: Path, name: str, before: str) -> str:
    uri = (tmp_path / name).as_uri()
    open_doc(client, uri, before + "\n")
    items = await inline(client, uri, *position_at_end(before))
    return str(items[0].insert_text) if items else ""


async def test_cursors_at_odd_token_boundaries_get_the_natural_suggestion(client: LanguageClient, tmp_path: Path,
                                                                          smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=24)
    got = [await suggestion(client, tmp_path, f"c{i}.py", before) for i, (before, _) in enumerate(CURSORS)]
    assert [g[:len(want)] for g, (_, want) in zip(got, CURSORS)] == [want for _, want in CURSORS], got
    assert not any(g.startswith((" ", "\n")) for g in got), got  # never `return  a` or a blank line first
    stats = await wait_for_stats(client, lambda s: s.source == "model", what="a model suggestion's stats")
    assert stats.generated_tokens > 0


async def test_without_healing_the_same_cursors_go_wrong(client: LanguageClient, tmp_path: Path, smollm2: Path):
    """What the setting turns off: the test above fails this way without healing."""
    await start(client, smollm2, tmp_path, maxTokens=24, tokenHealing=False)
    got = [await suggestion(client, tmp_path, f"c{i}.py", before) for i, (before, _) in enumerate(CURSORS)]
    right = sum(g.startswith(want) for g, (_, want) in zip(got, CURSORS))
    assert right <= 2, got


@pytest.mark.parametrize("before", ["def add(a, b):\n    return ", "def square(x):\n    return x * ",
                                    "def add(a, b):\n    ret"])
async def test_a_memorizing_codegen_model_completes_after_a_space_and_inside_a_word(client: LanguageClient, tmp_path: Path,
                                                                           memorizing_codegen1, before: str):
    """CodeGen's own tokenizer layout (whitespace runs are tokens): the memorized continuation after a
    trailing space and inside a word, nothing typed twice."""
    from support.snippets import SNIPPETS

    snippet = next(s for s in SNIPPETS if s.startswith(before))
    await start(client, memorizing_codegen1.gguf_path, tmp_path)
    got = await suggestion(client, tmp_path, "m.py", before)
    assert got and snippet[len(before):].startswith(got), (got, snippet[len(before):])
