"""The language server: owns settings, the document store, the engine and the completion service
(completion.py); features/ registers handlers.

`app.create_server()` builds a fresh server with its handlers (no import-time singleton), so tests and
`serve` each get their own. This module imports nothing from features/ (they import it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator

from lsprotocol import types
from cattrs import transform_error
from cattrs.errors import ClassValidationError
from pygls.exceptions import (JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcMethodNotFound,
                              JsonRpcServerNotInitialized)
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

from . import __version__
from .completion import CompletionPorts, CompletionService
from .documents.positions import PositionEncoding
from .documents.store import DocumentStore
from .engine.jobs import CancelFlag, Engine
from .engine.process import EngineEvent, ProcessEngine
from .events import STATS_NOTIFICATION, STATUS_NOTIFICATION, Status, SuggestionStats
from .first_run import BUILTIN_LABEL
from .settings import Settings
from .trust import Pending

log = logging.getLogger(__name__)


# The id of the request whose handler is running; tasks started for it inherit it (contextvars).
_REQUEST_ID: ContextVar[Any] = ContextVar("codegen_lsp_request_id", default=None)

# Errors that say the client asked for something impossible: answered, and logged as one line, not a traceback.
CLIENT_MISTAKES = (JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcMethodNotFound, JsonRpcServerNotInitialized)


class CodegenProtocol(LanguageServerProtocol):
    """pygls takes the client's first encoding; we prefer utf-8 whenever it is offered (no conversion).

    pygls runs workspace/executeCommand handlers under an inner future that $/cancelRequest never
    reaches; `on_cancel_request` lets such a handler hear the cancel anyway."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cancel_callbacks: dict[Any, list[Callable[[], None]]] = {}
        self._methods: dict[Any, str] = {}  # request id -> method, while its handler runs (for log lines)

    def _handle_request(self, msg_id, method_name, params):
        token = _REQUEST_ID.set(msg_id)
        self._methods[msg_id] = method_name
        try:
            return super()._handle_request(msg_id, method_name, params)
        finally:
            _REQUEST_ID.reset(token)
            if msg_id not in self._request_futures:  # answered already (or never started)
                self._methods.pop(msg_id, None)

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls registers the future of every async or generator handler in `_request_futures`, but only a
        request's answer removes it: each notification handled through a builtin (didOpen, didChange,
        didClose...) and each handler a builtin runs left a future behind (~1 KB per message). Forget it
        once done."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda _done, msg_id=msg_id, future=future: self._forget(msg_id, future))

    def _forget(self, msg_id, future) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def _send_handler_result(self, future, *, msg_id):
        """pygls logs every error answer with a traceback (~1 KB); a client's mistake gets one line."""
        method = self._methods.pop(msg_id, "request")
        error = None if future.cancelled() else future.exception()
        if not isinstance(error, CLIENT_MISTAKES):
            return super()._send_handler_result(future, msg_id=msg_id)
        self._request_futures.pop(msg_id, None)
        self._send_response(msg_id, error=error.to_response_error())
        self._server.log_to_client(f"{method} {msg_id!r}: {error.message}", types.MessageType.Warning)

    def _handle_cancel_notification(self, msg_id):
        if msg_id in self._request_futures:  # a cancel that crossed its answer is normal, not worth a warning
            super()._handle_cancel_notification(msg_id)
        for callback in self._cancel_callbacks.pop(msg_id, []):
            callback()

    @contextlib.contextmanager
    def on_cancel_request(self, callback: Callable[[], None]) -> Iterator[None]:
        """Call `callback` if the client cancels the request being handled, while in this block."""
        msg_id = _REQUEST_ID.get()
        if msg_id is None:
            yield
            return
        self._cancel_callbacks.setdefault(msg_id, []).append(callback)
        try:
            yield
        finally:
            callbacks = self._cancel_callbacks.get(msg_id, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._cancel_callbacks.pop(msg_id, None)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        general = params.capabilities.general
        if general and general.position_encodings and types.PositionEncodingKind.Utf8 in general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf8]
        elif general and general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    def structure_message(self, data):
        """Messages whose params have the wrong shape: pygls logs a traceback and, for a request, never
        answers it (the client hangs). Here a request is answered InvalidParams and a notification is
        dropped, each with one log line."""
        if not (isinstance(data, dict) and "jsonrpc" in data and "method" in data and "error" not in data):
            return super().structure_message(data)
        is_request = "id" in data
        fallback = JsonRPCRequestMessage if is_request else JsonRPCNotification
        try:
            return self._converter.structure(data, self.get_message_type(data["method"]) or fallback)
        except Exception as exc:  # noqa: BLE001 - whatever the converter objects to is the client's mistake
            try:
                detail = "; ".join(transform_error(exc)) if isinstance(exc, ClassValidationError) else str(exc)
            except Exception:  # noqa: BLE001 - the detail is a courtesy
                detail = str(exc)
            message = f"invalid params for {data['method']}: {detail or type(exc).__name__}"
            if is_request:
                log.warning("request %r: %s", data["id"], message)
                self._send_response(data["id"], error=JsonRpcInvalidParams(message).to_response_error())
            else:
                log.warning("notification ignored: %s", message)
            return _ANSWERED

    def handle_message(self, message):
        if message is not _ANSWERED:
            super().handle_message(message)


class _Answered:
    """Stands in for a message already dealt with (a request answered with an error); handle_message skips it."""

    jsonrpc = "answered"


_ANSWERED = _Answered()


@dataclass
class ModelState:
    """What the server knows about its model, for status reports and error messages."""

    status: str = "none"  # none | loading | ready | error
    detail: str = ""
    path: Path | None = None
    remote: str | None = None  # remoteUrl of the engine that loaded it
    builtin: bool = False  # the built-in demo model (no `model` setting, local engine)
    origin: str | None = None  # where the model came from, in words (models/resolve.py)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class CodegenLanguageServer(LanguageServer):
    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__("codegen-lsp", __version__, protocol_cls=CodegenProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.settings = Settings()
        self.store = DocumentStore(PositionEncoding.UTF16)
        self.loop: asyncio.AbstractEventLoop | None = None  # set by `initialize`; engine events land here
        self.engine: Engine = engine or self.local_engine()
        self.model = ModelState()
        self.workspace_root: Path | None = None
        self.inflight: dict[str, CancelFlag] = {}  # "{uri}#synthesis" → cancel flag of its newest synthesis
        # Completions: their in-flight jobs (newest wins), caches, typing rhythm, warm-ups and speculation.
        self.completions = CompletionService(CompletionPorts(
            settings=lambda: self.settings, engine=lambda: self.engine,
            model_ready=lambda: self.model.ready.wait(),
            model_status=lambda: (self.model.status, self.model.detail),
            publish_stats=lambda stats: self.publish_stats(stats),
            log=lambda text: self.log_to_client(text, types.MessageType.Log),
            generating=lambda: self.generating_status(), spawn=lambda coro: self.spawn(coro),
            is_current=self.is_current))
        self.background: set[asyncio.Task] = set()
        self.model_watch_stop: asyncio.Event | None = None
        self.model_watch_path: Path | None = None
        self.generating = 0  # model calls in flight, for the "generating" status
        self.model_load_started = False  # set by `initialized`; settings changes before it never reload
        # A model chosen in this session without a saved setting (the first-run offer's download, or
        # `codegen-lsp.useModel`): used while the configured `model` is empty (features/lifecycle.apply_settings).
        self.model_override: str | None = None
        self.model_offer_asked = False  # the first-run offer was made in this session (features/offer.py)
        # codegen-lsp.toml values held until the person agrees (trust.py, features/trust.py), and that file.
        self.trust_pending = Pending({})
        self.workspace_file: Path | None = None

    def is_current(self, uri: str, version: int) -> bool:
        """Whether `version` of `uri` is the open document's current text."""
        return uri in self.store and self.store.get(uri).version == version

    def local_engine(self) -> ProcessEngine:
        """llama.cpp in a supervised engine process that reports crashes and restarts to us."""
        return ProcessEngine(self._engine_event_from_thread)

    def _engine_event_from_thread(self, event: EngineEvent) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_engine_event, event)

    def on_engine_event(self, event: EngineEvent) -> None:
        """The engine process crashed or came back. Documents, settings and caches are untouched;
        one showMessage per streak of crashes, the rest goes to the log and the status bar."""
        if event.kind == "crashed":
            outcome = (f"gave up after {event.crashes} crashes; fix the cause, then change a setting or "
                       f"restart the server" if event.gave_up else "restarting it")
            self.set_model_status("error", f"{event.reason}; {outcome}", crashes=event.crashes)
            if event.first_in_streak:
                self.tell_user(f"{event.reason}. {outcome[0].upper()}{outcome[1:]} (open documents and settings "
                               f"are kept).")
            else:
                self.log_to_client(f"{event.reason}; {outcome}", types.MessageType.Error)
        elif event.kind == "restarted" and event.info is not None:
            self.set_model_status("ready", self.ready_detail(event.info.name, event.info.prompt_format.value))
            self.log_to_client("the engine process was restarted; the model is loaded again")
        elif event.kind == "restart-failed":
            self.set_model_status("error", event.reason)
            self.tell_user(f"cannot load the model again after the engine crashed: {event.reason}")

    def set_model_status(self, status: str, detail: str, path: Path | None = None,
                         crashes: int | None = None) -> None:
        """Change what the server knows of its model and tell the client's status bar (`crashes`: this
        reports an engine crash, the streak's count; only this notification carries it)."""
        self.model.status, self.model.detail = status, detail
        if path is not None:
            self.model.path = path
        self.publish_status(crashes)

    def ready_detail(self, name: str, prompt_format: str) -> str:
        """The status detail of a loaded model: the built-in demo model says so."""
        return f"{BUILTIN_LABEL}: {name} ({prompt_format})" if self.model.builtin else f"{name} ({prompt_format})"

    def publish_status(self, crashes: int | None = None) -> None:
        state = "generating" if self.generating and self.model.status == "ready" else self.model.status
        path = self.model.path
        status: Status = {"state": state, "model": path.name if path else None, "detail": self.model.detail,
                          "path": str(path) if path else None, "remote": self.model.remote,
                          "crashes": crashes, "builtin": self.model.builtin, "origin": self.model.origin}
        self.protocol.notify(STATUS_NOTIFICATION, status)

    def publish_stats(self, stats: SuggestionStats) -> None:
        """One `codegenLsp/stats` notification per suggestion computed (events.py)."""
        self.protocol.notify(STATS_NOTIFICATION, stats.to_json())

    @contextlib.contextmanager
    def generating_status(self) -> Iterator[None]:
        """Marks a model call: the status reads "generating" while at least one runs."""
        self.generating += 1
        if self.generating == 1:
            self.publish_status()
        try:
            yield
        finally:
            self.generating -= 1
            if self.generating == 0:
                self.publish_status()

    def spawn(self, coro) -> asyncio.Task:
        """Fire-and-forget work whose exceptions are logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)

        def done(t: asyncio.Task) -> None:
            self.background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def tell_user(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """For what a person must act on: showMessage plus the log."""
        self.log_to_client(message, kind)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"codegen-lsp: {message}"))
