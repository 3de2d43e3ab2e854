"""The engine process: the only process that imports llama_cpp. Started by engine/process.py as
`python -m codegen_lsp.engine.child SOCKET_FD FLAGS_FD PARENT_PID LOG_LEVEL`, one per loaded model; a crash here (SIGILL, SIGSEGV, a GGML_ASSERT abort) ends
this process, never the language server.

Its one thread reads requests from the pipe and runs them in order. What comes back on the pipe:
  ("ready",)                      once started
  ("progress", request, fraction) while a model loads
  ("done", request, value)        a request's result
  ("failed", request, kind, text) a request's error (kind: "model" for a ModelFileError)
  ("log", level, name, message)   a log record, for the server's own log
Cancellation does not travel on the pipe: the server sets this job's byte in a shared memory map and
the runner checks it before every token and prompt chunk. Progress does not either: the last
HEARTBEAT_BYTES of that map are a counter this process bumps at each of those checks, on every
load-progress callback and when a job starts and ends; the server's watchdog (engine/process.py)
replaces a process whose counter stands still while a request is past its deadline.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

PARENT_POLL_S = 1.0
HEARTBEAT_BYTES = 8  # the shared map's last bytes: a little-endian unsigned counter


def heartbeat_offset(flags: Any) -> int:
    return len(flags) - HEARTBEAT_BYTES


def read_heartbeat(flags: Any) -> int:
    return struct.unpack_from("<Q", flags, heartbeat_offset(flags))[0]


class Heartbeat:
    """This process's progress, as the server sees it: a counter in the shared map (no pipe traffic)."""

    def __init__(self, flags: Any) -> None:
        self._flags, self._offset, self._count = flags, heartbeat_offset(flags), 0

    def bump(self) -> None:
        self._count = (self._count + 1) & 0xFFFF_FFFF_FFFF_FFFF
        struct.pack_into("<Q", self._flags, self._offset, self._count)


class SharedCancel:
    """The child's view of a job's CancelFlag: one byte the server sets. Each check is also progress: the
    runner checks before every token and prompt chunk."""

    def __init__(self, flags: Any, slot: int, heartbeat: Heartbeat | None = None) -> None:
        self._flags, self._slot, self._heartbeat = flags, slot, heartbeat

    def is_set(self) -> bool:
        if self._heartbeat is not None:
            self._heartbeat.bump()
        return bool(self._flags[self._slot])


class _PipeLogHandler(logging.Handler):
    """Log records go to the server, which writes them where its own go (never our stderr)."""

    def __init__(self, send) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(("log", record.levelno, record.name, record.getMessage()))
        except Exception:  # noqa: BLE001 - the server is gone; nothing to log to
            pass


def _exit_with_parent(parent_pid: int) -> None:
    """The server may die without closing our pipe in time (SIGKILL): don't outlive it."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(0)


def main(argv: list[str]) -> None:
    conn_fd, flags_fd, parent_pid, log_level = (int(a) for a in argv)
    conn, flags = Connection(conn_fd), mmap.mmap(flags_fd, 0)
    heartbeat = Heartbeat(flags)
    # Nothing of ours may reach fd 1: in a stdio server it can be the protocol stream.
    os.dup2(2, 1)
    lock = threading.Lock()  # the log handler and the main loop both send

    def send(message: tuple) -> None:
        with lock:
            conn.send(message)

    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(send)]
    root.setLevel(log_level)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()

    from ..gguf.inspect import ModelFileError
    from .llama_runner import LlamaRunner

    runner = LlamaRunner()
    vocab: Any = None  # Llama(vocab_only=True): a remote backend's token counts
    send(("ready",))
    while True:
        try:
            while not conn.poll(0) and runner.idle_work():  # deferred work, only while no request waits
                pass
            message = conn.recv()
        except (EOFError, OSError):
            break
        op, request = message[0], message[1] if len(message) > 1 else None
        if op == "close":
            break
        heartbeat.bump()  # a job starts

        def loading(fraction: float, request: Any = request) -> None:
            heartbeat.bump()
            send(("progress", request, fraction))

        try:
            if op == "load":
                config = message[2]
                value: Any = runner.load(config, loading)
            elif op == "vocab":
                import llama_cpp

                try:
                    vocab = llama_cpp.Llama(model_path=message[2], vocab_only=True, n_ctx=64, verbose=False)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ModelFileError(message[2], f"llama.cpp could not read its vocabulary ({exc})") from None
                value = None
            elif op == "count":
                text = message[2]
                value = len(vocab.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False)) if text else 0
            elif op in ("tokenize", "last_piece"):  # a remote backend's probe / its token healing
                import llama_cpp

                text = message[2]
                ids = vocab.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False) if text else []
                value = ids if op == "tokenize" else (len(ids), _piece(llama_cpp, vocab, ids[-1]) if ids else b"")
            elif op == "generate":
                job, slot = message[2], message[3]
                value = runner.generate(replace(job, cancel=SharedCancel(flags, slot, heartbeat)))
            else:
                raise ValueError(f"unknown engine request {op!r}")
        except ModelFileError as exc:
            send(("failed", request, "model", exc.problem))
        except Exception as exc:  # noqa: BLE001 - reported to the waiting caller
            send(("failed", request, type(exc).__name__, str(exc)))
        else:
            send(("done", request, value))
        heartbeat.bump()  # and ends
    runner.free()


def _piece(llama_cpp: Any, llm: Any, token: int) -> bytes:
    """The bytes `token` stands for (b"" for a special token), as the in-process healer reads them."""
    import ctypes

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, 256, 0, False)
    return buf.raw[:n] if 0 < n <= 256 else b""


if __name__ == "__main__":
    main(sys.argv[1:])
