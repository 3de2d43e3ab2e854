"""`models pull` in a child process, for the server: the pull imports huggingface_hub, numpy, gguf and
torch, which must never load into the lean server process (tests/e2e/test_lean_server.py).

The child is `python -m codegen_lsp models pull NAME --json-progress` in its own session; its JSON lines
become `report(phase, fraction)` calls, its last stderr line is the error. Cancelling sends SIGINT (the
CLI cleans up its temporary files and exits 130), then SIGKILL after a grace period. Either way nothing
half-written is left at the model's path: `pull_model` writes the GGUF to a temporary file and renames
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..resources import PACKAGE_DIR

GRACE_S = 3.0

log = logging.getLogger(__name__)


class PullFailed(Exception):
    """The pull ended without a model: the child's own one-line error."""


class PullCancelled(Exception):
    pass


def pull_command(name: str, python: str = sys.executable, extra: Sequence[str] = ()) -> list[str]:
    return [python, "-m", "codegen_lsp", "models", "pull", name, "--json-progress", *extra]


def parse_line(line: str) -> dict | None:
    """One JSON object from the child's stdout, or None for anything else."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _child_env() -> dict[str, str]:
    """The server's environment (CODEGEN_LSP_CACHE, HF_ENDPOINT, proxies), with this very package first
    on PYTHONPATH so the child runs the same code as the server."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return env


async def pull_in_child(name: str, report: Callable[[str, float | None], None], cancel: asyncio.Event,
                        command: Sequence[str] | None = None) -> Path:
    """The pulled GGUF's path. Raises PullCancelled once `cancel` is set (the child is stopped first),
    PullFailed when the child fails."""
    child = await asyncio.create_subprocess_exec(
        *(command or pull_command(name)), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True, env=_child_env())
    done: dict = {}
    stderr: list[str] = []

    async def read_stdout() -> None:
        assert child.stdout is not None
        async for raw in child.stdout:
            message = parse_line(raw.decode("utf-8", "replace"))
            if message is None:
                continue
            if "done" in message:
                done.update(message)
            elif isinstance(message.get("notice"), str):  # e.g. leftovers of killed pulls removed
                log.info("models pull: %s", message["notice"])
            elif isinstance(message.get("phase"), str):
                fraction = message.get("fraction")
                report(message["phase"], float(fraction) if isinstance(fraction, (int, float)) else None)

    async def read_stderr() -> None:
        assert child.stderr is not None
        async for raw in child.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                stderr[:] = (stderr + [line])[-20:]

    readers = asyncio.gather(read_stdout(), read_stderr())
    finished = asyncio.ensure_future(child.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({finished, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        if not finished.done():
            await _stop(child, finished)
            raise PullCancelled()
        await readers
    finally:
        cancelled.cancel()
        if not finished.done():  # we were cancelled ourselves (server shutdown)
            await _stop(child, finished)
        readers.cancel()
        with contextlib.suppress(BaseException):
            await readers
    if child.returncode == 0 and isinstance(done.get("done"), str):
        return Path(done["done"])
    errors = [line for line in stderr if line.startswith("codegen-lsp: ")]
    reason = (errors or stderr or [f"exit status {child.returncode}"])[-1].removeprefix("codegen-lsp: ")
    raise PullFailed(reason.removeprefix("error: "))


async def _stop(child: asyncio.subprocess.Process, finished: asyncio.Future) -> None:
    """SIGINT to the child's process group (the CLI cleans up on KeyboardInterrupt), SIGKILL after GRACE_S."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(finished), GRACE_S)
            return
        except asyncio.TimeoutError:
            continue
