"""The protocol's bookkeeping stays bounded: pygls 2.1 keeps the future of every notification handled
through a builtin (didOpen, didChange, didClose...) in `_request_futures` forever (~1 KB a message;
27 MiB of server RSS over a 30,000-request `bench load`). CodegenProtocol forgets them once done.

In-process: the real server object and its protocol, messages fed as the transport would feed them, a
writer that keeps what the server sends. No engine is started (no model is loaded)."""

from __future__ import annotations

import asyncio
import json

from codegen_lsp.app import create_server


class Collect:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def write(self, data: bytes) -> None:
        body = data.split(b"\r\n\r\n", 1)[1]
        self.sent.append(json.loads(body))

    def close(self) -> None:
        pass


def feed(protocol, message: dict) -> None:
    protocol.handle_message(protocol.structure_message({"jsonrpc": "2.0", **message}))


async def test_notifications_and_answered_requests_leave_no_futures_behind():
    server = create_server()
    protocol = server.protocol
    writer = Collect()
    protocol.set_writer(writer)
    feed(protocol, {"id": 1, "method": "initialize", "params": {"capabilities": {}}})
    uri = "file:///tmp/a.py"
    for round_ in range(50):
        feed(protocol, {"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "def f(x):\n    return x\n"}}})
        for version in range(2, 6):
            feed(protocol, {"method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
                                    "text": "    # edit\n"}]}})
        # A client's mistakes, answered with errors.
        feed(protocol, {"id": f"bad-{round_}", "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": "file:///never/opened.py"}, "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 1}}})
        feed(protocol, {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    for _ in range(20):  # let async handlers and done callbacks run
        await asyncio.sleep(0)
    answers = [m for m in writer.sent if str(m.get("id", "")).startswith("bad-")]
    assert len(answers) == 50 and all(m["error"]["code"] == -32602 for m in answers)
    # 300 notifications and 51 requests: nothing left in flight.
    assert len(protocol._request_futures) == 0, len(protocol._request_futures)
    assert protocol._methods == {} and protocol._cancel_callbacks == {}
    server.engine.close()
