"""The supervisor's pieces that need no model (issue 30): the child's heartbeat in shared memory, the
bounded forwarding of what the engine process prints, telling a working process from a stopped one,
and the load deadline's scale. The engine process itself: tests/e2e/test_engine_hang.py."""

from __future__ import annotations

import logging
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

from codegen_lsp.engine import process
from codegen_lsp.engine.child import HEARTBEAT_BYTES, Heartbeat, SharedCancel, read_heartbeat
from codegen_lsp.engine.process import (MAX_LINE_BYTES, _worked, forward_output, load_deadline_s,
                                        process_activity)


def test_each_cancel_check_moves_the_heartbeat_the_server_reads():
    flags = mmap.mmap(-1, process.SLOTS + HEARTBEAT_BYTES)
    heartbeat = Heartbeat(flags)
    cancel = SharedCancel(flags, 7, heartbeat)
    seen = [read_heartbeat(flags)]
    for _ in range(3):
        assert not cancel.is_set()
        seen.append(read_heartbeat(flags))
    flags[7] = 1
    assert cancel.is_set()
    seen.append(read_heartbeat(flags))
    assert seen == [0, 1, 2, 3, 4]
    assert flags[: process.SLOTS].count(1) == 1  # the counter lives past the cancel bytes


def forward(data_parts: list[bytes], caplog: pytest.LogCaptureFixture) -> list[str]:
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with open(write_fd, "wb", buffering=0) as out:
            for part in data_parts:
                out.write(part)

    writer = threading.Thread(target=write)
    writer.start()
    with caplog.at_level(logging.WARNING, logger="codegen_lsp.engine.process"):
        forward_output(open(read_fd, "rb"), 4242)
    writer.join()
    return [r.getMessage() for r in caplog.records if r.name == "codegen_lsp.engine.process"]


def test_a_line_without_end_is_logged_cut_and_costs_no_more_than_the_cut(caplog):
    block = b"x" * (64 << 10)
    parts = [b"before\n"] + [block] * 256 + [b"\nafter\n"]  # a 16 MiB line between two short ones
    tracemalloc.start()
    try:
        messages = forward(parts, caplog)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert messages[0] == "engine 4242: before"
    assert messages[1] == f"engine 4242: {'x' * MAX_LINE_BYTES} [line cut at {MAX_LINE_BYTES} bytes]"
    assert messages[2:] == ["engine 4242: after"]
    assert peak < 2 << 20, peak  # the 16 MiB line was never held (the old `for line in stream` held it all)


def test_lines_split_across_reads_and_several_per_read_come_through_whole(caplog):
    exact = b"y" * MAX_LINE_BYTES  # as long as a line may be: not cut
    messages = forward([b"GGML_ASSERT(a", b" == b) failed\nsecond\nthi", b"rd\n", exact, b"\n", b"no newline at end"],
                       caplog)
    assert messages == ["engine 4242: GGML_ASSERT(a == b) failed", "engine 4242: second", "engine 4242: third",
                        f"engine 4242: {exact.decode()}", "engine 4242: no newline at end"]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_activity_tells_a_working_process_from_a_stopped_one():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        before = process_activity(busy.pid)
        time.sleep(0.3)
        assert _worked(before, process_activity(busy.pid))  # it burns CPU
        os.kill(busy.pid, signal.SIGSTOP)
        time.sleep(0.1)
        before = process_activity(busy.pid)
        time.sleep(0.5)
        assert not _worked(before, process_activity(busy.pid))  # stopped: no CPU, no page-ins
    finally:
        busy.kill()
        busy.wait()
    assert process_activity(busy.pid) is None  # gone


def test_a_load_gets_more_time_for_a_bigger_file():
    assert load_deadline_s(0) == process.LOAD_BASE_S
    assert load_deadline_s(4 << 30) == process.LOAD_BASE_S + 4 * process.LOAD_PER_GIB_S


def test_native_lines_we_expect_are_debug_and_the_rest_warnings(caplog):
    """A tokenizer-only load's training-context warning and a background window's cell removal say nothing
    wrong: they go to the debug log, while any other native line (and the same warning for a real model,
    which has a training context) stays a warning."""
    lines = [b"llama_context: n_ctx_seq (256) > n_ctx_train (0) -- possible training context overflow\n",
             b"decode: removing memory module entries for seq_id = 9, pos = [3, +inf)\n",
             b"llama_context: n_ctx_seq (4096) > n_ctx_train (2048) -- possible training context overflow\n",
             b"GGML_ASSERT failed\n"]
    assert forward(lines, caplog) == ["engine 4242: llama_context: n_ctx_seq (4096) > n_ctx_train (2048) -- possible "
                                      "training context overflow", "engine 4242: GGML_ASSERT failed"]
