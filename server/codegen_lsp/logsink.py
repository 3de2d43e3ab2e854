"""Logging that never blocks the server: records go through a bounded queue to one writer thread.

A client that never reads our stderr (pygls' own `LanguageClient.start_io` opens it as a pipe and leaves
it) fills the pipe after ~64 KB; a synchronous handler would then block whichever thread logged, the event
loop included, and the server stops answering. Here the writer thread is the only one that can block; when
the queue is full, records are dropped and counted, and one "N log records dropped" line is written once
the writer gets through again.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading

QUEUE_RECORDS = 4096  # ~1 KB each at worst (a formatted traceback): a few MB while the sink is stuck


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler whose enqueue never waits: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue) -> None:
        super().__init__(records)
        self._lock = threading.Lock()
        self._dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def take_dropped(self) -> int:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        return dropped


class DropReportingListener(logging.handlers.QueueListener):
    """Writes queued records to `sink`; once the queue is empty, one line saying how many were dropped
    since the last such line."""

    def __init__(self, records: queue.Queue, front: DroppingQueueHandler, sink: logging.Handler) -> None:
        super().__init__(records, sink, respect_handler_level=True)
        self.front = front

    def dequeue(self, block: bool) -> logging.LogRecord:
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            # All that was queued is written; records are dropped only while the queue is full, so they came
            # after it, and their count goes here.
            self._report_drops()
            if not block:
                raise
        return self.queue.get()

    def _report_drops(self) -> None:
        if dropped := self.front.take_dropped():
            super().handle(logging.makeLogRecord({
                "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": "%d log records dropped (the log's reader was not keeping up)", "args": (dropped,)}))

    def stop_within(self, timeout: float) -> bool:
        """Flush what is queued, but never wait longer than `timeout`: False if the sink is stuck (then
        `logging.shutdown` at exit would wait on its lock forever)."""
        thread = self._thread
        if thread is None:
            return True
        try:
            self.queue.put(self._sentinel, timeout=timeout)
        except queue.Full:
            return False
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True


def install(sink: logging.Handler, level: str, capacity: int = QUEUE_RECORDS) -> DropReportingListener:
    """Route the root logger through a bounded queue into `sink`; returns the started listener."""
    records: queue.Queue = queue.Queue(capacity)
    front = DroppingQueueHandler(records)
    listener = DropReportingListener(records, front, sink)
    root = logging.getLogger()
    root.handlers[:] = [front]
    root.setLevel(level.upper())
    listener.start()
    return listener
