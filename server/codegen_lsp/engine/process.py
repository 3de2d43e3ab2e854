"""The in-process engine's replacement: llama.cpp runs in a child process that this one supervises.

A crash inside llama.cpp (SIGILL from a build this CPU refuses, SIGSEGV, a GGML_ASSERT abort on a
malformed model) ends the child, not the language server. Like Ollama, Tabby and llama.vim's
llama-server, and unlike an in-process binding, the server then answers every request that was in
flight (EngineCrashed), tells its listener, and starts a new child that loads the same model, with
backoff, giving up after `RestartPolicy.max_crashes` crashes within `window_s`.

- spawn, not fork: the child is a fresh `python -m codegen_lsp.engine.child` (no copy of the server's
  threads or locks, and no re-import of the server's main module as multiprocessing's spawn does).
- One child per loaded model: `load` always starts a new one and retires the old.
- Cancellation is a byte per job in shared memory that the child checks before every token and
  prompt chunk, set the moment the job's CancelFlag is set: it never waits behind queued work.
- Requests and results travel pickled over one pipe; a reader thread per child resolves futures.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Callable

from ..gguf.inspect import ModelFileError, ModelFileInfo
from .crash import describe_exit
from .jobs import EngineConfig, GenerationJob, GenerationResult

log = logging.getLogger(__name__)
SLOTS = 4096
SEND_BUFFER_BYTES = 8 << 20  # cancel bytes; a slot is reused only after 4096 later requests
STOP_TIMEOUT_S = 3.0  # a child that does not exit after "close" (busy in native code) is killed


class EngineCrashed(Exception):
    """The engine process ended while a request was in flight, or is not running now."""

    def __init__(self, reason: str, exitcode: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.exitcode = reason, exitcode


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 3  # this many crashes within window_s: give up
    window_s: float = 120.0
    first_backoff_s: float = 0.25  # doubled after each crash in the window
    max_backoff_s: float = 8.0

    def backoff(self, crashes: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** max(0, crashes - 1))


@dataclass(frozen=True)
class EngineEvent:
    """What the supervisor tells its listener (from its own threads).

    kind: "crashed" (a restart follows unless gave_up), "restarted" (the model is loaded again),
    "restart-failed" (the model could not be loaded again, e.g. its file is gone)."""

    kind: str
    reason: str
    exitcode: int | None = None
    first_in_streak: bool = False  # the first crash since the window was last clear
    gave_up: bool = False
    crashes: int = 0
    info: ModelFileInfo | None = None


class _Child:
    """One engine process and the requests it has not answered yet."""

    def __init__(self, on_exit: Callable[["_Child", int | None, list[Future]], None]) -> None:
        flags_fd = _shared_memory_fd(SLOTS)
        self._flags = mmap.mmap(flags_fd, SLOTS)
        ours, theirs = socket.socketpair()
        self._socket = ours  # kept to shut down: a leftover fork of the child may hold the other end open
        # Requests are sent from the caller's thread (the event loop): a hand-off to a writer thread
        # costs up to a GIL switch interval per request. A large buffer keeps a busy child from ever
        # blocking the sender: a request is a few KiB and newest-wins keeps few queued.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._conn = Connection(os.dup(ours.fileno()))
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._slots: dict[int, int] = {}
        self._progress: dict[int, Callable[[float], None]] = {}
        self._ids = itertools.count(1)
        self._on_exit = on_exit
        self.dead = False
        self.exit_reason = ""
        self.stopping = False  # we asked it to go: its exit is no crash
        package_root = str(Path(__file__).resolve().parents[2])  # importable however the server was started
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
                   # On a GGML_ASSERT every worker thread forks a backtrace printer (gdb); those forks can
                   # deadlock each other and keep the child from dying. An abort is all we need.
                   GGML_NO_BACKTRACE="1")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "codegen_lsp.engine.child", str(theirs.fileno()), str(flags_fd), str(os.getpid()),
                 str(logging.getLogger().getEffectiveLevel())],
                pass_fds=(theirs.fileno(), flags_fd), stdin=subprocess.DEVNULL, env=env,
                # What native code prints comes to us, not to our stderr: a reader that never drains that
                # would block the engine mid-decode. It goes into our (never blocking) log.
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: whatever it forked goes with it
        finally:
            theirs.close()  # ours is then the only other end: EOF when the child dies
            os.close(flags_fd)
        self._reader = threading.Thread(target=self._read, name=f"engine-reader-{self.process.pid}", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, name=f"engine-watch-{self.process.pid}", daemon=True).start()
        threading.Thread(target=self._forward_output, name=f"engine-output-{self.process.pid}", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _forward_output(self) -> None:
        """Lines the engine process printed outside its log (native code, a fatal error) into our log."""
        stream = self.process.stdout
        if stream is None:
            return
        with stream:
            for line in stream:
                if text := line.decode("utf-8", "replace").rstrip():
                    log.warning("engine %s: %s", self.process.pid, text)

    def request(self, op: str, payload: Any, future: Future, *, cancel=None,
                progress: Callable[[float], None] | None = None) -> None:
        if not future.set_running_or_notify_cancel():
            return  # cancelled before it was sent
        # Running from now on: an asyncio task awaiting it can no longer cancel it (its CancelFlag stops
        # the work), so the result, "cancelled" included, always arrives.
        with self._lock:
            if self.dead:  # it died before this request was sent: the same reason as for those in flight
                future.set_exception(EngineCrashed(self.exit_reason, self.process.returncode))
                return
            request = next(self._ids)
            slot = request % SLOTS
            self._flags[slot] = 0
            self._pending[request], self._slots[request] = future, slot
            if progress is not None:
                self._progress[request] = progress
        self._send((op, request, payload) + ((slot,) if op == "generate" else ()))
        if cancel is not None:
            cancel.add_hook(lambda: self._cancel(request))

    def _cancel(self, request: int) -> None:
        with self._lock:
            slot = self._slots.get(request)
            if slot is not None:
                self._flags[slot] = 1

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Cancel what runs, ask the child to exit, kill it if it does not, and reap it."""
        with self._lock:
            self.stopping = True
            for slot in self._slots.values():
                self._flags[slot] = 1
        self._send(("close",))
        if not self._wait(timeout):
            self.process.kill()
            self._wait(timeout)
        self._reader.join(timeout)

    def _wait(self, timeout: float) -> bool:
        """Reap the process; False if it is still running after `timeout`."""
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _watch(self) -> None:
        """The pipe closing is not proof enough of death (a fork may hold it): the exit itself ends reading."""
        self.process.wait()
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError, TypeError):
                pass  # the child is gone (our end may be closed): the reader fails what is pending

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - an unreadable message: treat the child as broken
                log.error("unreadable message from the engine process: %s", exc)
                self.process.kill()
                break
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - the reader must outlive any one bad message
                log.exception("engine message %r could not be handled", message[:2])
        if not self._wait(STOP_TIMEOUT_S):  # it closed its pipe but lives on: it cannot serve us any more
            self.process.kill()
            self._wait(STOP_TIMEOUT_S)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything it left behind
        except (ProcessLookupError, PermissionError):
            pass
        with self._lock:
            self.exit_reason = describe_exit(self.process.returncode)
            self.dead = True
            pending = list(self._pending.values())
            self._pending.clear()
            self._slots.clear()
            self._progress.clear()
        with self._send_lock:
            self._conn.close()
        self._socket.close()
        self._on_exit(self, self.process.returncode, pending)

    def _dispatch(self, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
            return
        if kind == "progress":
            callback = self._progress.get(message[1])
            if callback is not None:
                callback(message[2])
            return
        if kind not in ("done", "failed"):
            return  # "ready"
        with self._lock:
            future = self._pending.pop(message[1], None)
            self._slots.pop(message[1], None)
            self._progress.pop(message[1], None)
        if future is None:
            return
        if kind == "done":
            future.set_result(message[2])
        else:
            future.set_exception(_RemoteError(message[2], message[3]))


class VocabProcess:
    """A model's tokenizer (vocabulary only: no weights, no compute) in an engine process, for a backend
    that generates elsewhere (engine/remote.py) but counts prompt tokens exactly."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self._path, self._timeout = path, timeout
        self._child = _Child(self._on_exit)
        try:
            self._call("vocab", str(path))
        except BaseException:  # nobody gets a handle to close it: a failed load must not leave the child running
            self.close()
            raise

    def count(self, text: str, timeout: float | None = None) -> int:
        """`timeout`: seconds to wait (the caller's time left); None: the one given at construction."""
        return self._call("count", text, timeout)

    def close(self) -> None:
        self._child.stop()

    def _call(self, op: str, payload: Any, timeout: float | None = None) -> Any:
        future: Future = Future()
        self._child.request(op, payload, future)
        try:
            return future.result(self._timeout if timeout is None else timeout)
        except _RemoteError as exc:
            raise ModelFileError(self._path, exc.text if exc.kind == "model" else str(exc)) from None

    @staticmethod
    def _on_exit(child: _Child, exitcode: int | None, pending: list[Future]) -> None:
        for future in pending:
            if not future.done():
                future.set_exception(EngineCrashed(describe_exit(exitcode), exitcode))


def _shared_memory_fd(size: int) -> int:
    """An anonymous file both processes map: the cancel bytes."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("codegen-lsp-cancel")
    else:  # not Linux
        with tempfile.TemporaryFile() as file:
            fd = os.dup(file.fileno())
    os.ftruncate(fd, size)
    return fd


class _RemoteError(Exception):
    """An exception raised in the child (kind "model": a ModelFileError's problem)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind}: {text}")
        self.kind, self.text = kind, text


class ProcessEngine:
    """The Engine protocol over a supervised engine process."""

    def __init__(self, listener: Callable[[EngineEvent], None] | None = None,
                 policy: RestartPolicy = RestartPolicy()) -> None:
        self._listener = listener or (lambda event: None)
        self._policy = policy
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._config: EngineConfig | None = None  # what a restart loads
        self._info: ModelFileInfo | None = None
        self._crashes: list[float] = []
        self._unavailable = "no model is loaded"
        self._restart_timer: threading.Timer | None = None
        self._closed = False

    @property
    def info(self) -> ModelFileInfo | None:
        return self._info

    @property
    def pid(self) -> int | None:
        """The engine process now serving (None while there is none)."""
        child = self._child
        return child.pid if child is not None and not child.dead else None

    def load(self, config: EngineConfig, progress: Callable[[float], None] | None = None) -> Future[ModelFileInfo]:
        """Start a new engine process for `config` (the old one is retired) and load the model there."""
        with self._lock:
            if self._closed:
                return _failed(EngineCrashed("the engine is closed"))
            self._cancel_restart()
            self._config, self._info, self._crashes = config, None, []
            old, self._child = self._child, None
            future = self._start(config, progress)
        if old is not None:
            threading.Thread(target=old.stop, name="engine-retire", daemon=True).start()
        return future

    def submit(self, job: GenerationJob) -> Future[GenerationResult]:
        future: Future[GenerationResult] = Future()
        child = self._child
        if child is None or self._info is None:
            future.set_exception(EngineCrashed(self._unavailable))
            return future
        child.request("generate", replace(job, cancel=None), future, cancel=job.cancel)
        return future

    def close(self) -> None:
        """Stop the engine process (cancelling what runs) and reap it; no restart follows."""
        with self._lock:
            self._closed = True
            self._cancel_restart()
            child, self._child = self._child, None
        if child is not None:
            child.stop()

    # -- supervision -------------------------------------------------------------------------------

    def _start(self, config: EngineConfig, progress: Callable[[float], None] | None) -> Future[ModelFileInfo]:
        """Spawn a child and load `config` there (called with the lock held)."""
        child = _Child(self._on_child_exit)
        self._child = child
        raw: Future = Future()
        future: Future[ModelFileInfo] = Future()
        child.request("load", config, raw, progress=progress)

        def loaded(done: Future) -> None:
            exc = done.exception()
            if exc is None:
                info = done.result()
                with self._lock:
                    if self._child is child:
                        self._info = info
                future.set_result(info)
            elif isinstance(exc, _RemoteError) and exc.kind == "model":
                self._unavailable = f"{config.model_path}: {exc.text}"
                future.set_exception(ModelFileError(config.model_path, exc.text))
            elif isinstance(exc, _RemoteError):
                future.set_exception(ModelFileError(config.model_path, f"the engine failed to load it ({exc})"))
            else:
                future.set_exception(exc)

        raw.add_done_callback(loaded)
        return future

    def _on_child_exit(self, child: _Child, exitcode: int | None, pending: list[Future]) -> None:
        reason = describe_exit(exitcode)
        for future in pending:
            if not future.done():
                future.set_exception(EngineCrashed(reason if not child.stopping else "the engine was stopped",
                                                   exitcode))
        if child.stopping:
            return
        with self._lock:
            if child is not self._child or self._closed:
                return
            self._child, self._info = None, None
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < self._policy.window_s] + [now]
            crashes = len(self._crashes)
            gave_up = crashes >= self._policy.max_crashes
            if gave_up:
                self._unavailable = (f"{reason} (gave up after {crashes} crashes within "
                                     f"{self._policy.window_s:.0f} s)")
            else:
                self._unavailable = f"{reason}; restarting"
                delay = self._policy.backoff(crashes)
                self._restart_timer = threading.Timer(delay, self._restart)
                self._restart_timer.daemon = True
                self._restart_timer.start()
        log.error("engine process %s ended: %s%s", child.pid, reason,
                  "; giving up" if gave_up else f"; restarting in {self._policy.backoff(crashes):.1f} s")
        self._emit(EngineEvent("crashed", reason, exitcode, first_in_streak=crashes == 1, gave_up=gave_up,
                               crashes=crashes))

    def _restart(self) -> None:
        with self._lock:
            self._restart_timer = None
            if self._closed or self._child is not None or self._config is None:
                return
            config = self._config
            future = self._start(config, None)

        def restarted(done: Future) -> None:
            exc = done.exception()
            if exc is None:
                log.info("engine restarted: %s loaded again", config.model_path)
                self._emit(EngineEvent("restarted", "the engine was restarted", info=done.result()))
            elif not isinstance(exc, EngineCrashed):  # a crash is reported by _on_child_exit
                self._emit(EngineEvent("restart-failed", str(exc)))

        future.add_done_callback(restarted)

    def _cancel_restart(self) -> None:
        if self._restart_timer is not None:
            self._restart_timer.cancel()
            self._restart_timer = None

    def _emit(self, event: EngineEvent) -> None:
        try:
            self._listener(event)
        except Exception:  # noqa: BLE001 - a broken listener must not stop supervision
            log.exception("engine event listener failed")


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future
