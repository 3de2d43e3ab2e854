"""The model's lifecycle as a core service: which model the settings mean, the one engine that runs it,
loading and reloading it with a deadline, readiness, and what the engine's supervisor reports (crashes,
hangs, restarts). Plain values in, ports out, like `CompletionService`; features/lifecycle.py adapts
LSP to it (settings sources, work-done progress, status notifications).

One owner: the engine (the supervised engine process, or a RemoteEngine when `remoteUrl` is set) is
created, replaced and closed here only. Every wait has a deadline: a load that does not end within
`load_deadline_s` of its file's size is reported as failed (the engine's own watchdog kills a child
that stops making progress), and `close` returns within its timeout whatever the engine does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .engine.jobs import Engine, EngineConfig
from .engine.process import EngineCrashed, EngineEvent, ProcessEngine
from .engine.process import load_deadline_s as engine_load_deadline_s
from .engine.remote import RemoteConfig, RemoteEngine
from .first_run import BUILTIN_LABEL
from .gguf.inspect import ModelFileError
from .models.resolve import ModelNotConfigured, resolve_model
from .settings import Settings

log = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info", "log"]
# The engine's supervisor fails a load past its own deadline (engine/process.py, by the file's size) with
# a clear reason; this wait is the backstop for any engine, a few seconds later.
LOAD_BACKSTOP_S = 5.0
CLOSE_TIMEOUT_S = 4.0  # `shutdown` must be answered within 5 s whatever the engine does
SETTLE_S = 1.0  # a changed model file is reloaded once its size and time stay the same this long
SETTLE_LIMIT_S = 120.0  # ... or given up on after this long (a copy that never ends)


def load_deadline_s(path: Path | None) -> float:
    """How long a load of `path` may take before the service stops waiting: it scales with the file's size."""
    try:
        size = path.stat().st_size if path is not None else 0
    except OSError:
        size = 0
    return engine_load_deadline_s(size) + LOAD_BACKSTOP_S


@dataclass
class ModelState:
    """What the server knows about its model, for status reports and error messages."""

    status: str = "none"  # none | loading | ready | error
    detail: str = ""
    path: Path | None = None
    remote: str | None = None  # remoteUrl of the engine that loaded it
    builtin: bool = False  # the built-in demo model (no `model` setting, local engine)
    origin: str | None = None  # where the model came from, in words (models/resolve.py)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set while no load is under way


@dataclass(frozen=True)
class ModelPorts:
    """settings: the current ones. publish(crashes): the state changed (crashes: this reports an engine
    crash, the streak's count). say(message, severity): a line for the client's log ("log"/"info"/
    "warning"/"error"); tell(message, severity): for what a person must act on (a message they see).
    forget_cache: answers computed with the old model are stale. progress(label): an async context for
    one load, yielding a reporter of the fraction done (or None)."""

    settings: Callable[[], Settings]
    publish: Callable[[int | None], None]
    say: Callable[[str, Severity], None]
    tell: Callable[[str, Severity], None]
    forget_cache: Callable[[], None] = lambda: None
    progress: Callable[[str], "ProgressScope"] | None = None


class ProgressScope:
    """The default progress port: reports nowhere."""

    async def __aenter__(self) -> Callable[[float], None] | None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None


class ModelService:
    def __init__(self, ports: ModelPorts, engine: Engine | None = None,
                 local_engine: Callable[[Callable[[EngineEvent], None]], Engine] | None = None,
                 remote_engine: Callable[[Callable[[str], None]], Engine] | None = None) -> None:
        self.ports = ports
        self.state = ModelState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local = local_engine or (lambda listener: ProcessEngine(listener))
        self._remote = remote_engine or (lambda report: RemoteEngine(report))
        self.engine: Engine = engine or self._local(self._event_from_thread)
        self._loads = 0  # the newest load's number: an older one that ends late changes nothing

    # -- loading ---------------------------------------------------------------------------------

    async def load(self) -> None:
        """Load (or reload) the model the settings name; the outcome is in `state` (and published)."""
        self._loop = asyncio.get_running_loop()
        self._loads += 1
        number = self._loads
        state, settings = self.state, self.ports.settings()
        state.ready.clear()
        self.ports.forget_cache()  # a new (or replaced) model answers differently
        remote = settings.remote_url
        self._choose_engine(bool(remote))
        state.remote = remote or None
        try:  # remote: a local GGUF only when `model` names one (its metadata and sentinel texts)
            resolved = resolve_model(settings.model) if settings.model or not remote else None
        except ModelNotConfigured as exc:
            state.builtin, state.origin = False, None
            self._set("error", str(exc))
            self.ports.tell(str(exc), "warning")
            state.ready.set()
            return
        path = resolved.path if resolved is not None else None
        if path is None:
            state.path = None
        state.builtin = resolved is not None and resolved.builtin
        state.origin = resolved.origin if resolved is not None else f"the inference server at {remote}"
        label = f"{path.name if path else 'model'}{f' at {remote}' if remote else ''}"
        self._set("loading", f"loading {label}", path)
        deadline = load_deadline_s(path)
        try:
            async with (self.ports.progress or (lambda _: ProgressScope()))(label) as report:
                config = _remote_config(settings, path) if remote else _engine_config(settings, path)
                info = await asyncio.wait_for(asyncio.wrap_future(self.engine.load(config, report)), deadline)
            if number == self._loads:
                self._set("ready", self.ready_detail(info.name, info.prompt_format.value))
                self.ports.say(f"model ready: {path or info.name}{f' at {remote}' if remote else ''} "
                               f"({info.architecture}, {info.prompt_format.value}); {state.origin}", "info")
        except asyncio.TimeoutError:
            if number == self._loads:
                self._set("error", f"loading {label} did not finish within {deadline:.0f} s")
                self.ports.tell(f"cannot load the model: loading {label} did not finish within {deadline:.0f} s",
                                "error")
        except ModelFileError as exc:
            if number == self._loads:
                self._set("error", str(exc))
                self.ports.tell(f"cannot load the model: {exc}", "error")
        except EngineCrashed as exc:  # the engine's own event reports it (once) and a restart follows
            if number == self._loads and state.status == "loading":
                self._set("error", f"{exc.reason}; restarting")
        finally:
            if number == self._loads:
                state.ready.set()

    def _choose_engine(self, remote: bool) -> None:
        """remoteUrl set: a RemoteEngine, else the local engine process; the old one closes in a thread."""
        if remote == isinstance(self.engine, RemoteEngine):
            return
        old = self.engine
        self.engine = self._remote(self._remote_report) if remote else self._local(self._event_from_thread)
        threading.Thread(target=old.close, name="engine-close", daemon=True).start()

    def ready_detail(self, name: str, prompt_format: str) -> str:
        """The status detail of a loaded model: the built-in demo model says so."""
        served = getattr(self.engine, "detail", "")  # a remote engine: which server, how it heals
        detail = f"{name} ({prompt_format}{f'; {served}' if served else ''})"
        return f"{BUILTIN_LABEL}: {detail}" if self.state.builtin else detail

    async def settled(self, path: Path, settle_s: float = SETTLE_S, limit_s: float = SETTLE_LIMIT_S) -> bool:
        """Whether `path` stopped changing (same size and time for `settle_s`) and its header reads whole,
        within `limit_s`: a model file being copied in place is reloaded once, when the copy is done."""
        from .gguf.header import HeaderError, read_header

        started, last = time.monotonic(), None
        while time.monotonic() - started < limit_s:
            try:
                stat = os.stat(path)
                now = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            except OSError:
                return False
            if now == last:
                try:
                    await asyncio.to_thread(read_header, path)
                    return True
                except (HeaderError, OSError):
                    pass  # still being written: wait for the next quiet period
            last = now
            await asyncio.sleep(settle_s)
        return False

    def serves(self, path: Path) -> bool:
        """Whether the engine has `path` loaded as it is now (same inode, size and mtime), or is loading it (a
        restart after a crash included): reloading it would load the same bytes again."""
        serves = getattr(self.engine, "serves", None)  # a RemoteEngine cannot tell: always reload
        return bool(serves is not None and serves(path))

    # -- the engine's supervisor -------------------------------------------------------------------

    def _event_from_thread(self, event: EngineEvent) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_engine_event, event)

    def _remote_report(self, message: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.ports.say, message, "warning")

    def on_engine_event(self, event: EngineEvent) -> None:
        """The engine process crashed, hung or came back. Documents, settings and caches are untouched;
        one message per streak of crashes, the rest goes to the log and the status."""
        if event.kind == "crashed":
            outcome = (f"gave up after {event.crashes} crashes; fix the cause, then change a setting or "
                       f"restart the server" if event.gave_up else "restarting it")
            self._set("error", f"{event.reason}; {outcome}", crashes=event.crashes)
            if event.first_in_streak:
                self.ports.tell(f"{event.reason}. {outcome[0].upper()}{outcome[1:]} (open documents and settings "
                                "are kept).", "error")
            else:
                self.ports.say(f"{event.reason}; {outcome}", "error")
        elif event.kind == "restarted" and event.info is not None:
            self._set("ready", self.ready_detail(event.info.name, event.info.prompt_format.value))
            self.ports.say("the engine process was restarted; the model is loaded again", "info")
        elif event.kind == "restart-failed":
            self._set("error", event.reason)
            self.ports.tell(f"cannot load the model again after the engine crashed: {event.reason}", "error")

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Stop the engine; True if it stopped within `timeout` (else it is left to its own kill timer)."""
        closing = asyncio.get_running_loop().run_in_executor(None, self.engine.close)
        try:
            await asyncio.wait_for(asyncio.shield(closing), timeout)
            return True
        except asyncio.TimeoutError:
            log.warning("the engine did not stop within %.0f s; not waiting for it", timeout)
            return False

    def _set(self, status: str, detail: str, path: Path | None = None, crashes: int | None = None) -> None:
        self.state.status, self.state.detail = status, detail
        if path is not None:
            self.state.path = path
        self.ports.publish(crashes)


def _engine_config(settings: Settings, path: Path) -> EngineConfig:
    return EngineConfig(path, n_ctx=settings.context_tokens, n_threads=settings.threads,
                        n_gpu_layers=settings.gpu_layers, seed=settings.seed)


def _remote_config(settings: Settings, path: Path | None) -> RemoteConfig:
    return RemoteConfig(model_path=path, n_ctx=settings.context_tokens, seed=settings.seed,
                        url=settings.remote_url or "", remote_model=settings.remote_model,
                        timeout_s=settings.remote_timeout_ms / 1000, api_key=settings.remote_api_key)

