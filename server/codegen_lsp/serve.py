"""Start the server over stdio or TCP, with logging set up and stdout kept for the protocol only."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def setup_logging(level: str, log_file: Path | None) -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs whole documents at INFO


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
    setup_logging(log_level, log_file)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from .app import create_server

    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io(sys.stdin.buffer, protect_stdout())
    return 0
