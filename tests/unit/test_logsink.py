"""logsink: logging never waits on a stuck sink; what cannot be queued is dropped, counted and reported."""

from __future__ import annotations

import logging
import threading

import pytest

from codegen_lsp import logsink


class StuckSink(logging.Handler):
    """A handler that blocks (like a write to a full pipe) until released, then records what it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.unblock = threading.Event()
        self.entered = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entered.set()
        self.unblock.wait()
        self.lines.append(record.getMessage())


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_stuck_sink_never_blocks_the_logger_and_drops_are_counted(restore_root):
    sink = StuckSink()
    capacity, total = 50, 2000
    listener = logsink.install(sink, "info", capacity=capacity)
    log = logging.getLogger("test.logsink")
    log.info("first")  # the writer takes it and sticks in the sink
    assert sink.entered.wait(5)

    done = threading.Event()

    def storm() -> None:
        for n in range(total):
            log.info("record %d", n)
        done.set()

    threading.Thread(target=storm, daemon=True).start()
    # With a blocking handler the storm would wait on the stuck sink forever; here it finishes.
    assert done.wait(30), "logging blocked on a stuck sink"

    sink.unblock.set()
    assert listener.stop_within(10)
    records = [line for line in sink.lines if line.startswith("record ")]
    dropped_lines = [line for line in sink.lines if "log records dropped" in line]
    assert len(dropped_lines) == 1, sink.lines[-5:]
    dropped = int(dropped_lines[0].split()[0])
    assert len(records) == capacity and dropped == total - capacity
    # Those kept are the oldest, in order; the count follows them (the dropped records came after).
    assert records == [f"record {n}" for n in range(capacity)]
    assert sink.lines[0] == "first" and sink.lines[-1] == dropped_lines[0]


def test_drops_are_reported_even_when_nothing_else_is_logged(restore_root):
    sink = StuckSink()
    listener = logsink.install(sink, "info", capacity=1)
    log = logging.getLogger("test.logsink")
    log.info("first")
    assert sink.entered.wait(5)
    for n in range(10):  # one fits in the queue, nine are dropped
        log.info("record %d", n)
    sink.unblock.set()
    deadline = threading.Event()
    for _ in range(100):  # the count comes without a further record
        if any("log records dropped" in line for line in sink.lines):
            break
        deadline.wait(0.05)
    assert sink.lines == ["first", "record 0", "9 log records dropped (the log's reader was not keeping up)"]
    assert listener.stop_within(5)


def test_stop_gives_up_on_a_sink_that_never_returns(restore_root):
    sink = StuckSink()
    listener = logsink.install(sink, "info", capacity=4)
    logging.getLogger("test.logsink").info("first")
    assert sink.entered.wait(5)
    assert listener.stop_within(0.2) is False  # serve() then leaves without flushing
    sink.unblock.set()
