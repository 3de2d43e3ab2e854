"""The in-process engine's replacement: llama.cpp runs in a child process that this one supervises.

A crash inside llama.cpp (SIGILL from a build this CPU refuses, SIGSEGV, a GGML_ASSERT abort on a
malformed model) ends the child, not the language server. Like Ollama, Tabby and llama.vim's
llama-server, and unlike an in-process binding, the server then answers every request that was in
flight (EngineCrashed), tells its listener, and starts a new child that loads the same model, with
backoff, giving up after `RestartPolicy.max_crashes` crashes within `window_s`.

A hang is treated like a crash (issue 30: never wedged by its own engine):
- Every request may carry a deadline (GenerationJob.timeout_s; a load's scales with the file's size).
  At a job's deadline its cancel byte is set; a child that has not answered DEADLINE_GRACE_S later is
  answered for: the future gets finish "error", "the model did not answer within N ms", and the
  child's late answer is dropped. A load past its deadline fails and its child is killed.
- The child bumps a heartbeat counter in shared memory at every cancel check (before every token and
  prompt chunk), load-progress callback and job start/end. A watchdog thread per child kills (SIGKILL,
  its whole process group) a child that has a request past its deadline and made no progress for
  STALL_S; the restart path then replaces it, and the hang counts toward the give-up limit.
- A crash while the model file differs from what was loaded (SIGBUS, typically: the file was rewritten
  under the mapping) is "the model file changed while it was loaded": not counted, and the restart waits
  until the file has stopped changing.
- A model file rewritten in place (same inode: the mapped weights change under the loaded model, and its
  KV cache was computed with the old ones) is not served: generations are refused (REWRITTEN) and one
  computed meanwhile is dropped, until a load (the model file watcher's reload) takes the file as it is.
- Requests are written by a writer thread per child from a queue: the caller (the event loop) never
  blocks on a full socket or a big request. stop() sends "close" through that queue and kills what has
  not exited STOP_TIMEOUT_S later.
- What the child sends that cannot be read (or was never a message of the protocol) gets it killed and
  replaced; what it prints outside its log is forwarded line by line, a line cut at MAX_LINE_BYTES.

- spawn, not fork: the child is a fresh `python -m codegen_lsp.engine.child` (no copy of the server's
  threads or locks, and no re-import of the server's main module as multiprocessing's spawn does).
- One child per loaded model: `load` always starts a new one and retires the old.
- Cancellation is a byte per job in shared memory that the child checks before every token and
  prompt chunk, set the moment the job's CancelFlag is set: it never waits behind queued work.
- Requests and results travel pickled over one socket; a reader thread per child resolves futures.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ..gguf.inspect import ModelFileError, ModelFileInfo
from .child import HEARTBEAT_BYTES, read_heartbeat
from .crash import describe_exit
from .jobs import EngineConfig, EngineCrashed, GenerationJob, GenerationResult, Preemption

__all__ = ["EngineCrashed", "EngineEvent", "ProcessEngine", "RestartPolicy", "VocabProcess"]

log = logging.getLogger(__name__)
SLOTS = 4096  # cancel bytes; a slot is reused only after 4096 later requests
# A child gets this long to exit after "close" (its running job is cancelled first), then it is killed
# and reaped within KILL_WAIT_S: stop(), and so ProcessEngine.close(), returns within about 3 s whatever
# the child does (a SIGSTOPped process dies on SIGKILL too).
STOP_TIMEOUT_S = 2.0
KILL_WAIT_S = 1.0
# After a job's deadline its cancel byte is set; a healthy child answers "cancelled" within one token or
# prompt chunk. One that has not after this long is answered for (finish "error").
DEADLINE_GRACE_S = 0.5
WATCHDOG_TICK_S = 0.1  # how often a child with a deadline pending is looked at (it sleeps while none is)
# A child with a request past its deadline is hung when its heartbeat has not moved for STALL_S while it
# used no CPU and read nothing from disk (stopped, deadlocked, waiting forever), or for BUSY_STALL_S
# however busy it looks (spinning in native code). The heartbeat moves at every token and every
# PROMPT_CHUNK_TOKENS-token prompt chunk; the longer window leaves room for the slowest legitimate gap,
# a model's first evaluation after its load (ggml repacks weights and pages the file in: ~2 s for the
# suite's 60M-parameter slow_model, far more for a big model on a cold disk), so a ProcessEngine's child
# gets LOAD_PER_GIB_S per GiB of its model on top of BUSY_STALL_S. Where /proc cannot tell CPU and
# page-ins (not Linux), STALL_S alone decides.
STALL_S = 5.0
BUSY_STALL_S = 30.0
# A load's deadline: starting Python and importing llama.cpp take a few seconds, and loading reads the
# whole file (mmap page-ins, or a copy with n_gpu_layers); 30 s per GiB is ~35 MB/s, a slow disk or a
# network filesystem with a cold cache. Past it the load fails and its child is killed.
LOAD_BASE_S = 30.0
LOAD_PER_GIB_S = 30.0
# A model file changed under a loaded model: the restart waits until its stat has stood still this long
# (a copy or download still writing it would crash the next load too), but no longer than FILE_SETTLE_MAX_S.
FILE_SETTLE_S = 1.0
FILE_SETTLE_MAX_S = 60.0
FILE_POLL_S = 0.2
MAX_LINE_BYTES = 8192  # a line the child prints outside its log is cut here (the rest is dropped)
READ_CHUNK_BYTES = 4096
MAX_MESSAGE_BYTES = 256 << 20  # a message from the child claiming more is garbage (a result is KiBs)
REWRITTEN = "the model file was rewritten in place while it was loaded; it is loaded again once it stops changing"
_MESSAGE_SHAPES = {"ready": 1, "progress": 3, "done": 3, "failed": 4, "log": 4}  # kind -> tuple length


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 3  # this many crashes (hangs included) within window_s: give up
    window_s: float = 120.0
    first_backoff_s: float = 0.25  # doubled after each crash in the window
    max_backoff_s: float = 8.0

    def backoff(self, crashes: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** max(0, crashes - 1))


@dataclass(frozen=True)
class EngineEvent:
    """What the supervisor tells its listener (from its own threads).

    kind: "crashed" (a restart follows unless gave_up), "restarted" (the model is loaded again),
    "restart-failed" (the model could not be loaded again, e.g. its file is gone).
    cause (for "crashed"): "crash" (it died), "hang" (no progress past a deadline: killed),
    "bad-message" (it sent what cannot be read: killed), "model-file-changed" (it died while its model
    file differed from what was loaded: not counted in `crashes`, never gives up)."""

    kind: str
    reason: str
    exitcode: int | None = None
    first_in_streak: bool = False  # the first crash since the window was last clear
    gave_up: bool = False
    crashes: int = 0
    info: ModelFileInfo | None = None
    cause: str = "crash"


class _DeadlinePassed(Exception):
    """A load (or another request with a hard deadline) that did not finish in time; its child is killed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Pending:
    """A request the child has not answered yet (its future may already be answered for, at a deadline)."""

    op: str
    future: Future
    slot: int
    progress: Callable[[float], None] | None = None
    deadline: float | None = None  # time.monotonic()
    timeout_s: float = 0.0
    hard: str = ""  # past the deadline: fail with this reason and kill the child


def _settle(future: Future, result: Any = None, exc: BaseException | None = None) -> bool:
    """Resolve `future` unless something else (the reader, the watchdog, the exit) already has."""
    if future.done():
        return False
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
    except InvalidStateError:
        return False
    return True


def load_deadline_s(size_bytes: int) -> float:
    """How long loading a model file of `size_bytes` may take (see LOAD_BASE_S)."""
    return LOAD_BASE_S + LOAD_PER_GIB_S * size_bytes / (1 << 30)


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of `path`; None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def wait_until_settled(path: Path, called_off: threading.Event, quiet_s: float | None = None,
                       limit_s: float | None = None) -> bool:
    """Wait until `path`'s identity, size and mtime have not changed for `quiet_s` (at most `limit_s`);
    False if `called_off` was set meanwhile."""
    quiet_s = FILE_SETTLE_S if quiet_s is None else quiet_s
    end = time.monotonic() + (FILE_SETTLE_MAX_S if limit_s is None else limit_s)
    last, since = file_identity(path), time.monotonic()
    while time.monotonic() < end:
        if called_off.wait(FILE_POLL_S):
            return False
        now = file_identity(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
    log.warning("%s is still changing after %.0f s; loading it anyway", path, FILE_SETTLE_MAX_S)
    return not called_off.is_set()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_activity(pid: int) -> tuple[int, int] | None:
    """(CPU time in clock ticks, major page faults) of a process so far; None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
        fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": field 3 (state) on
        return int(fields[11]) + int(fields[12]), int(fields[9])  # utime + stime, majflt
    except (OSError, ValueError, IndexError):
        return None


def _worked(before: tuple[int, int] | None, after: tuple[int, int] | None) -> bool:
    """Did the process use CPU or read pages from disk between the two readings?"""
    return before is not None and after is not None and (after[0] > before[0] or after[1] > before[1])


# What llama.cpp prints on every cancelled background chunk (engine/background.py `abortable`): expected.
EXPECTED_NATIVE_LINES = ("decode: removing memory module entries for seq_id",)
# A tokenizer-only load (VocabProcess) has no training context, so llama.cpp warns on every such load.
VOCAB_ONLY_LINE = "n_ctx_train (0) -- possible training context overflow"


def forward_output(stream: BinaryIO, pid: int | str, limit: int = MAX_LINE_BYTES) -> None:
    """Lines the engine process printed outside its log (native code, a fatal error) into our log.

    Read in chunks, never a line at a time: a line longer than `limit` bytes is logged cut (at once)
    and the rest of it dropped, so a child that prints without a newline forever costs `limit` bytes."""

    def emit(data: bytearray, cut: bool) -> None:
        if text := data.decode("utf-8", "replace").rstrip():
            expected = text.startswith(EXPECTED_NATIVE_LINES) or text.endswith(VOCAB_ONLY_LINE)
            level = logging.DEBUG if expected else logging.WARNING
            log.log(level, "engine %s: %s%s", pid, text, f" [line cut at {limit} bytes]" if cut else "")

    line, cut = bytearray(), False
    with stream:
        while True:
            try:
                chunk = stream.read1(READ_CHUNK_BYTES)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            for index, part in enumerate(chunk.split(b"\n")):
                if index:  # a newline ended the line so far
                    if not cut:
                        emit(line, False)
                    line.clear()
                    cut = False
                if cut:
                    continue  # the rest of a line already logged cut
                room = limit - len(line)
                line += part[:room]
                if len(part) > room:
                    emit(line, True)
                    line.clear()
                    cut = True
    if line and not cut:
        emit(line, False)


def _bad_message(message: Any) -> str:
    """Why `message` is not one the child's protocol has ("" if it is)."""
    if not isinstance(message, tuple) or not message or _MESSAGE_SHAPES.get(message[0]) != len(message):
        return f"an unexpected message ({repr(message)[:80]})"
    if message[0] != "ready" and message[0] != "log" and not isinstance(message[1], int):
        return f"an unexpected message ({repr(message)[:80]})"
    return ""


class _Child:
    """One engine process and the requests it has not answered yet."""

    def __init__(self, on_exit: Callable[["_Child", int | None, list[Future]], None]) -> None:
        size = SLOTS + HEARTBEAT_BYTES  # cancel bytes, then the child's heartbeat counter
        flags_fd = _shared_memory_fd(size)
        self._flags = mmap.mmap(flags_fd, size)
        ours, theirs = socket.socketpair()
        self._socket = ours  # kept to shut down: a leftover fork of the child may hold the other end open
        self._conn = Connection(os.dup(ours.fileno()))  # the reader's
        # Requests go through a queue to a writer thread: the caller (the event loop) never blocks on a
        # child that reads only between jobs, a full socket buffer or a stopped child, and never pickles.
        self._out = Connection(os.dup(ours.fileno()))  # the writer's
        self._outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._on_exit = on_exit
        self._wake = threading.Event()  # the watchdog: a deadline was added, or the child is gone
        self.dead = False
        self.exit_reason = ""
        self.kill_reason, self.kill_cause = "", ""  # why we killed it, when we did
        self.stopping = False  # we asked it to go (or gave up on its load): its exit is no crash
        self.model_file: tuple[Path, tuple[int, int, int] | None] | None = None  # what it loads, as it was
        self.loaded: Future | None = None  # its load's answer (ProcessEngine.serves)
        self.busy_stall_extra_s = 0.0  # added to BUSY_STALL_S: paging its model in (see there)
        package_root = str(Path(__file__).resolve().parents[2])  # importable however the server was started
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
                   # On a GGML_ASSERT every worker thread forks a backtrace printer (gdb); those forks can
                   # deadlock each other and keep the child from dying. An abort is all we need.
                   GGML_NO_BACKTRACE="1")
        try:
            self.process = subprocess.Popen(
                # -P: the working directory (the user's project) is not on sys.path, so a project file named
                # like a standard module (secrets.py, random.py) cannot shadow it in the engine
                [sys.executable, "-P", "-m", "codegen_lsp.engine.child", str(theirs.fileno()), str(flags_fd),
                 str(os.getpid()), str(logging.getLogger().getEffectiveLevel())],
                pass_fds=(theirs.fileno(), flags_fd), stdin=subprocess.DEVNULL, env=env,
                # What native code prints comes to us, not to our stderr: a reader that never drains that
                # would block the engine mid-decode. It goes into our (never blocking) log.
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: whatever it forked goes with it
        finally:
            theirs.close()  # ours is then the only other end: EOF when the child dies
            os.close(flags_fd)
        pid = self.process.pid
        self._reader = threading.Thread(target=self._read, name=f"engine-reader-{pid}", daemon=True)
        self._reader.start()
        for target, name in ((self._write, "writer"), (self._watch, "watch"), (self._watchdog, "watchdog")):
            threading.Thread(target=target, name=f"engine-{name}-{pid}", daemon=True).start()
        if self.process.stdout is not None:
            threading.Thread(target=forward_output, args=(self.process.stdout, pid), name=f"engine-output-{pid}",
                             daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def request(self, op: str, payload: Any, future: Future, *, cancel=None,
                progress: Callable[[float], None] | None = None, timeout_s: float | None = None,
                hard: str = "") -> None:
        """Send a request; its answer resolves `future`. `timeout_s`: its deadline, from now (a "generate"
        is answered for DEADLINE_GRACE_S after it); `hard`: past the deadline, fail the request with this
        reason and kill the child instead."""
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
            deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
            self._pending[request] = _Pending(op, future, slot, progress, deadline, timeout_s or 0.0, hard)
        self._send((op, request, payload) + ((slot,) if op == "generate" else ()))
        if deadline is not None:
            self._wake.set()
        if cancel is not None:
            cancel.add_hook(lambda: self._cancel(request))

    def _cancel(self, request: int) -> None:
        with self._lock:
            pending = self._pending.get(request)
            if pending is not None:
                self._flags[pending.slot] = 1

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Cancel what runs, ask the child to exit, kill it if it has not `timeout` from now, and reap it:
        returns within about timeout + 2 * KILL_WAIT_S whatever the child does."""
        with self._lock:
            self.stopping = True
            for pending in self._pending.values():
                self._flags[pending.slot] = 1
        self._send(("close",))  # queued: nothing here waits on the child
        if not self._wait(timeout):
            self.kill()
            self._wait(KILL_WAIT_S)
        self._reader.join(KILL_WAIT_S)

    def kill(self, reason: str = "", cause: str = "") -> None:
        """SIGKILL the child's whole process group; `reason` (the first one given) becomes its exit reason."""
        if reason:
            with self._lock:
                if not self.kill_reason:
                    self.kill_reason, self.kill_cause = reason, cause
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _wait(self, timeout: float) -> bool:
        """Reap the process; False if it is still running after `timeout`."""
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _watch(self) -> None:
        """The pipe closing is not proof enough of death (a fork may hold it): the exit itself ends reading
        (and a write blocked on a stopped child's full socket)."""
        self.process.wait()
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, message: tuple | None) -> None:
        self._outbox.put(message)

    def _write(self) -> None:
        """The writer thread: pickles and sends what was queued, in order, until the child is gone."""
        broken = False
        while (message := self._outbox.get()) is not None:
            if broken:
                continue  # the child is gone: the reader fails what is pending
            try:
                data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - a request that cannot be sent fails alone
                if len(message) > 1:
                    with self._lock:
                        pending = self._pending.pop(message[1], None)
                    if pending is not None:
                        _settle(pending.future, exc=exc)
                continue
            try:
                self._out.send_bytes(data)
            except (OSError, ValueError):
                broken = True
        self._out.close()

    def _read(self) -> None:
        while True:
            try:
                data = self._conn.recv_bytes(MAX_MESSAGE_BYTES)
            except EOFError:
                break
            except OSError as exc:
                if exc.args == ("bad message length",):  # Connection's word for a length over the maximum
                    self._reject("the engine process sent an unreadable message (a length over "
                                 f"{MAX_MESSAGE_BYTES >> 20} MiB)")
                break
            try:
                message = pickle.loads(data)
            except Exception as exc:  # noqa: BLE001 - anything unpickling garbage raises
                self._reject(f"the engine process sent an unreadable message ({type(exc).__name__})")
                break
            if problem := _bad_message(message):
                self._reject(f"the engine process sent {problem}")
                break
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - the reader must outlive a listener's failure
                log.exception("engine message %r could not be handled", message[:2])
        if not self._wait(STOP_TIMEOUT_S):  # it closed its pipe but lives on: it cannot serve us any more
            self.kill()
            self._wait(KILL_WAIT_S)
        self.kill()  # anything it left behind in its process group
        with self._lock:
            self.exit_reason = self.kill_reason or describe_exit(self.process.returncode)
            self.dead = True
            pending = [p.future for p in self._pending.values()]
            self._pending.clear()
        self._wake.set()
        self._outbox.put(None)  # the writer ends
        self._conn.close()
        self._socket.close()
        self._on_exit(self, self.process.returncode, pending)

    def _reject(self, reason: str) -> None:
        """A child that sends garbage is broken: kill it (a restart replaces it)."""
        log.error("%s; killing it", reason)
        self.kill(reason, "bad-message")
        self._wait(KILL_WAIT_S)

    def _dispatch(self, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            _, level, name, text = message
            logging.getLogger(str(name)).log(level, "%s", text)
            return
        if kind == "progress":
            with self._lock:
                pending = self._pending.get(message[1])
            if pending is not None and pending.progress is not None:
                pending.progress(message[2])
            return
        if kind == "ready":
            return
        with self._lock:
            pending = self._pending.pop(message[1], None)
        if pending is None:
            return  # a request it answers after the supervisor did (at a deadline): dropped
        if kind == "done" and pending.op == "generate" and _rewritten_in_place(self):
            # Computed from weights rewritten under the mapping (or with a KV cache of the old ones): dropped.
            _settle(pending.future, exc=EngineCrashed(REWRITTEN))
        elif kind == "done":
            _settle(pending.future, message[2])
        else:
            _settle(pending.future, exc=_RemoteError(message[2], message[3]))

    def _watchdog(self) -> None:
        """Deadlines and hangs: cancel a job at its deadline, answer for it DEADLINE_GRACE_S later, fail a
        load at its deadline, and kill a child that makes no progress while a request is past its deadline."""
        pid = self.process.pid
        beat, activity = read_heartbeat(self._flags), process_activity(pid)
        beat_at = active_at = time.monotonic()
        killed = False
        while True:
            self._wake.clear()
            if self.dead:
                return
            with self._lock:
                timed = [(r, p) for r, p in self._pending.items() if p.deadline is not None]
            if not timed or killed:
                self._wake.wait()
                # Nothing was owed while no deadline was pending: progress is counted from now.
                beat, activity = read_heartbeat(self._flags), process_activity(pid)
                beat_at = active_at = time.monotonic()
                continue
            now = time.monotonic()
            if (current := read_heartbeat(self._flags)) != beat:
                beat, beat_at, active_at = current, now, now
            if _worked(activity, latest := process_activity(pid)):
                active_at = now
            activity = latest
            overdue = False
            for request, pending in timed:
                assert pending.deadline is not None
                if now < pending.deadline:
                    continue
                overdue = True
                self._flags[pending.slot] = 1  # cancel it: a healthy child answers within a token
                if pending.hard:
                    self._expire(request, pending)
                    killed = True
                elif now >= pending.deadline + DEADLINE_GRACE_S and not pending.future.done():
                    self._answer_late(pending)
            if overdue and not killed:
                busy_window = BUSY_STALL_S + self.busy_stall_extra_s
                stalled, busy = now - active_at >= STALL_S, now - beat_at >= busy_window
                if stalled or busy:
                    reason = (f"the engine made no progress for {STALL_S:g} s (hung)" if stalled else
                              f"the engine made no progress for {busy_window:.3g} s though busy (hung)")
                    log.error("engine process %s: %s; killing it", pid, reason)
                    self.kill(reason, "hang")
                    killed = True
                    continue
            self._wake.wait(WATCHDOG_TICK_S)

    @staticmethod
    def _answer_late(pending: _Pending) -> None:
        """A request past its deadline and grace gets this instead of the child's answer (dropped when it
        comes): a "generate" finish "error", anything else a TimeoutError."""
        text = f"the model did not answer within {pending.timeout_s * 1000:.0f} ms"
        log.info("engine: %s", text)
        if pending.op == "generate":
            _settle(pending.future, GenerationResult("", "error", error=text))
        else:
            _settle(pending.future, exc=TimeoutError(text))

    def _expire(self, request: int, pending: _Pending) -> None:
        """A hard deadline passed (a load): the request fails, and the child goes (its exit is no crash)."""
        with self._lock:
            self.stopping = True
            self._pending.pop(request, None)
        log.error("engine process %s: %s; killing it", self.process.pid, pending.hard)
        _settle(pending.future, exc=_DeadlinePassed(pending.hard))
        self.kill(pending.hard, "deadline")


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

    def tokenize(self, text: str, timeout: float | None = None) -> list[int]:
        return self._call("tokenize", text, timeout)

    def last_piece(self, text: str, timeout: float | None = None) -> tuple[int, bytes]:
        """How many tokens `text` takes, and the bytes of the last one (token healing over an API)."""
        return self._call("last_piece", text, timeout)

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
            _settle(future, exc=EngineCrashed(child.exit_reason or describe_exit(exitcode), exitcode))


def _shared_memory_fd(size: int) -> int:
    """An anonymous file both processes map: the cancel bytes and the heartbeat."""
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
        self._restart_call_off: threading.Event | None = None  # the planned restart's; set: called off
        self._closed = False
        self._preemption = Preemption()

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

    def serves(self, path: Path) -> bool:
        """Whether the engine process now serving has loaded `path` as it is now (same inode, size and
        mtime), or is loading it: a reload of it would load the same bytes again."""
        child = self._child
        if child is None or child.dead or child.loaded is None or child.model_file != (path, file_identity(path)):
            return False
        return not child.loaded.done() or child.loaded.exception() is None

    def submit(self, job: GenerationJob) -> Future[GenerationResult]:
        """Never blocks: the request is queued for the engine's writer thread. With `job.timeout_s` the
        future resolves by then plus DEADLINE_GRACE_S (finish "error" if the engine has not answered).
        A foreground job cancels every background job not answered yet: the engine takes it at the
        background job's next cancel check (one small prompt chunk or one token)."""
        future: Future[GenerationResult] = Future()
        self._preemption.submitted(job, future)
        child = self._child
        if child is None or self._info is None:
            future.set_exception(EngineCrashed(self._unavailable))
            return future
        if _rewritten_in_place(child):  # no whole model answers until it is loaded again
            future.set_exception(EngineCrashed(REWRITTEN))
            return future
        child.request("generate", replace(job, cancel=None), future, cancel=job.cancel, timeout_s=job.timeout_s)
        return future

    def close(self) -> None:
        """Stop the engine process (cancelling what runs) and reap it; no restart follows. Returns within
        about 3 s whatever the engine does (STOP_TIMEOUT_S)."""
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
        identity = file_identity(config.model_path)
        child.model_file = (config.model_path, identity)
        size = identity[1] if identity else 0
        limit = load_deadline_s(size)
        child.busy_stall_extra_s = LOAD_PER_GIB_S * size / (1 << 30)
        raw: Future = Future()
        child.loaded = raw
        future: Future[ModelFileInfo] = Future()
        child.request("load", config, raw, progress=progress, timeout_s=limit,
                      hard=f"the engine did not finish loading it within {limit:.0f} s ({LOAD_BASE_S:g} s + "
                           f"{LOAD_PER_GIB_S:g} s per GiB of the file); the engine process was stopped")

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
            elif isinstance(exc, _DeadlinePassed):  # its child is being killed: no crash, no restart
                with self._lock:
                    if self._child is child:
                        self._child = None
                        self._unavailable = f"{config.model_path}: {exc.reason}"
                future.set_exception(ModelFileError(config.model_path, exc.reason))
            else:
                future.set_exception(exc)

        raw.add_done_callback(loaded)
        return future

    def _on_child_exit(self, child: _Child, exitcode: int | None, pending: list[Future]) -> None:
        changed = "" if child.stopping else _model_file_changed(child)
        reason = changed or child.exit_reason or describe_exit(exitcode)
        cause = "model-file-changed" if changed else child.kill_cause or "crash"
        for future in pending:
            _settle(future, exc=EngineCrashed(reason if not child.stopping else "the engine was stopped", exitcode))
        if child.stopping:
            return
        with self._lock:
            if child is not self._child or self._closed or self._config is None:
                return
            path = self._config.model_path
            self._child, self._info = None, None
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < self._policy.window_s]
            if not changed:  # a hang counts as a crash; a file changed under the model does not
                self._crashes.append(now)
            crashes = len(self._crashes)
            gave_up = not changed and crashes >= self._policy.max_crashes
            delay = 0.0 if changed else self._policy.backoff(crashes)
            if gave_up:
                self._unavailable = (f"{reason} (gave up after {crashes} crashes within "
                                     f"{self._policy.window_s:.0f} s)")
            else:
                self._unavailable = f"{reason}; restarting"
                self._restart_call_off = called_off = threading.Event()
                threading.Thread(target=self._restart_later, args=(called_off, delay, path if changed else None),
                                 name="engine-restart", daemon=True).start()
        log.error("engine process %s ended: %s%s", child.pid, reason,
                  "; giving up" if gave_up else "; restarting once the file stops changing" if changed
                  else f"; restarting in {delay:.1f} s")
        self._emit(EngineEvent("crashed", reason, exitcode, first_in_streak=crashes == 1 and not changed,
                               gave_up=gave_up, crashes=crashes, cause=cause))

    def _restart_later(self, called_off: threading.Event, delay: float, settle: Path | None) -> None:
        """Wait `delay` (and, for a changed model file, until it stops changing), then restart."""
        if called_off.wait(delay):
            return
        if settle is not None and not wait_until_settled(settle, called_off):
            return
        self._restart(called_off)

    def _restart(self, called_off: threading.Event) -> None:
        with self._lock:
            if self._restart_call_off is not called_off or called_off.is_set():
                return  # a load, or close, came first
            self._restart_call_off = None
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
        if self._restart_call_off is not None:
            self._restart_call_off.set()
            self._restart_call_off = None

    def _emit(self, event: EngineEvent) -> None:
        try:
            self._listener(event)
        except Exception:  # noqa: BLE001 - a broken listener must not stop supervision
            log.exception("engine event listener failed")


def _model_file_changed(child: _Child) -> str:
    """Why the child's model file is not what it loaded ("" if it is)."""
    if child.model_file is None:
        return ""
    path, loaded = child.model_file
    now = file_identity(path)
    if now == loaded:
        return ""
    if now is None:
        return "the model file was removed while it was loaded"
    return "the model file changed while it was loaded"


def _rewritten_in_place(child: _Child) -> bool:
    """Whether the child's model file was written to through the inode it mapped (like `cp` over it): its
    weights are no longer what it loaded. A file replaced by rename, or deleted, leaves the mapping whole."""
    if child.model_file is None or child.model_file[1] is None:
        return False
    path, loaded = child.model_file
    now = file_identity(path)
    return now is not None and now[0] == loaded[0] and now != loaded


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future
