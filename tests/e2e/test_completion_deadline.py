"""A completion the model cannot finish within `requestTimeoutMs` answers empty, with the reason in its stats,
and the model keeps serving; a bad value is refused by name. Real server, real (slow, random) model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from support.files import requests
from support.lsp import open_doc, start, wait_for_shown, wait_for_stats

SLACK_S = 8.0  # generous: a loaded machine; 1000 tokens of this model take far longer than the deadline + this


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


async def test_a_completion_past_its_deadline_answers_empty_and_the_model_serves_on(
        client: LanguageClient, slow_model, tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, maxTokens=1000, contextTokens=2048, requestTimeoutMs=300,
                repetitionFilter=False, speculativeSuggestions=False, warmAfterMs=0, threads=1)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def main():\n    ")
    started = time.perf_counter()
    result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, 1, 4)),
                                    0.3 + 1 + SLACK_S)
    answered_in = time.perf_counter() - started
    print(f"answered {answered_in * 1000:.0f} ms after the request (deadline 300 ms)")
    assert list(result.items if hasattr(result, "items") else result or []) == []
    (timed_out,) = requests(client, uri)
    assert (timed_out.reason, timed_out.finish) == ("the model did not answer within 300 ms", "error"), timed_out
    assert answered_in < 0.3 + 1 + SLACK_S

    # The engine is not left decoding the 1000 tokens: a short request with room to finish is answered.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"maxTokens": 4, "requestTimeoutMs": 60000}}))
    await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, 1, 4)), 60)
    after = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "request" and s.max_tokens == 4,
                                 timeout=10, what="the next request's stats")
    assert after.source == "model" and after.finish not in ("error", "cancelled") and after.generated_tokens > 0, after


async def test_a_deadline_below_the_minimum_is_refused_by_name(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await start(client, tiny_codegen1.gguf_path, tmp_path, requestTimeoutMs=0)
    shown = await wait_for_shown(client, "requestTimeoutMs")
    assert "greater than or equal to 100" in shown and "(got 0)" in shown, shown
