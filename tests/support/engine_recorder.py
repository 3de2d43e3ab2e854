"""`python tests/support/engine_recorder.py serve ...`: the real `codegen-lsp serve`, with every message the
server sends to its engine process (load, generate, count, ...: `_Child._send`, the one way in) also
appended, pickled as the writer thread pickles it, to the file named by $CODEGEN_LSP_ENGINE_RECORD. Tests
read it back (`recorded`) to check what the engine received, e.g. that an excluded file's text never did.
Test-only: nothing in the runtime knows of it."""

from __future__ import annotations

import os
import pickle
import struct
import sys
import threading
from pathlib import Path

RECORD_ENV = "CODEGEN_LSP_ENGINE_RECORD"
SCRIPT = Path(__file__).resolve()


def recorded(path: Path) -> list[bytes]:
    """The messages recorded in `path`, each as the bytes the engine process received."""
    data = path.read_bytes() if path.exists() else b""
    messages, at = [], 0
    while at + 8 <= len(data):
        (size,) = struct.unpack_from("<Q", data, at)
        messages.append(data[at + 8:at + 8 + size])
        at += 8 + size
    return messages


def _install(path: str) -> None:
    from codegen_lsp.engine import process

    lock = threading.Lock()
    send = process._Child._send

    def recording_send(self, message):
        if message is not None:
            try:
                blob = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - the engine would not get it either; keep what it was
                blob = repr((message, exc)).encode("utf-8", "backslashreplace")
            with lock, open(path, "ab") as out:
                out.write(struct.pack("<Q", len(blob)) + blob)
        return send(self, message)

    process._Child._send = recording_send


if __name__ == "__main__":
    _install(os.environ[RECORD_ENV])
    from codegen_lsp.cli import main

    raise SystemExit(main(sys.argv[1:]))
