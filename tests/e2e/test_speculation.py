"""Latency features through the real server: single-line suggestions stop decoding at their newline, and
the suggestion after an accepted one is computed ahead and answered without the model. What the server
computed, and from where, comes from its `codegenLsp/stats` notifications."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_lsp import LanguageClient

from support.files import generated_counts, logs, requests, stats
from support.lsp import change_doc, inline, open_doc, start, wait_for_stats

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
    answer = requests(client, uri)[-1]
    assert answer.source == "model" and answer.finish == "stop" and answer.generated_tokens <= 8, answer


async def test_accepting_a_suggestion_is_answered_from_the_speculative_one(client: LanguageClient,
                                                                           memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32)
    uri = (tmp_path / "read.py").as_uri()
    open_doc(client, uri, READ_CONFIG)
    first = await inline(client, uri, 4, 14)
    assert [i.insert_text for i in first] == ["path) as fh:"]
    speculation = await wait_for_stats(client, lambda s: s.kind == "speculative", what="the speculative next suggestion")
    assert speculation.source == "model" and speculation.reason == "ok", speculation
    calls = len(generated_counts(client))
    change_doc(client, uri, 2, (4, 14), (4, 14), "path) as fh:")  # the user accepts it
    after = await inline(client, uri, 4, 26)
    assert [i.insert_text for i in after] == ["\n        return fh.read()"]
    answer = requests(client, uri)[-1]
    assert (answer.version, answer.source, answer.finish) == (2, "recent-context cache", None), answer
    assert len(generated_counts(client)) == calls  # the model was not asked again


# A comment takes any text, so the random-weight slow model's suggestion survives post-processing. Its
# speculative continuation evaluates ~40 prompt tokens on one thread (about half a second here) before it
# decodes: a request sent right after the answer finds it running. Left alone it ends at the line's end
# ("stop"), so only a real cancel gives "cancelled" (checked by disabling newest-wins in completion.py).
COMMENT = "# "
SPECULATION_BUDGET = 200


async def test_a_request_cancels_the_speculation_and_is_answered_itself(client: LanguageClient, slow_model,
                                                                       tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, maxTokens=SPECULATION_BUDGET, threads=1, warmAfterMs=0,
                repetitionFilter=False)
    uri = (tmp_path / "note.py").as_uri()
    open_doc(client, uri, COMMENT)
    first = await inline(client, uri, 0, 2)
    assert first, requests(client, uri)  # shown: so the server speculates on what follows it
    # At once, no edit in between (didChange cancels on its own): a request elsewhere in the same document.
    await inline(client, uri, 0, 0)
    speculation = await wait_for_stats(client, lambda s: s.kind == "speculative", what="the speculation's stats")
    second = requests(client, uri)[-1]
    assert second.version == 1 and second.source == "model" and second.finish != "cancelled", second
    print(f"speculation: {speculation}")
    # The request cancelled the speculation: the engine stopped it before its end, at its next check.
    assert speculation.source == "model" and speculation.finish == "cancelled", speculation
    assert speculation.reason == "superseded by a newer request", speculation
    assert speculation.generated_tokens < speculation.max_tokens == SPECULATION_BUDGET, speculation


async def test_an_edit_that_settles_is_warmed_and_then_answered_from_the_cache(client: LanguageClient,
                                                                             memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32, warmAfterMs=200,
                speculativeSuggestions=False)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n")
    change_doc(client, uri, 2, (1, 0), (1, 0), "    ")  # then the user pauses, no request yet
    warm = await wait_for_stats(client, lambda s: s.kind == "warm", what="the warm-up")
    assert (warm.version, warm.source, warm.reason) == (2, "model", "ok"), warm
    assert generated_counts(client) == []
    items = await inline(client, uri, 1, 4)
    assert [i.insert_text for i in items] == ["return a + b"]
    assert [(s.source, s.finish) for s in requests(client, uri)] == [("recent-context cache", None)], logs(client)


async def test_typing_on_cancels_the_pending_warm_up(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=32, warmAfterMs=300)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n")
    for version, column in enumerate(range(4), start=2):  # a key every 100 ms: never settles until the end
        change_doc(client, uri, version, (1, column), (1, column), " ")
        await asyncio.sleep(0.1)
    await wait_for_stats(client, lambda s: s.kind == "warm", what="the warm-up")
    await asyncio.sleep(0.5)
    warmed = [s for s in stats(client, uri, "warm") if s.model_call]
    assert [s.version for s in warmed] == [5], stats(client, uri, "warm")  # only after the last key
