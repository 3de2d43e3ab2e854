"""The engine process hangs, sends garbage or loses its model file under it (issue 30): the supervisor
answers every request by its deadline, replaces the engine, and its callers never wait on it.

These drive ProcessEngine directly, with the real engine process on the suite's tiny models; a hang is
SIGSTOP. Module constants (STALL_S, LOAD_BASE_S) are lowered where the defaults would only make the test
slower."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import textwrap
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine import process
from codegen_lsp.engine.child import read_heartbeat
from codegen_lsp.engine.jobs import EngineConfig, EngineCrashed, GenerationJob
from codegen_lsp.engine.process import EngineEvent, ProcessEngine, RestartPolicy
from codegen_lsp.gguf.inspect import ModelFileError

PROMPT = [Text("def f(x):\n    ")]


class Events:
    """What the engine told its listener, in order."""

    def __init__(self) -> None:
        self.seen: list[EngineEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: EngineEvent) -> None:
        with self._changed:
            self.seen.append(event)
            self._changed.notify_all()

    def wait(self, kind: str, timeout: float, after: int = 0) -> EngineEvent:
        with self._changed:
            found = self._changed.wait_for(lambda: [e for e in self.seen[after:] if e.kind == kind], timeout)
            assert found, f"no {kind!r} event within {timeout} s: {self.seen}"
            return found[0]


@pytest.fixture
def engines():
    """Start engines (closed, and their processes gone, after the test)."""
    made: list[ProcessEngine] = []

    def start(path: Path, policy: RestartPolicy = RestartPolicy(), n_ctx: int = 512,
              load: bool = True) -> tuple[ProcessEngine, Events]:
        events = Events()
        engine = ProcessEngine(events, policy)
        made.append(engine)
        if load:
            engine.load(EngineConfig(path, n_ctx=n_ctx, n_threads=1)).result(120)
        return engine, events

    yield start
    for engine in made:
        engine.close()


@pytest.fixture
def sigstop(engines):
    """SIGSTOP a process; whatever the test did, it is killed before its engine is closed."""
    stopped: list[int] = []

    def stop(pid: int) -> None:
        stopped.append(pid)
        os.kill(pid, signal.SIGSTOP)

    yield stop
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def exists(pid: int) -> bool:
    """Running, stopped or a zombie not yet reaped."""
    return Path(f"/proc/{pid}").exists()


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def heartbeat(engine: ProcessEngine) -> int:
    return read_heartbeat(engine._child._flags)


def generating(engine: ProcessEngine, job: GenerationJob) -> Future:
    """Submit `job` and return once the engine is decoding it (its heartbeat moves)."""
    before = heartbeat(engine)
    future = engine.submit(job)
    wait_until(lambda: heartbeat(engine) > before + 5, 30, "the engine never started the job")
    assert not future.done(), future.result()
    return future


def still_serves(engine: ProcessEngine) -> None:
    result = engine.submit(GenerationJob(PROMPT, max_tokens=4, timeout_s=60)).result(90)
    assert result.finish_reason in ("end", "length", "stop", "loop"), result


def test_a_stopped_engine_is_answered_for_at_the_deadline_then_killed_and_replaced(engines, sigstop, slow_model,
                                                                                  monkeypatch):
    monkeypatch.setattr(process, "STALL_S", 2.0)
    engine, events = engines(slow_model.gguf_path, n_ctx=2048)
    still_serves(engine)  # its first evaluation (seconds of warm-up) is not what this job's deadline is for
    hung = engine.pid
    job = GenerationJob(PROMPT, max_tokens=1000, stop_on_loop=False, timeout_s=1.5)
    started = time.monotonic()
    future = generating(engine, job)
    sigstop(hung)  # mid-generation

    result = future.result(timeout=max(0.0, started + job.timeout_s + 1.0 - time.monotonic()))
    assert result.finish_reason == "error" and result.error == "the model did not answer within 1500 ms", result

    crashed = events.wait("crashed", process.STALL_S + 10)
    assert crashed.cause == "hang" and crashed.reason == "the engine made no progress for 2 s (hung)", crashed
    assert crashed.crashes == 1 and not crashed.gave_up  # a hang counts as a crash
    wait_until(lambda: not exists(hung), 5, "the stopped engine was not killed (or not reaped)")
    events.wait("restarted", 60)
    assert engine.pid not in (None, hung)
    still_serves(engine)


def test_a_slow_job_that_makes_progress_is_not_a_hang(engines, slow_model, monkeypatch):
    # Only the heartbeat may tell progress here: the CPU the job burns does not count (both windows alike).
    monkeypatch.setattr(process, "STALL_S", 0.5)
    monkeypatch.setattr(process, "BUSY_STALL_S", 0.5)
    monkeypatch.setattr(process, "LOAD_PER_GIB_S", 0.0)  # no time for paging the model in on top
    engine, events = engines(slow_model.gguf_path, n_ctx=2048)
    pid = engine.pid
    long = generating(engine, GenerationJob(PROMPT, max_tokens=1000, stop_on_loop=False))  # no deadline
    # Queued behind it, past its deadline all the while `long` decodes: the watchdog looks at the engine.
    overdue = engine.submit(GenerationJob(PROMPT, max_tokens=4, timeout_s=0.1))
    assert overdue.result(30).error == "the model did not answer within 100 ms"

    result = long.result(300)
    assert result.finish_reason == "length" and result.generated_tokens > 100, result
    # Long enough past the overdue job's deadline for a stalled engine to have been killed many times over.
    assert result.generate_seconds > 4 * process.STALL_S, result
    assert engine.pid == pid and not events.seen, events.seen
    still_serves(engine)


def test_close_returns_at_once_with_the_engine_stopped_mid_generation(engines, sigstop, slow_model):
    engine, events = engines(slow_model.gguf_path, n_ctx=2048)
    pid = engine.pid
    future = generating(engine, GenerationJob(PROMPT, max_tokens=1000, stop_on_loop=False))
    sigstop(pid)
    started = time.monotonic()
    engine.close()
    assert time.monotonic() - started < 4.0
    assert not exists(pid), "close() left the stopped engine behind"
    with pytest.raises(EngineCrashed, match="the engine was stopped"):
        future.result(5)
    assert not events.seen


def test_a_load_past_its_deadline_fails_stops_the_engine_and_is_no_crash(engines, sigstop, tiny_codegen1, monkeypatch):
    monkeypatch.setattr(process, "LOAD_BASE_S", 1.0)
    monkeypatch.setattr(process, "LOAD_PER_GIB_S", 0.0)
    engine, events = engines(tiny_codegen1.gguf_path, load=False)
    started = time.monotonic()
    loading = engine.load(EngineConfig(tiny_codegen1.gguf_path, n_ctx=256, n_threads=1))
    pid = engine.pid
    sigstop(pid)  # it never gets to load

    with pytest.raises(ModelFileError, match=r"did not finish loading it within 1 s \(1 s \+ 0 s per GiB"):
        loading.result(timeout=3.0)
    assert time.monotonic() - started < 3.0
    wait_until(lambda: not exists(pid), 5, "the engine that did not load was not killed")
    time.sleep(0.5)
    assert engine.pid is None and not events.seen, events.seen  # no crash, no restart
    with pytest.raises(EngineCrashed, match="did not finish loading it"):
        engine.submit(GenerationJob(PROMPT, max_tokens=4)).result(5)

    monkeypatch.setattr(process, "LOAD_BASE_S", 60.0)
    engine.load(EngineConfig(tiny_codegen1.gguf_path, n_ctx=256, n_threads=1)).result(120)
    still_serves(engine)


def test_a_crash_after_the_model_file_changed_is_not_counted_and_waits_for_the_file(engines, tiny_codegen1,
                                                                                     tmp_path):
    model = tmp_path / "model.gguf"
    shutil.copyfile(tiny_codegen1.gguf_path, model)
    # One counted crash would be enough to give up.
    engine, events = engines(model, policy=RestartPolicy(max_crashes=1))
    pid = engine.pid
    mtime = model.stat().st_mtime_ns
    os.utime(model, ns=(mtime, mtime + 1_000_000_000))  # rewritten in place, as far as stat can tell

    touching, restarted_while_changing = threading.Event(), []

    def keep_changing() -> None:  # a copy still writing it: the restart must wait until it is done
        for step in range(2, 10):
            os.utime(model, ns=(mtime, mtime + step * 1_000_000_000))
            if engine.pid not in (None, pid):
                restarted_while_changing.append(engine.pid)
            time.sleep(0.3)
        touching.set()

    changer = threading.Thread(target=keep_changing)
    changer.start()
    os.kill(pid, signal.SIGBUS)  # what touching a mapped page that is gone does
    crashed = events.wait("crashed", 10)
    assert crashed.reason == "the model file changed while it was loaded", crashed
    assert crashed.cause == "model-file-changed" and crashed.crashes == 0 and not crashed.gave_up, crashed
    changer.join()
    assert not restarted_while_changing, "the engine was restarted while its model file was still changing"
    events.wait("restarted", 60)
    assert engine.pid not in (None, pid)
    still_serves(engine)


def test_submit_never_blocks_on_a_stopped_engine_with_its_socket_full(engines, sigstop, tiny_codegen1):
    engine, events = engines(tiny_codegen1.gguf_path)
    pid = engine.pid
    sigstop(pid)
    futures: list[Future] = []
    big = [Text("x" * (8 << 20))]  # 4 x 8 MiB: far more than a socket buffer holds

    def submit_all() -> None:
        for _ in range(4):
            futures.append(engine.submit(GenerationJob(big, max_tokens=1)))

    submitter = threading.Thread(target=submit_all, daemon=True)
    submitter.start()
    submitter.join(10)
    assert not submitter.is_alive(), "submit() blocked on the stopped engine"
    assert len(futures) == 4 and not any(f.done() for f in futures)

    started = time.monotonic()
    engine.close()
    assert time.monotonic() - started < 4.0 and not exists(pid)
    for future in futures:
        with pytest.raises(EngineCrashed):
            future.result(5)


SITECUSTOMIZE = """
    # Test only (tests/e2e/test_engine_hang.py): an engine process writes TRIGGER's bytes to the server as a
    # message of its own, once (the first process to take the trigger file).
    import os, struct, sys, threading, time

    def _inject(fd, trigger):
        while True:
            try:
                os.rename(trigger, trigger + ".taken")
                break
            except FileNotFoundError:
                time.sleep(0.02)
        with open(trigger + ".taken", "rb") as f:
            payload = f.read()
        os.write(fd, struct.pack("!i", len(payload)) + payload)

    _argv = open("/proc/self/cmdline", "rb").read().split(b"\\0")
    if b"codegen_lsp.engine.child" in _argv:
        _fd = int(_argv[_argv.index(b"codegen_lsp.engine.child") + 1])
        threading.Thread(target=_inject, args=(_fd, os.environ["CODEGEN_LSP_TEST_TRIGGER"]), daemon=True).start()
"""


@pytest.mark.parametrize("payload, reason", [
    (b"\x80\x04\x95garbage", "the engine process sent an unreadable message (UnpicklingError)"),
    (pickle.dumps(("hello", 1)), "the engine process sent an unexpected message (('hello', 1))"),
    (pickle.dumps(("done", "not a request id", None)), "the engine process sent an unexpected message"),
], ids=["unpicklable", "unknown-kind", "bad-shape"])
def test_an_engine_that_sends_garbage_is_killed_and_replaced(engines, tiny_codegen1, tmp_path, monkeypatch,
                                                             payload: bytes, reason: str):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    trigger = tmp_path / "trigger"
    monkeypatch.setenv("PYTHONPATH", str(hooks))  # the engine processes' only (their package goes first)
    monkeypatch.setenv("CODEGEN_LSP_TEST_TRIGGER", str(trigger))
    engine, events = engines(tiny_codegen1.gguf_path)
    pid = engine.pid
    still_serves(engine)

    (tmp_path / "payload").write_bytes(payload)
    os.rename(tmp_path / "payload", trigger)
    crashed = events.wait("crashed", 10)
    assert crashed.cause == "bad-message" and crashed.reason.startswith(reason), crashed
    assert not exists(pid)
    events.wait("restarted", 60)
    assert engine.pid not in (None, pid)
    still_serves(engine)
