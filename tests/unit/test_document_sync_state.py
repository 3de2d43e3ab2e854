"""Each open document is held once, and nothing is kept for a URI that is not open (issue 30).

* pygls' built-in didOpen/didChange/didClose handlers keep a copy of every document in `ls.workspace`
  beside our DocumentStore; features/sync.py takes them out, so after didOpen pygls' workspace holds
  no text document (while our store does), and edits still reach our store.
* A didChange for a URI that was never opened left a typing-rhythm entry (scheduling.TypingRhythm)
  forever; a didClose forgets what was kept for the document (store, rhythm, warm-up, job in flight).

In-process: the real server object and its protocol (app.create_server), LSP messages fed as the
transport would feed them, a writer that keeps what the server sends. No engine is started."""

from __future__ import annotations

import asyncio
import json

import pytest

from codegen_lsp.app import create_server

URI = "file:///tmp/held_once.py"
TEXT = "def f(x):\n    return x\n"


class Collect:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


def feed(protocol, message: dict) -> None:
    protocol.handle_message(protocol.structure_message({"jsonrpc": "2.0", **message}))


def did_open(uri: str, text: str = TEXT) -> dict:
    return {"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}}}


def did_change(uri: str, version: int, line: int = 1) -> dict:
    at = {"line": line, "character": 0}
    return {"method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": at, "end": at}, "text": "    # edit\n"}]}}


def did_close(uri: str) -> dict:
    return {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}}


@pytest.fixture
async def server():
    made = create_server()
    writer = Collect()
    made.protocol.set_writer(writer)
    feed(made.protocol, {"id": 1, "method": "initialize", "params": {"capabilities": {}}})
    made.sent = writer.sent
    yield made
    made.engine.close()


async def settle() -> None:
    for _ in range(10):  # let async handlers and done callbacks run
        await asyncio.sleep(0)


async def test_an_open_document_is_held_once_by_our_store(server):
    protocol = server.protocol
    sync = next(m["result"]["capabilities"]["textDocumentSync"] for m in server.sent if m.get("id") == 1)
    assert sync["openClose"] is True and sync["change"] == 2  # still announced: incremental sync

    feed(protocol, did_open(URI))
    await settle()
    assert server.store.get(URI).text == TEXT
    assert protocol.workspace.text_documents == {}  # pygls keeps no second copy

    feed(protocol, did_change(URI, 2))
    await settle()
    assert server.store.get(URI).text == "def f(x):\n    # edit\n    return x\n"
    assert server.store.get(URI).version == 2
    assert protocol.workspace.text_documents == {}

    feed(protocol, did_close(URI))
    await settle()
    assert URI not in server.store and protocol.workspace.text_documents == {}


async def test_a_change_to_a_document_never_opened_leaves_nothing_behind(server):
    protocol, completions = server.protocol, server.completions
    never = [f"file:///tmp/never_opened_{i}.py" for i in range(20)]
    for version in range(2, 6):  # several in a row: an interval would be kept if the edit counted
        for uri in never:
            feed(protocol, did_change(uri, version))
    await settle()
    for uri in never:
        assert uri not in server.store
        assert uri not in completions.rhythm
        assert uri not in completions.warming and uri not in completions.inflight
    # the server is still answering: a warning per change was sent (which one is not the test's business)
    assert sum(m.get("method") == "window/logMessage" for m in server.sent) >= len(never) * 4


async def test_closing_a_document_forgets_its_rhythm_and_warm_up(server):
    protocol, completions = server.protocol, server.completions
    feed(protocol, did_open(URI))
    for version in range(2, 7):  # typed quickly: the rhythm keeps intervals, a warm-up is pending
        feed(protocol, did_change(URI, version))
    await settle()
    assert URI in completions.rhythm and URI in completions.warming  # what the close must forget
    warm_up = completions.warming[URI]

    feed(protocol, did_close(URI))
    await settle()
    assert URI not in server.store
    assert URI not in completions.rhythm
    assert URI not in completions.warming and warm_up.cancelled()
    assert URI not in completions.inflight
