"""The language server: owns settings, the document store, the engine and the completion service
(completion.py); features/ registers handlers.

`app.create_server()` builds a fresh server with its handlers (no import-time singleton), so tests and
`serve` each get their own. This module imports nothing from features/ (they import it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from contextvars import ContextVar
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

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
from .model_service import ModelPorts, ModelService, ModelState, Severity
from .events import EXCLUSION_NOTIFICATION, STATS_NOTIFICATION, STATUS_NOTIFICATION, Status, SuggestionStats
from .exclusion import Exclusion
from .gitignore import GitIgnored
from .settings import Settings
from .trust import Pending

log = logging.getLogger(__name__)

_MESSAGE_TYPES = {"error": types.MessageType.Error, "warning": types.MessageType.Warning,
                  "info": types.MessageType.Info, "log": types.MessageType.Log}


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


class WorkDone:
    """A work-done progress that began (`CodegenLanguageServer.work_done`): report, say how it ended, and
    `cancelled`, the future the client's cancel resolves."""

    def __init__(self, ls: "CodegenLanguageServer", token: str) -> None:
        self.ls, self.token, self.end_message = ls, token, ""

    def report(self, percentage: int | None, message: str) -> None:
        self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(percentage=percentage,
                                                                                    message=message))

    @property
    def cancelled(self) -> asyncio.Future:
        return self.ls.work_done_progress.tokens[self.token]


class CodegenLanguageServer(LanguageServer):
    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__("codegen-lsp", __version__, protocol_cls=CodegenProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.settings = Settings()
        self.store = DocumentStore(PositionEncoding.UTF16)
        self.loop: asyncio.AbstractEventLoop | None = None  # set by `initialize`
        # The model's lifecycle and its one engine (model_service.py); `engine` and `model` read through.
        self.models = ModelService(ModelPorts(
            settings=lambda: self.settings, publish=self.publish_status, say=self._say, tell=self._tell,
            forget_cache=lambda: self.completions.forget_cache(), progress=self.load_progress), engine)
        self.workspace_root: Path | None = None
        self.inflight: dict[str, CancelFlag] = {}  # "{uri}#synthesis" → cancel flag of its newest synthesis
        # Which documents never reach a model (exclusion.py): the built-in globs until the settings and the
        # workspace root are known (configure_exclusion); what each open document's client was told of it.
        self.exclusion = Exclusion()
        self._exclusion_key: tuple | None = None
        self._gitignored: GitIgnored | None = None
        self.exclusion_told: dict[str, str] = {}  # open uri → the rule the client was told excludes it
        # Completions: their in-flight jobs (newest wins), caches, typing rhythm, warm-ups and speculation.
        self.completions = CompletionService(CompletionPorts(
            settings=lambda: self.settings, engine=lambda: self.engine,
            model_ready=lambda: self.model.ready.wait(),
            model_status=lambda: (self.model.status, self.model.detail),
            publish_stats=lambda stats: self.publish_stats(stats),
            log=lambda text: self.log_to_client(text, types.MessageType.Log),
            generating=lambda: self.generating_status(), spawn=lambda coro: self.spawn(coro),
            is_current=self.is_current, excluded=self.excluded))
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

    def excluded(self, uri: str, language: str) -> str | None:
        """The rule that keeps `uri` from every model, or None (the completion core's and synthesis' one
        check). An open document's client hears of it (`codegenLsp/exclusion`) when that changes, and a
        synthesis running for it stops."""
        rule = self.exclusion.reason_for(uri, language)
        if rule is not None and (flag := self.inflight.get(f"{uri}#synthesis")) is not None:
            flag.set()
        if uri in self.store and self.exclusion_told.get(uri) != rule:
            if rule is None:
                del self.exclusion_told[uri]
                self.log_to_client(f"{uri} is no longer excluded", types.MessageType.Log)
            else:
                self.exclusion_told[uri] = rule
                self.log_to_client(f"{uri}: excluded ({rule}): nothing of it reaches a model", types.MessageType.Log)
            self.protocol.notify(EXCLUSION_NOTIFICATION, {"uri": uri, "reason": rule})
        return rule

    def configure_exclusion(self) -> None:
        """Rebuild the exclusion rules when their settings or the workspace root changed, then check every open
        document (git asked once for all of them) and purge what is held of the ones excluded now."""
        s, root = self.settings, self.workspace_root
        key = (tuple(s.exclude), s.respect_gitignore, tuple(s.disabled_languages), root)
        if key == self._exclusion_key:
            return
        self._exclusion_key = key
        if root is None or not s.respect_gitignore:
            self._gitignored = None
        elif self._gitignored is None or self._gitignored.root != os.fspath(root):  # kept: it says things once
            self._gitignored = GitIgnored(root, lambda text: self.log_to_client(text, types.MessageType.Info))
        self.exclusion = Exclusion(s.exclude, s.disabled_languages, root, self._gitignored)
        open_documents = {uri: self.store.get(uri).language_id for uri in self.store.uris()}
        self.exclusion.prime(open_documents)
        self.completions.recheck(open_documents)

    @property
    def engine(self) -> Engine:
        return self.models.engine

    @property
    def model(self) -> ModelState:
        return self.models.state

    def _say(self, message: str, severity: Severity) -> None:
        self.log_to_client(message, _MESSAGE_TYPES[severity])

    def _tell(self, message: str, severity: Severity) -> None:
        self.tell_user(message, _MESSAGE_TYPES[severity])

    @contextlib.asynccontextmanager
    async def load_progress(self, label: str) -> AsyncIterator[Callable[[float], None] | None]:
        """$/progress for a model load, where the client takes it: a reporter of the fraction done (from the
        engine's threads; at most one report per 10 %), or None."""
        async with self.work_done("codegen-lsp", f"loading {label}") as progress:
            if progress is None:
                yield None
                return
            last = [-1]
            loop = asyncio.get_running_loop()

            def report(fraction: float) -> None:
                percent = int(fraction * 100)
                if percent // 10 == last[0] // 10 and percent < 100:
                    return
                last[0] = percent
                loop.call_soon_threadsafe(progress.report, percent, f"loading {percent}%")

            try:
                yield report
            finally:
                progress.end_message = self.model.status

    @contextlib.asynccontextmanager
    async def work_done(self, title: str, message: str, cancellable: bool = False,
                        percentage: int | None = None) -> AsyncIterator["WorkDone | None"]:
        """One work-done progress (`window/workDoneProgress/create`, begin, end), where the client takes it;
        None when it does not."""
        window = self.client_capabilities.window
        progress = WorkDone(self, str(uuid.uuid4()))
        try:
            if not (window and window.work_done_progress):
                raise LookupError("the client does not do work-done progress")
            await asyncio.wait_for(self.work_done_progress.create_async(progress.token), 5)
            self.work_done_progress.begin(progress.token, types.WorkDoneProgressBegin(
                title=title, message=message, cancellable=cancellable, percentage=percentage))
        except Exception:  # noqa: BLE001 - a client that refuses progress still gets the work done
            yield None
            return
        try:
            yield progress
        finally:
            self.work_done_progress.end(progress.token, types.WorkDoneProgressEnd(message=progress.end_message))
            self.work_done_progress.tokens.pop(progress.token, None)

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
