"""A raw HTTP/1.1 server on 127.0.0.1 for the remote engine's tests: each route writes whatever bytes it
likes (a drip, 100 MB, malformed chunks), which no real inference server does on purpose.

One request per connection (responses say `Connection: close`, as the remote engine opens one per
request anyway). `sent` counts the bytes the routes got into the socket, so a test can tell how much a
client read before it hung up (within the kernel's socket buffers).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

MODELS = {"object": "list", "data": [{"id": "loopback-model", "object": "model"}]}


@dataclass
class Exchange:
    """One request and the means to answer it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    _conn: socket.socket
    _server: "LoopbackServer"
    sent: int = 0

    @property
    def stopping(self) -> bool:
        return self._server.stopping.is_set()

    def send(self, data: bytes) -> None:
        """Send all of `data` (OSError once the client is gone)."""
        self._conn.sendall(data)
        self.sent += len(data)
        with self._server.lock:
            self._server.sent += len(data)

    def json(self, value: Any, status: str = "200 OK") -> None:
        body = json.dumps(value).encode()
        self.send(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n".encode() + body)

    def sse_start(self) -> None:
        self.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")

    def event(self, value: Any) -> None:
        """One `data:` event: a JSON value, or a str sent as it is."""
        self.send(b"data: " + (value if isinstance(value, str) else json.dumps(value)).encode() + b"\n\n")

    def drip(self, data: bytes, every_s: float) -> None:
        """`data` a byte at a time, until the client or the test goes."""
        for i in range(len(data)):
            if self.stopping:
                return
            self.send(data[i:i + 1])
            time.sleep(every_s)


def models(exchange: Exchange) -> None:
    exchange.json(MODELS)


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"object": "text_completion", "choices": [{"text": text, "index": 0, "finish_reason": finish}]}


@dataclass
class LoopbackServer:
    """`routes`: path → handler(exchange); /v1/models answers one model unless given."""

    routes: dict[str, Callable[[Exchange], None]]
    connections: int = 0
    sent: int = 0
    requests: list[Exchange] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.routes = {"/v1/models": models, **self.routes}
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, name="loopback-accept", daemon=True).start()

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.stopping.set()
        self._sock.close()
        for thread in list(self._threads):
            thread.join(10)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), name="loopback-serve", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as rfile:
            method, path, _ = rfile.readline().decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := rfile.readline().decode("latin-1").strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = rfile.read(int(headers.get("content-length", 0)))
            exchange = Exchange(method, path, headers, body, conn, self)
            self.requests.append(exchange)
            handler = self.routes.get(path)
            try:
                if handler is None:
                    exchange.json({"error": f"no route {path}"}, "404 Not Found")
                else:
                    handler(exchange)
            except OSError:
                pass  # the client hung up: what the tests are about
