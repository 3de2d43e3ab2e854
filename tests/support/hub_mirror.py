"""A loopback stand-in for the Hugging Face hub, serving one folder as a repo at a fixed commit.

It answers the three calls huggingface_hub's snapshot_download makes (repo info at a revision,
the recursive file tree, and HEAD/GET of /resolve/ URLs with Range support), so `models pull`
runs through the real download code. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class HubMirror:
    def __init__(self, repo_id: str, folder: Path, commit: str = "c0ffee" + "0" * 34) -> None:
        self.repo_id, self.folder, self.commit = repo_id, Path(folder), commit
        self.requests: list[tuple[str, str]] = []
        self.files = {p.relative_to(self.folder).as_posix(): p for p in sorted(self.folder.rglob("*")) if p.is_file()}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "HubMirror":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloaded(self) -> list[str]:
        return [path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in self.requests
                if method == "GET" and "/resolve/" in path]

    def _handler(self):
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _json(self, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                mirror.requests.append((self.command, path))
                api = f"/api/models/{mirror.repo_id}/"
                resolve = f"/{mirror.repo_id}/resolve/"
                if path.startswith(api + "revision/"):
                    return self._json({"id": mirror.repo_id, "sha": mirror.commit,
                                       "siblings": [{"rfilename": f} for f in mirror.files]})
                if path.startswith(api + "tree/"):
                    return self._json([{"type": "file", "path": name, "size": p.stat().st_size,
                                        "oid": hashlib.sha1(p.read_bytes()).hexdigest()}
                                       for name, p in mirror.files.items()])
                if path.startswith(resolve):
                    name = path[len(resolve):].split("/", 1)[1]
                    if name in mirror.files:
                        return self._file(mirror.files[name], head)
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound" if path.startswith(resolve) else "RepoNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _file(self, file: Path, head: bool) -> None:
                data = file.read_bytes()
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", mirror.commit)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not head:
                    self.wfile.write(data[start:])

        return Handler
