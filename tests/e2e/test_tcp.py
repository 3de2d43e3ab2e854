"""`serve --tcp` through a real socket: only a client with the token gets a session, strangers are closed
at once while the session goes on, and only the session's own client ends the server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp.client import make_test_lsp_client

from codegen_lsp.tcp import TOKEN_ENV, frame
from support.files import wait_until
from support.lsp import capabilities, inline, open_doc, record_events, wait_for_status

TOKEN = "test-token-4f1c2a"
SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"


class TcpServer:
    """`codegen-lsp serve --tcp 127.0.0.1:0` with the token in the environment; the port from its stderr."""

    def __init__(self, log: Path, *extra: str, token: str | None = TOKEN) -> None:
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        if token is not None:
            env[TOKEN_ENV] = token
        self.log = log
        self.process = subprocess.Popen([sys.executable, "-m", "codegen_lsp", "serve", "--tcp", "127.0.0.1:0",
                                         "--log-level", "info", *extra],
                                        stderr=log.open("wb"), stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while not (found := re.search(r"serving LSP on 127\.0\.0\.1:(\d+)", self.text())):
            assert self.process.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.05)
        self.port = int(found.group(1))

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def initialize_message(options: dict | None, request_id: int = 1) -> bytes:
    return frame({"jsonrpc": "2.0", "id": request_id, "method": "initialize",
                  "params": {"processId": None, "rootUri": None, "capabilities": {},
                             "initializationOptions": options}})


async def stranger(port: int, payload: bytes | None) -> bytes:
    """Connect, send `payload` (None: nothing), and read until the server closes; what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if payload is not None:
        writer.write(payload)
        await writer.drain()
    else:
        writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 15)  # returns at EOF: the server closed the connection
    writer.close()
    return answer


async def session(port: int, model: Path, root: Path, token: str = TOKEN):
    client = make_test_lsp_client()
    record_events(client)
    await client.start_tcp("127.0.0.1", port)
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=root.as_uri(),
        initialization_options={"tcpToken": token, "model": str(model), "threads": 1, "offerModelDownload": False}))
    await wait_for_status(client, ("ready", "error"))
    return client


STRANGERS = [None, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", initialize_message(None), initialize_message({"tcpToken": "no"}),
             frame({"jsonrpc": "2.0", "method": "exit"})]


async def test_strangers_are_closed_while_the_session_types_through_a_file(tiny_codegen1, tmp_path: Path):
    server = TcpServer(tmp_path / "server.log")
    try:
        client = await session(server.port, tiny_codegen1.gguf_path, tmp_path)
        uri = (tmp_path / "a.py").as_uri()
        text = ""
        answered = 0

        async def type_through() -> None:
            nonlocal text, answered
            for n, ch in enumerate(SOURCE):
                text += ch
                if n == 0:
                    open_doc(client, uri, text, version=1)
                else:
                    client.text_document_did_change(types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=n + 1),
                        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
                lines = text.split("\n")
                await asyncio.wait_for(inline(client, uri, len(lines) - 1, len(lines[-1])), 30)
                answered += 1

        answers = await asyncio.gather(type_through(), *(stranger(server.port, STRANGERS[n % len(STRANGERS)])
                                                        for n in range(100)))
        assert answered == len(SOURCE)  # every request of the session answered
        refusals = [a for a in answers[1:] if a]
        assert refusals and all(b"codegen-lsp refused this connection" in a for a in refusals), refusals[:3]
        assert any(b"no initializationOptions.tcpToken" in a for a in refusals)
        assert any(b"wrong initializationOptions.tcpToken" in a for a in refusals)
        assert server.process.poll() is None
        await client.shutdown_session()
        server.process.wait(20)  # the session's client ended: the server ends, as over stdio
        assert server.process.returncode == 0, server.text()[-2000:]
    finally:
        server.stop()


async def test_a_second_client_with_the_token_does_not_take_over(tiny_codegen1, tmp_path: Path):
    server = TcpServer(tmp_path / "server.log")
    try:
        client = await session(server.port, tiny_codegen1.gguf_path, tmp_path)
        answer = await stranger(server.port, initialize_message({"tcpToken": TOKEN}))
        assert b"a session is already connected" in answer
        uri = (tmp_path / "a.py").as_uri()
        open_doc(client, uri, SOURCE)
        await asyncio.wait_for(inline(client, uri, 5, 8), 30)  # the first session still works
        await client.shutdown_session()
    finally:
        server.stop()


async def test_a_client_without_the_token_leaves_the_server_for_one_with_it(tiny_codegen1, tmp_path: Path):
    server = TcpServer(tmp_path / "server.log")
    try:
        with pytest.raises(Exception, match="tcpToken"):
            await session(server.port, tiny_codegen1.gguf_path, tmp_path, token="guess")
        client = await session(server.port, tiny_codegen1.gguf_path, tmp_path)
        assert [s["state"] for s in client.statuses][-1] == "ready"  # type: ignore[attr-defined]
        await client.shutdown_session()
        assert "wrong initializationOptions.tcpToken" in server.text()
    finally:
        server.stop()


async def test_a_generated_token_is_printed_and_works(tiny_codegen1, tmp_path: Path):
    server = TcpServer(tmp_path / "server.log", token=None)
    try:
        token = re.search(r"token (\S+) \(pass it as initializationOptions\.tcpToken\)", server.text()).group(1)
        client = await session(server.port, tiny_codegen1.gguf_path, tmp_path, token=token)
        await client.shutdown_session()
    finally:
        server.stop()


async def test_a_token_file_is_read_and_not_printed(tiny_codegen1, tmp_path: Path):
    (tmp_path / "token").write_text("from-a-file\n")
    server = TcpServer(tmp_path / "server.log", "--token-file", str(tmp_path / "token"), token=None)
    try:
        assert "from-a-file" not in server.text() and str(tmp_path / "token") in server.text()
        client = await session(server.port, tiny_codegen1.gguf_path, tmp_path, token="from-a-file")
        await client.shutdown_session()
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7"])
def test_a_host_beyond_loopback_needs_allow_remote(host: str):
    run = subprocess.run([sys.executable, "-m", "codegen_lsp", "serve", "--tcp", f"{host}:0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--allow-remote" in run.stderr and host in run.stderr


def test_allow_remote_warns(tmp_path: Path):
    log = tmp_path / "remote.log"
    process = subprocess.Popen([sys.executable, "-m", "codegen_lsp", "serve", "--tcp", "0.0.0.0:0", "--allow-remote"],
                               stderr=log.open("wb"), env={**os.environ, TOKEN_ENV: TOKEN})
    try:
        wait = time.monotonic() + 30
        while "serving LSP on" not in log.read_text() and time.monotonic() < wait:
            time.sleep(0.05)
        assert "reachable from other machines" in log.read_text()
    finally:
        process.kill()
        process.wait(10)
