"""`serve --tcp`: an LSP session over a socket that is not an open door.

Any local process can connect to a port, so a connection counts only once its first message is the
`initialize` request carrying this serve's token in `initializationOptions.tcpToken` (every LSP client can
set initialization options; none can add bytes before the protocol). The token is generated per serve
and printed, or taken from CODEGEN_LSP_TCP_TOKEN or a file. The first message is read here, bounded in
size and time, the token removed, and the rest handed to pygls' message loop unchanged.

One session at a time: a connection without the token, with a wrong one, or arriving while a session
runs is closed (with a JSON-RPC error where it sent a request) and the server keeps serving. Only the
session's own client ending its connection ends the server, as over stdio.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygls.io_ import run_async

log = logging.getLogger(__name__)

TOKEN_ENV = "CODEGEN_LSP_TCP_TOKEN"
TOKEN_OPTION = "tcpToken"
HANDSHAKE_TIMEOUT_S = 10.0  # a connection that says nothing is closed after this
MAX_FIRST_MESSAGE = 1 << 20  # an initialize request is a few KB; this bounds what a stranger can make us hold
MAX_HEADER_LINES = 8
PUMP_CHUNK = 1 << 16


class Refused(Exception):
    """Why a connection is closed; `request_id` is the id to answer with an error, if it sent a request."""

    def __init__(self, reason: str, request_id: Any = None) -> None:
        super().__init__(reason)
        self.request_id = request_id


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # "generated", the env variable, or the file: what `serve` prints


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token_file: Path | None, environ: os._Environ | dict[str, str] = os.environ) -> Token:
    """The token from --token-file, else the environment, else a new one. An empty or unreadable file is
    an error (OSError / ValueError), not silently a generated token the client cannot know."""
    if token_file is not None:
        value = token_file.read_text(encoding="utf-8").strip()
        if not value:
            raise ValueError(f"{token_file} is empty")
        return Token(value, str(token_file))
    if environ.get(TOKEN_ENV, "").strip():
        return Token(environ[TOKEN_ENV].strip(), TOKEN_ENV)
    return Token(secrets.token_urlsafe(24), "generated")


async def read_first_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    """One base-protocol message, bounded: at most MAX_HEADER_LINES header lines and MAX_FIRST_MESSAGE bytes."""
    length = None
    for _ in range(MAX_HEADER_LINES + 1):
        line = await reader.readline()
        if not line:
            raise Refused("closed before sending anything")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip()) if value.strip().isdigit() else None
    else:
        raise Refused("not the Language Server Protocol (no end of headers)")
    if length is None or not 0 < length <= MAX_FIRST_MESSAGE:
        raise Refused(f"not the Language Server Protocol (Content-Length {length}, at most {MAX_FIRST_MESSAGE})")
    body = await reader.readexactly(length)
    try:
        message = json.loads(body)
    except ValueError:
        raise Refused("the first message is not JSON") from None
    if not isinstance(message, dict):
        raise Refused("the first message is not a JSON-RPC message")
    return message


def admit(message: dict[str, Any], token: str) -> dict[str, Any]:
    """The message without its token if it is `initialize` with the right one; else Refused."""
    request_id = message.get("id")
    if message.get("method") != "initialize":
        raise Refused(f"the first message must be initialize (got {message.get('method')!r})", request_id)
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get(TOKEN_OPTION) if isinstance(options, dict) else None
    if not isinstance(given, str):
        raise Refused(f"no initializationOptions.{TOKEN_OPTION}: this server takes only clients that have its "
                      "token", request_id)
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Refused(f"wrong initializationOptions.{TOKEN_OPTION}", request_id)
    rest = {k: v for k, v in options.items() if k != TOKEN_OPTION}
    return {**message, "params": {**params, "initializationOptions": rest or None}}


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def refusal(request_id: Any, reason: str) -> bytes:
    return frame({"jsonrpc": "2.0", "id": request_id,
                  "error": {"code": -32600, "message": f"codegen-lsp refused this connection: {reason}"}})


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamReader) -> None:
    try:
        while chunk := await source.read(PUMP_CHUNK):
            sink.feed_data(chunk)
    except (ConnectionError, OSError):
        pass
    finally:
        sink.feed_eof()


def start_tcp(server, host: str, port: int, token: Token, announce=None) -> None:
    """pygls' start_tcp, with the handshake above in front of its message loop. `announce(address)` is
    called once the socket listens (port 0 picks a free one)."""
    stop = threading.Event()
    server._stop_event = stop  # pygls' shutdown() sets it and closes server._server
    session: list[asyncio.Task] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            message = admit(await asyncio.wait_for(read_first_message(reader), HANDSHAKE_TIMEOUT_S), token.value)
            if session:  # one LSP session per server: a second client must not take over its stream
                raise Refused("a session is already connected", message.get("id"))
        except (Refused, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, Refused) else (
                "sent no initialize in time" if isinstance(exc, asyncio.TimeoutError) else f"broken ({exc!r})")
            log.warning("closed a TCP connection from %s: %s", peer, reason)
            if isinstance(exc, Refused) and exc.request_id is not None:
                writer.write(refusal(exc.request_id, reason))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        session.append(task)
        log.info("LSP session from %s", peer)
        inner = asyncio.StreamReader(limit=2**20)
        inner.feed_data(frame(message))
        pump = asyncio.ensure_future(_pump(reader, inner))
        server.protocol.set_writer(writer)
        try:
            await run_async(stop_event=stop, reader=inner, protocol=server.protocol, logger=log,
                            error_handler=server.report_server_error)
        finally:
            pump.cancel()
        log.info("the session's client disconnected")
        server.shutdown()

    async def listen() -> None:
        server._server = await asyncio.start_server(connection, host, port)
        address = server._server.sockets[0].getsockname()
        (announce or _announce)(address, token)
        async with server._server:
            await server._server.serve_forever()

    try:
        asyncio.run(listen())
    except asyncio.CancelledError:
        pass


def _announce(address, token: Token) -> None:
    where = f"{address[0]}:{address[1]}"
    if token.source == "generated":
        secret = f"token {token.value} (pass it as initializationOptions.{TOKEN_OPTION})"
    else:
        secret = f"the token from {token.source} (pass it as initializationOptions.{TOKEN_OPTION})"
    print(f"codegen-lsp: serving LSP on {where}; clients must send {secret}", file=sys.stderr, flush=True)
