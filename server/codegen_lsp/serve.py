"""Start the server over stdio or TCP, with logging set up and stdout kept for the protocol only."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from . import logsink


def setup_logging(level: str, log_file: Path | None) -> logsink.DropReportingListener:
    """Log to `log_file` or stderr through logsink's queue: a client that never reads our stderr cannot
    stall request handling (records are dropped and counted instead)."""
    sink: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = logsink.install(sink, level)
    logging.captureWarnings(True)  # warnings.warn would write to stderr directly
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs whole documents at INFO
    return listener


def protect_stdout():
    """Keep the protocol on a private copy of fd 1 and point fd 1 at stderr, so nothing a native
    library prints (llama.cpp while loading, for one) can corrupt the JSON-RPC stream."""
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_out


# Engine results reach the event loop through a reader thread; by default a thread waits up to 5 ms for
# the GIL while the loop runs Python code (parsing, post-processing), which showed on short suggestions.
SWITCH_INTERVAL_S = 0.001


def serve(tcp: str | None = None, log_level: str = "info", log_file: Path | None = None) -> int:
    listener = setup_logging(log_level, log_file)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from .app import create_server

    server = create_server()
    code: int | str | None = 0
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            server.start_io(sys.stdin.buffer, protect_stdout())
    except SystemExit as exc:  # pygls' `exit` handler
        code = exc.code
        raise
    finally:
        if not listener.stop_within(1.0):
            # Nobody reads our stderr: flushing the log at exit would wait forever, so leave without it.
            os._exit(code if isinstance(code, int) else 1)
    return 0
