"""Several suggestions when one is asked for explicitly (an Invoked inline completion), decoded together
from one prompt evaluation; judged on SmolLM2-135M (a real model made elsewhere)."""

from __future__ import annotations

from pathlib import Path

from pytest_lsp import LanguageClient

from support.lsp import change_doc, inline, open_doc, start, wait_for_shown, wait_for_stats

BEFORE = "def add(a, b):\n    return "


async def ask(client: LanguageClient, uri: str, invoked: bool) -> list[str]:
    items = await inline(client, uri, 1, len("    return "), invoked=invoked)
    return [str(i.insert_text) for i in items]


async def test_invoked_gets_distinct_candidates_and_automatic_one(client: LanguageClient, tmp_path: Path,
                                                                   smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=16, speculativeSuggestions=False)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, BEFORE + "\n")
    several = await ask(client, uri, invoked=True)
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.version == 1 and s.source == "model")
    assert 2 <= len(several) <= 3 and len(set(several)) == len(several), several
    assert several[0].startswith("a + b"), several  # the first is the greedy suggestion
    assert all(s.strip() and not s.startswith(" ") for s in several), several  # each healed, cut and checked
    assert stats.prompt_tokens > 0 and stats.generated_tokens > len(several), stats
    change_doc(client, uri, 2, (2, 0), (2, 0), "\n")  # a new version below: no cached answer
    one = await ask(client, uri, invoked=False)
    assert one == several[:1], (one, several)


async def test_candidates_one_gives_one(client: LanguageClient, tmp_path: Path, smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=16, candidates=1)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, BEFORE + "\n")
    assert len(await ask(client, uri, invoked=True)) == 1


async def test_candidates_out_of_range_is_named(client: LanguageClient, tmp_path: Path, tiny_codegen1):
    await start(client, tiny_codegen1.gguf_path, tmp_path, candidates=9)
    shown = await wait_for_shown(client, "candidates")
    assert "'candidates'" in shown and "9" in shown, shown


READ_LINES = 'import os\n\n\ndef read_lines(path, limit=10):\n    """Read at most limit lines of the file at path."""\n    '


async def test_alternatives_end_with_their_first_line(client: LanguageClient, tmp_path: Path, smollm2: Path):
    """In a function body the greedy suggestion runs on for several lines; the alternatives end with
    their first line of code, so they cost a fraction of it (engine/candidates.py)."""
    await start(client, smollm2, tmp_path, maxTokens=32, speculativeSuggestions=False)
    uri = (tmp_path / "read.py").as_uri()
    open_doc(client, uri, READ_LINES)
    items = await inline(client, uri, 5, 4, invoked=True)
    texts = [str(i.insert_text) for i in items]
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.source == "model")
    assert len(texts) >= 2 and texts[0].strip().count("\n") >= 1, texts  # the greedy one is multi-line
    assert all(t.strip() and "\n" not in t.strip() for t in texts[1:]), texts
    assert stats.generated_tokens < 3 * 32, stats  # the alternatives stopped early
