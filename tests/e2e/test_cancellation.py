"""$/cancelRequest really stops decoding, and a newer request for a document supersedes the older."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from support.files import requests
from support.lsp import open_doc, start, wait_for_stats


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))


async def test_cancel_answers_fast_and_stops_decoding(client: LanguageClient, slow_model, tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, maxTokens=1000, contextTokens=2048, repetitionFilter=False)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def main():\n    ")
    request = asyncio.ensure_future(client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4),
                                                 msg_id="long-1"))
    await asyncio.sleep(0.5)  # well into decoding
    assert not request.done()
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(request, 5)
    answered_in = time.perf_counter() - cancelled_at
    print(f"cancelled request answered {answered_in * 1000:.1f} ms after the cancel")
    assert answered_in < 0.2
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "request", timeout=5,
                                 what="the cancelled request's stats")
    assert (stats.finish, stats.reason, stats.max_tokens) == ("cancelled", "request cancelled", 1000), stats
    assert 0 < stats.generated_tokens < 1000  # decoding stopped early, not after the full budget


async def test_newer_request_supersedes_older(client: LanguageClient, slow_model, tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, maxTokens=1000, contextTokens=2048, repetitionFilter=False)
    uri = (tmp_path / "b.py").as_uri()
    open_doc(client, uri, "def main():\n    ")
    older = asyncio.ensure_future(client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4)))
    await asyncio.sleep(0.3)
    client.protocol.notify(types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                           types.DidChangeConfigurationParams(settings={"codegenLsp": {"maxTokens": 4}}))
    newer = asyncio.ensure_future(client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4)))
    started = time.perf_counter()
    old_result = await asyncio.wait_for(older, 5)
    assert time.perf_counter() - started < 1.0
    assert list(old_result.items) == []
    await asyncio.wait_for(newer, 30)
    older_stats, newer_stats = requests(client, uri)
    assert (older_stats.finish, older_stats.reason) == ("cancelled", "superseded by a newer request"), older_stats
    assert older_stats.generated_tokens < older_stats.max_tokens == 1000, older_stats
    assert newer_stats.max_tokens == 4 and newer_stats.finish != "cancelled", newer_stats
