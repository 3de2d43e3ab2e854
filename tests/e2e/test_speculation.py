"""Latency features through the real server: single-line suggestions stop decoding at their newline, and
the suggestion after an accepted one is computed ahead and answered without the model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_lsp import LanguageClient

from support.files import generated_counts, logs, wait_until
from support.lsp import change_doc, inline, open_doc, start

# tests/support/snippets.py memorizes "...\n    with open(path) as fh:\n        return fh.read()\n".
READ_CONFIG = "import os\n\n\ndef read_config(path):\n    with open("


async def test_single_line_suggestion_stops_decoding_at_the_newline(client: LanguageClient, memorizing_codegen1,
                                                                    tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=64, speculativeSuggestions=False)
    uri = (tmp_path / "read.py").as_uri()
    open_doc(client, uri, READ_CONFIG)
    items = await inline(client, uri, 4, 14)
    assert [i.insert_text for i in items] == ["path) as fh:"]
    # The memorized text goes on ("return fh.read()" and more); decoding stopped at the line's end.
    assert generated_counts(client) and generated_counts(client)[-1] <= 8, logs(client)


async def test_accepting_a_suggestion_is_answered_from_the_speculative_one(client: LanguageClient,
                                                                           memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32)
    uri = (tmp_path / "read.py").as_uri()
    open_doc(client, uri, READ_CONFIG)
    first = await inline(client, uri, 4, 14)
    assert [i.insert_text for i in first] == ["path) as fh:"]
    await wait_until(lambda: any(m.startswith("speculative next suggestion") for m in logs(client)), 10,
                     "the speculative next suggestion")
    calls = len(generated_counts(client))
    change_doc(client, uri, 2, (4, 14), (4, 14), "path) as fh:")  # the user accepts it
    after = await inline(client, uri, 4, 26)
    assert [i.insert_text for i in after] == ["\n        return fh.read()"]
    assert any("from the recent context cache, no model call" in m for m in logs(client)), logs(client)
    assert len(generated_counts(client)) == calls  # the model was not asked again


async def test_a_request_cancels_the_speculation_and_is_answered_itself(client: LanguageClient, memorizing_codegen1,
                                                                       tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    assert [i.insert_text for i in await inline(client, uri, 1, 4)] == ["return a + b"]
    change_doc(client, uri, 2, (1, 4), (1, 4), "x")  # not the suggestion: the speculation is worthless
    await inline(client, uri, 1, 5)
    assert len(generated_counts(client)) == 2, logs(client)  # the model answered the new context


async def test_an_edit_that_settles_is_warmed_and_then_answered_from_the_cache(client: LanguageClient,
                                                                             memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32, warmAfterMs=200,
                speculativeSuggestions=False)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n")
    change_doc(client, uri, 2, (1, 0), (1, 0), "    ")  # then the user pauses, no request yet
    await wait_until(lambda: any(m.startswith("warmed suggestion for") for m in logs(client)), 10, "the warm-up")
    assert generated_counts(client) == []
    items = await inline(client, uri, 1, 4)
    assert [i.insert_text for i in items] == ["return a + b"]
    assert any("from the recent context cache, no model call" in m for m in logs(client)), logs(client)


async def test_typing_on_cancels_the_pending_warm_up(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32, warmAfterMs=300)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n")
    for version, column in enumerate(range(4), start=2):  # a key every 100 ms: never settles until the end
        change_doc(client, uri, version, (1, column), (1, column), " ")
        await asyncio.sleep(0.1)
    await wait_until(lambda: any(m.startswith("warmed suggestion for") for m in logs(client)), 10, "the warm-up")
    await asyncio.sleep(0.5)
    assert sum(m.startswith("warmed suggestion for") for m in logs(client)) == 1, logs(client)
