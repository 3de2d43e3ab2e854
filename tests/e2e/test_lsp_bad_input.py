"""Bad input over real LSP: every case gets an error response or an empty result with the reason (in its
`codegenLsp/stats`); the server never crashes or hangs, and never answers for a document version that is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from support.files import (RawServer, clip_gguf, generated_counts, model_answers, requests, shown, truncated_copy,
                           wait_until)
from support.lsp import SERVER, change_doc, inline, open_doc, record_status, start

SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"


def _inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))


async def boot(client: LanguageClient, model, root: Path, **options):
    """start() with one llama.cpp thread: on a busy 2-core machine two spinning threads crawl."""
    return await start(client, model, root, **{"threads": 1, **options})


async def _still_serves(client: LanguageClient, tmp_path: Path) -> None:
    """A valid request on a fresh document still goes through the model and answers."""
    uri = (tmp_path / "alive.py").as_uri()
    open_doc(client, uri, SOURCE)
    items = await asyncio.wait_for(inline(client, uri, 5, 8), 20)
    assert len(items) <= 1
    assert [s.version for s in model_answers(client, uri)] == [1], requests(client, uri)


# -- model files that cannot be used ---------------------------------------------------------------

def _missing(tmp_path: Path, model) -> Path:
    return tmp_path / "nowhere" / "missing.gguf"


def _truncated(tmp_path: Path, model) -> Path:
    return truncated_copy(model.gguf_path, tmp_path / "half.gguf")


def _not_gguf(tmp_path: Path, model) -> Path:
    path = tmp_path / "x.gguf"
    path.write_text("this is a text file, not a model\n" * 10)
    return path


def _clip(tmp_path: Path, model) -> Path:
    return clip_gguf(tmp_path / "vision.gguf")


@pytest.mark.parametrize("make, reason", [
    (_missing, "model file not found"),
    (_truncated, "truncated"),
    (_not_gguf, "not a GGUF file"),
    (_clip, "not a text-generation model (architecture 'clip'"),
], ids=["missing", "truncated", "not-gguf", "clip"])
async def test_unusable_model_file_is_reported_and_requests_answer_empty(client: LanguageClient, tiny_codegen1,
                                                                         tmp_path: Path, make, reason):
    path = make(tmp_path, tiny_codegen1)
    await boot(client, path, tmp_path)
    await wait_until(lambda: any(str(path) in m and reason in m for m in shown(client)), 5,
                     f"showMessage naming {path} and {reason!r}")
    assert not any(s["state"] == "ready" for s in record_status(client)), record_status(client)

    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    items = await asyncio.wait_for(inline(client, uri, 5, 8), 10)
    assert items == []
    [answer] = requests(client, uri)
    assert answer.source == "none" and answer.reason.startswith("no model available") and reason in answer.reason, \
        answer
    # The server is alive and still validates requests.
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(client.text_document_inline_completion_async(_inline_params(uri, 99, 0)), 10)


# -- documents the model's context cannot hold -----------------------------------------------------

async def test_tiny_context_window_trims_far_context(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, contextTokens=64, maxTokens=8)
    uri = (tmp_path / "long.py").as_uri()
    text = "".join(f"def function_{i}(a, b):\n    return a * {i} + b\n\n" for i in range(1000)) + "def last(x):\n    "
    assert text.count("\n") >= 3000
    open_doc(client, uri, text)
    started = time.monotonic()
    items = await asyncio.wait_for(inline(client, uri, 3000, 4), 20)
    assert time.monotonic() - started < 10
    assert len(items) <= 1
    prompt_tokens = model_answers(client, uri)[0].prompt_tokens
    # Fitted: the document is tens of thousands of tokens; the lines nearest the cursor are what is kept.
    assert 16 <= prompt_tokens <= 64 - 8
    assert not shown(client), shown(client)  # no error for the user


async def test_ten_megabyte_document_answers_in_bounded_time(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    uri = (tmp_path / "huge.py").as_uri()
    block = "".join(f"value_{i} = compute({i}, 'abcdefghij')\n" for i in range(1000))
    text = block * (10 * 2**20 // len(block) + 1) + "def tail(x):\n    "
    assert len(text) > 10 * 2**20
    last_line = text.count("\n")
    open_doc(client, uri, text)
    started = time.monotonic()
    items = await asyncio.wait_for(inline(client, uri, last_line, 4), 30)
    assert time.monotonic() - started < 15, "a huge document must not make the prompt fitting quadratic"
    assert len(items) <= 1
    [answer] = model_answers(client, uri)
    assert answer.version == 1 and answer.prompt_tokens < 1024  # far context trimmed to the window
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))
    await _still_serves(client, tmp_path)


# -- text the JSON layer lets through ------------------------------------------------------------

async def test_lone_surrogates_and_nul_bytes_do_not_crash(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    uri = (tmp_path / "odd.py").as_uri()
    text = "s = '\ud800'\nt = '\udfff\x00\x00'\nu = '\x00'\n"
    open_doc(client, uri, text)
    # Positions count the lone surrogate as one UTF-16 unit, as the client does.
    items = await asyncio.wait_for(inline(client, uri, 1, 8), 10)
    assert len(items) <= 1
    change_doc(client, uri, 2, (2, 5), (2, 6), "\udc00\x00")  # an edit with a lone surrogate and a NUL
    assert len(await asyncio.wait_for(inline(client, uri, 2, 5), 10)) <= 1  # answered for v2: the edit applied
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = '\ud83d'\n\x00")]))
    items = await asyncio.wait_for(inline(client, uri, 0, 6), 10)
    assert len(items) <= 1
    assert [s.version for s in requests(client, uri)] == [1, 2, 3], requests(client, uri)  # no edit was ignored
    assert not any("Error in server" in m for m in shown(client))
    await _still_serves(client, tmp_path)


# -- impossible positions and unknown documents ---------------------------------------------------

@pytest.mark.parametrize("line, character, reason", [
    (7, 0, "line 7 is past the last line"),
    (2, 1, "position 2:1 is inside a surrogate pair"),
], ids=["past-document-end", "inside-surrogate-pair"])
async def test_impossible_position_is_invalid_params(client: LanguageClient, tiny_codegen1, tmp_path: Path,
                                                     line, character, reason):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    uri = (tmp_path / "pos.py").as_uri()
    open_doc(client, uri, "def f():\n    return 1\n😀 = 2\n")
    with pytest.raises(JsonRpcInvalidParams) as raised:
        await asyncio.wait_for(client.text_document_inline_completion_async(_inline_params(uri, line, character)), 10)
    assert raised.value.code == -32602
    assert reason in raised.value.message
    # Same validation for completion; then a valid position still answers.
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character))), 10)
    assert len(await asyncio.wait_for(inline(client, uri, 2, 2), 10)) <= 1  # after the pair: fine
    await _still_serves(client, tmp_path)


async def test_character_past_line_end_means_the_line_end(client: LanguageClient, memorizing_codegen1,
                                                          tmp_path: Path):
    """LSP: "If the character value is greater than the line length it defaults back to the line length"
    (Neovim 0.7 sends such positions for linewise selections)."""
    await boot(client, memorizing_codegen1.gguf_path, tmp_path)
    uri = (tmp_path / "eol.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    at_end = [i.insert_text for i in await inline(client, uri, 1, 4)]
    past_end = [i.insert_text for i in await inline(client, uri, 1, 40)]
    assert at_end == past_end == ["return a + b"]


async def test_request_for_unopened_document_names_the_uri(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    uri = (tmp_path / "never-opened.py").as_uri()
    with pytest.raises(JsonRpcInvalidParams) as raised:
        await asyncio.wait_for(client.text_document_inline_completion_async(_inline_params(uri, 0, 0)), 10)
    assert uri in raised.value.message and "not open" in raised.value.message
    await _still_serves(client, tmp_path)


# -- the wire itself ------------------------------------------------------------------------------

async def test_malformed_json_rpc_is_survived(tmp_path: Path):
    server = await RawServer.start(SERVER)
    try:
        await server.write_raw(b"this is not a header\r\n\r\n")
        await server.send_body(b"{this is not json")
        await server.send_body(b"[1, 2, 3]")
        await server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
                                      "initializationOptions": {"model": str(tmp_path / "absent.gguf")}}})
        init = await server.response_to(1)
        assert "result" in init and init["result"]["capabilities"]["inlineCompletionProvider"] is not None
        await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": "file:///w/a.py", "languageId": "python", "version": 1, "text": "x = 1\n"}}})
        # A request whose params do not even have the right shape must still get an answer.
        await server.send({"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion",
                           "params": {"textDocument": {"uri": "file:///w/a.py"},
                                      "position": {"line": "first", "character": -3},
                                      "context": {"triggerKind": 1}}})
        bad = await server.response_to(2)
        assert bad["error"]["code"] == -32602, bad
        assert "invalid params for textDocument/inlineCompletion" in bad["error"]["message"]
        assert "position.line" in bad["error"]["message"], bad
        await server.send({"jsonrpc": "2.0", "id": 3, "method": "textDocument/inlineCompletion",
                           "params": {"textDocument": {"uri": "file:///w/a.py"},
                                      "position": {"line": 1, "character": 0}, "context": {"triggerKind": 1}}})
        good = await server.response_to(3)
        assert good.get("result") == {"items": []}, good
        await server.send({"jsonrpc": "2.0", "id": 4, "method": "shutdown"})
        assert "error" not in await server.response_to(4)
        await server.send({"jsonrpc": "2.0", "method": "exit"})
        assert await asyncio.wait_for(server.process.wait(), 10) == 0
    finally:
        await server.close()


# -- versions ---------------------------------------------------------------------------------------

async def test_stale_did_change_is_ignored(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    uri = (tmp_path / "v.py").as_uri()
    open_doc(client, uri, "x = 1\n", version=5)
    change_doc(client, uri, 5, (0, 4), (0, 5), "2\n\n")  # same version
    change_doc(client, uri, 3, (0, 4), (0, 5), "3\n\n")  # older version
    # Both ignored: the text is untouched, line 3 does not exist (the document is still "x = 1\n").
    with pytest.raises(JsonRpcInvalidParams, match="line 3 is past the last line"):
        await client.text_document_inline_completion_async(_inline_params(uri, 3, 0))
    change_doc(client, uri, 6, (0, 4), (0, 5), "42\n\n")
    with pytest.raises(JsonRpcInvalidParams, match="line 4 is past the last line"):
        await client.text_document_inline_completion_async(_inline_params(uri, 4, 0))
    assert len(await inline(client, uri, 3, 0)) <= 1  # v6 is "x = 42\n\n\n"
    assert [s.version for s in requests(client, uri)] == [6], requests(client, uri)


async def test_edit_during_generation_returns_nothing_for_the_old_version(client: LanguageClient, tiny_codegen1,
                                                                         tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=256)
    uri = (tmp_path / "race.py").as_uri()
    open_doc(client, uri, SOURCE, version=1)
    pending = asyncio.ensure_future(client.text_document_inline_completion_async(_inline_params(uri, 5, 8)))
    await asyncio.sleep(0)  # pytest-lsp sends the request on the task's first step; didChange must follow it
    change_doc(client, uri, 2, (5, 8), (5, 8), "r")
    result = await asyncio.wait_for(pending, 20)
    assert list(result.items) == []
    [old] = requests(client, uri)  # answered for v1 without post-processing: its version is gone
    assert old.version == 1 and old.reason in ("superseded by a newer request",
                                               "document changed during generation (version 1)"), old
    # The new version gets its suggestion.
    items = await asyncio.wait_for(inline(client, uri, 5, 9), 30)
    assert [s.version for s in requests(client, uri)[1:]] == [2], requests(client, uri)
    assert len(items) <= 1
    assert generated_counts(client)
