"""A transparent stdio relay between VS Code and the real server, for the e2e tests: it starts the server
command, copies every LSP message both ways unchanged, and appends one JSON line per message to a log
({"t": epoch ms, "dir": "in" (client to server) | "out", "method", "id"}, plus a stats notification's
"kind" and a settings push's "warmAfterMs"), so a test can tell which
requests reached the server and when. `--drop METHOD` withholds the server's notifications of that
method from the client (a server too old to send them).

    python lsp_recorder.py LOG [--drop METHOD]... -- COMMAND [ARGS...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import BinaryIO


def read_message(stream: BinaryIO) -> bytes | None:
    """One framed message (headers and body, as read), or None at end of stream."""
    headers = b""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        headers += line
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError(f"no Content-Length in {headers!r}")
    body = stream.read(length)
    return headers + body if len(body) == length else None


def details(method: str | None, params) -> dict:
    """A few fields the tests read: a stats notification's kind, the warmAfterMs a settings push carries."""
    if not isinstance(params, dict):
        return {}
    if method == "codegenLsp/stats":
        return {"kind": params.get("kind")}
    if method == "workspace/didChangeConfiguration":
        section = (params.get("settings") or {}).get("codegenLsp")
        return {"warmAfterMs": section.get("warmAfterMs")} if isinstance(section, dict) else {}
    return {}


def relay(src: BinaryIO, dst: BinaryIO, direction: str, log, lock: threading.Lock, drop: set[str]) -> None:
    try:
        while (message := read_message(src)) is not None:
            body = message.split(b"\r\n\r\n", 1)[-1]
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            method = parsed.get("method") if isinstance(parsed, dict) else None
            dropped = direction == "out" and method in drop
            entry = {"t": int(time.time() * 1000), "dir": direction, "method": method,
                     "id": parsed.get("id") if isinstance(parsed, dict) else None}
            entry.update(details(method, parsed.get("params") if isinstance(parsed, dict) else None))
            if dropped:
                entry["dropped"] = True
            with lock:
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if not dropped:
                dst.write(message)
                dst.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass
    finally:
        try:
            dst.close()
        except OSError:
            pass


def main(argv: list[str]) -> int:
    sep = argv.index("--")
    options, command = argv[:sep], argv[sep + 1:]
    log_path, drop = options[0], set()
    rest = options[1:]
    while rest:
        flag, value, *rest = rest
        if flag != "--drop":
            raise SystemExit(f"unknown option {flag}")
        drop.add(value)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lock = threading.Lock()
    with open(log_path, "a", encoding="utf-8") as log:
        inbound = threading.Thread(target=relay, args=(sys.stdin.buffer, child.stdin, "in", log, lock, set()),
                                   daemon=True)
        outbound = threading.Thread(target=relay, args=(child.stdout, sys.stdout.buffer, "out", log, lock, drop),
                                    daemon=True)
        inbound.start()
        outbound.start()
        code = child.wait()
        outbound.join(timeout=5)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
