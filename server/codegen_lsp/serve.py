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


class ServeError(Exception):
    """A `serve` that cannot start: one line for stderr, exit 2."""


def tcp_address(tcp: str, allow_remote: bool) -> tuple[str, int]:
    host, _, port = tcp.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise ServeError(f"--tcp {tcp!r}: expected HOST:PORT")
    from .tcp import is_loopback

    if not is_loopback(host):
        if not allow_remote:
            raise ServeError(f"--tcp {tcp!r}: {host} is not a loopback address; anyone who reaches it could use "
                             "this server (pass --allow-remote to mean it)")
        print(f"codegen-lsp: warning: listening on {host}, reachable from other machines; the token is all that "
              "keeps them out, and the protocol is not encrypted", file=sys.stderr, flush=True)
    return host, int(port)


def serve(tcp: str | None = None, log_level: str = "info", log_file: Path | None = None,
          allow_remote: bool = False, token_file: Path | None = None) -> int:
    if tcp:
        from .tcp import resolve_token

        try:
            address = tcp_address(tcp, allow_remote)
            token = resolve_token(token_file)
        except (ServeError, OSError, ValueError) as exc:
            print(f"codegen-lsp serve: {exc}", file=sys.stderr)
            return 2
    listener = setup_logging(log_level, log_file)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from .app import create_server

    server = create_server()
    code: int | str | None = 0
    try:
        if tcp:
            from .tcp import start_tcp

            start_tcp(server, *address, token)
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
