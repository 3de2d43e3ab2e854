"""The first suggestion in a freshly opened file (issue 34), on the real model made elsewhere (SmolLM2-135M
Q4_1) through the real server: a cold cache answers from a short window (the text nearest the cursor)
while the full window is built in the background, and `codegenLsp/focus` warms the cursor's prompt before
anyone asks. Timings are the bench's (`bench first-suggestion`); these tests check what ran, from the stats.

The prompt at the cursor is ~2,000 tokens: more than 1 s (firstSuggestionMs) of evaluation on any CPU slower
than 2,000 prompt tokens/s, so the first answer is short; a short window is 256 to 512 tokens (a quarter of
the window) whatever the machine's speed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from support.files import requests, stats
from support.lsp import change_doc, inline, open_doc, start, wait_for_stats

CURSOR_LINE = 2000  # the first line of code from here on: a ~2,000-token prompt
SHORT_CAP = 2048 // 4
SETTINGS = dict(contextTokens=2048, firstSuggestionMs=1000, speculativeSuggestions=False, warmAfterMs=0,
                maxTokens=24, requestTimeoutMs=120000)
WARM_TIMEOUT_S = 180  # ~1,900 prompt tokens at ~230 tokens/s here; generous for a loaded machine


def cold_file(tmp_path: Path) -> tuple[str, str, int, int]:
    """A long real file with the cursor after line CURSOR_LINE's indentation, the rest of that line gone."""
    import argparse

    lines = Path(argparse.__file__).read_text().splitlines(keepends=True)
    at = next(i for i in range(CURSOR_LINE, len(lines)) if lines[i].strip() and not lines[i].lstrip().startswith("#"))
    line = lines[at]
    indent = len(line) - len(line.lstrip())
    lines[at] = line[:indent] + "\n"
    return (tmp_path / "argparse_copy.py").as_uri(), "".join(lines), at, indent


def focus(client: LanguageClient, uri: str, line: int, character: int) -> None:
    client.protocol.notify("codegenLsp/focus", {"textDocument": {"uri": uri},
                                                "position": {"line": line, "character": character}})


async def test_a_cold_file_answers_from_a_short_window_then_keystrokes_get_the_full_one(
        client: LanguageClient, smollm2: Path, tmp_path: Path):
    await start(client, smollm2, tmp_path, **SETTINGS)
    uri, text, line, character = cold_file(tmp_path)
    open_doc(client, uri, text)
    items = await asyncio.wait_for(inline(client, uri, line, character), 120)
    (first,) = requests(client, uri)
    assert first.window == "short", first
    assert first.source == "model" and first.finish not in ("cancelled", "error"), first
    assert 0 < first.prompt_tokens <= SHORT_CAP and first.evaluated_prompt_tokens <= SHORT_CAP, first
    assert items and items[0].insert_text.strip(), (items, first)

    # The full window is built in the background right after, and adopted once whole.
    full = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "warm" and s.reason == "warmed",
                                timeout=WARM_TIMEOUT_S, what="the full window built after the short answer")
    assert full.window == "full" and full.prompt_tokens > 3 * SHORT_CAP, full

    change_doc(client, uri, 2, (line, character), (line, character), "s")  # a keystroke
    await asyncio.wait_for(inline(client, uri, line, character + 1), 120)
    typed = requests(client, uri)[-1]
    assert typed.version == 2 and typed.window == "full", typed
    assert typed.prompt_tokens > 3 * SHORT_CAP and typed.evaluated_prompt_tokens <= 8, typed


async def test_focus_computes_the_suggestion_at_the_cursor_before_the_first_request(
        client: LanguageClient, smollm2: Path, tmp_path: Path):
    await start(client, smollm2, tmp_path, **SETTINGS)
    uri, text, line, character = cold_file(tmp_path)
    open_doc(client, uri, text)
    focus(client, uri, line, character)
    # The suggestion at the cursor is computed ahead (from the short window), then the full window is built.
    warmed = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "warm" and s.reason == "warmed",
                                  timeout=WARM_TIMEOUT_S, what="the full window built after the focus")
    assert warmed.window == "full" and warmed.prompt_tokens > 3 * SHORT_CAP, warmed
    ahead = [s for s in stats(client, uri, "warm") if s.source == "model" and s.generated_tokens > 0]
    assert ahead and ahead[0].window == "short", stats(client, uri)

    await asyncio.wait_for(inline(client, uri, line, character), 120)
    (first,) = requests(client, uri)
    assert first.source != "model" or first.evaluated_prompt_tokens <= 1, first  # computed ahead, or ready

    change_doc(client, uri, 2, (line, character), (line, character), "s")  # a keystroke: the full window
    await asyncio.wait_for(inline(client, uri, line, character + 1), 120)
    typed = requests(client, uri)[-1]
    assert typed.version == 2 and typed.window == "full" and typed.evaluated_prompt_tokens <= 8, typed


async def test_a_request_in_another_file_pre_empts_a_warm_up(client: LanguageClient, smollm2: Path, tmp_path: Path):
    # No other files' context: the small file's prompt stays small, so its answer is the full window and
    # does not start a warm-up of its own (which would replace the big file's: the newest warm-up wins).
    await start(client, smollm2, tmp_path, **SETTINGS, crossFileTokens=0)
    uri, text, line, character = cold_file(tmp_path)
    open_doc(client, uri, text)
    other = (tmp_path / "small.py").as_uri()
    open_doc(client, other, "def add(a, b):\n    return ")
    focus(client, uri, line, character)  # after the opens: a didOpen warms the file it opens, replacing this
    await asyncio.sleep(1.5)  # the warm-up is under way
    await asyncio.wait_for(inline(client, other, 1, 11), 120)
    (answer,) = requests(client, other)
    assert answer.source == "model" and answer.finish not in ("cancelled", "error") and answer.window == "full", answer
    superseded = [s for s in stats(client, uri, "warm") if s.reason == "superseded by a newer request"]
    assert superseded and superseded[0].finish == "cancelled", stats(client)
    # ...and it goes on later from where it stopped, until the cursor's prompt is ready.
    await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "warm" and s.reason == "warmed",
                         timeout=WARM_TIMEOUT_S, what="the pre-empted warm-up, sent again")


async def test_a_bad_focus_is_refused_with_a_warning_and_the_server_serves_on(
        client: LanguageClient, smollm2: Path, tmp_path: Path):
    await start(client, smollm2, tmp_path, **SETTINGS)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "x = 1\n")
    client.protocol.notify("codegenLsp/focus", {"textDocument": {"uri": "file:///not/open.py"}})
    client.protocol.notify("codegenLsp/focus", {"textDocument": {"uri": uri}, "position": {"line": 99, "character": 0}})
    client.protocol.notify("codegenLsp/focus", {"nonsense": True})

    async def warnings() -> list[str]:
        while len(found := [m.message for m in client.log_messages if "ignored codegenLsp/focus" in m.message]) < 3:
            await asyncio.sleep(0.05)
        return found

    assert len(await asyncio.wait_for(warnings(), 30)) == 3
    await asyncio.wait_for(inline(client, uri, 1, 0), 120)
    (answer,) = requests(client, uri)
    assert answer.source == "model" and answer.finish not in ("cancelled", "error"), answer
    assert all(m.type == types.MessageType.Warning for m in client.log_messages if "codegenLsp/focus" in m.message)
