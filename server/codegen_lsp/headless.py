"""Headless use: start the server as a subprocess and speak LSP to it (`codegen-lsp complete`,
`codegen-lsp synthesize`, the MTPB benchmark)."""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

from .events import STATS_NOTIFICATION, STATUS_FIELDS, STATUS_NOTIFICATION, SuggestionStats
from .syntax import language_table

T = TypeVar("T")

LANGUAGE_BY_SUFFIX = language_table.LANGUAGE_BY_SUFFIX  # suffix -> LSP languageId


def client_capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )


class ServerModelError(Exception):
    """The server could not load its model, or stopped before it did; the server's own message."""


class ServerRequestError(Exception):
    """A request failed: the server answered it with an error, exited, or its model failed while answering."""


async def start_session(root: Path, options: dict, log_level: str = "warning",
                        echo_log: Callable[[str], bool] | None = None, show_messages: bool = True,
                        log_file: Path | None = None) -> LanguageClient:
    """A started, initialized server. Its `codegenLsp/status` notifications collect in `client.statuses`
    (dicts), its `codegenLsp/stats` in `client.stats` (events.SuggestionStats), its window/logMessage texts in
    `client.server_log` (for people: nothing parses them) and the last 200 lines of its stderr in
    `client.server_stderr` (always read: a full pipe would stall a server that logged synchronously); with
    `log_file` the server logs there instead; log texts that `echo_log` accepts are also printed to stderr, and so are
    showMessage texts if `show_messages`."""
    logging.getLogger("pygls").setLevel(logging.ERROR)  # the client logs every notification it ignores
    client = LanguageClient("codegen-lsp-headless", "1")
    server_log: list[str] = []
    statuses: list[dict] = []
    stats: list[SuggestionStats] = []
    client.server_log = server_log  # type: ignore[attr-defined]
    client.statuses = statuses  # type: ignore[attr-defined]
    client.stats = stats  # type: ignore[attr-defined]
    client.show_messages = show_messages  # type: ignore[attr-defined]
    client.held_messages = None  # type: ignore[attr-defined]  # a list while they are held back (ready_session)
    client.server_stderr = collections.deque(maxlen=200)  # type: ignore[attr-defined]

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(params: types.LogMessageParams):
        server_log.append(params.message)
        if echo_log is not None and echo_log(params.message):
            print(params.message, file=sys.stderr)

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _progress(params):  # accept the server's progress tokens
        return None

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def _show(params: types.ShowMessageParams):
        if client.held_messages is not None:  # type: ignore[attr-defined]
            client.held_messages.append((params.type, params.message))  # type: ignore[attr-defined]
        elif client.show_messages:  # type: ignore[attr-defined]
            print(params.message, file=sys.stderr)

    @client.feature(STATUS_NOTIFICATION)
    def _status(params):
        statuses.append({key: getattr(params, key, None) for key in STATUS_FIELDS})

    @client.feature(STATS_NOTIFICATION)
    def _stats(params):
        stats.append(SuggestionStats.from_json(params))

    command = [sys.executable, "-P", "-m", "codegen_lsp", "serve", "--log-level", log_level]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    await client.start_io(*command)
    client.stderr_task = asyncio.create_task(_drain_stderr(client))  # type: ignore[attr-defined]
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=client_capabilities(), root_uri=root.resolve().as_uri(),
            # No first-run offer: this client declares no window/showMessageRequest support anyway, and says so.
            initialization_options={"offerModelDownload": False, **options}))
    except (JsonRpcException, RuntimeError) as exc:
        await _abandon(client)
        raise ServerModelError(f"the server did not start: {_failure(client, exc)}") from None
    client.initialized(types.InitializedParams())
    return client


async def _drain_stderr(client: LanguageClient) -> None:
    """Read the server's stderr (a pipe nobody else reads: a full one would block the server) and
    keep its last lines for error messages."""
    stream = client._server.stderr if client._server is not None else None  # type: ignore[attr-defined]
    if stream is None:
        return
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            client.server_stderr.append(text)  # type: ignore[attr-defined]


def _server_exit_status(client: LanguageClient) -> int | None:
    server = getattr(client, "_server", None)
    return None if server is None else server.returncode


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _last_error_line(client: LanguageClient) -> str | None:
    """The server's last stderr line that reads like an exception (`Name: message`) or a fatal error."""
    for text in reversed([line.strip() for line in client.server_stderr]):  # type: ignore[attr-defined]
        if re.match(r"[A-Za-z_][\w.]*: \S", text) or "GGML_ASSERT" in text or "Fatal Python error" in text:
            return text  # log lines start with their date: never taken for an exception
    return None


def _failure(client: LanguageClient, exc: BaseException | None = None) -> str:
    """One line saying why the server could not answer."""
    returncode = _server_exit_status(client)
    if returncode is not None:
        last = _last_error_line(client)
        return f"the server exited ({_describe_exit(returncode)})" + (f": {last}" if last else "")
    if isinstance(exc, JsonRpcException):
        message = str(exc.message or exc).strip().splitlines()
        return f"the server answered with an error: {message[0] if message else type(exc).__name__}"
    return str(exc) if exc is not None else "no answer from the server"


async def model_outcome(client: LanguageClient, timeout: float = 300) -> dict:
    """Wait until the server says whether its model loaded: its first `codegenLsp/status` whose state is
    "ready" or "error". Raises ServerModelError if the server exits first or says nothing within `timeout`
    seconds."""
    async def poll() -> dict:
        while True:
            for status in client.statuses:  # type: ignore[attr-defined]
                if status["state"] in ("ready", "error"):
                    return status
            if _server_exit_status(client) is not None:
                raise ServerModelError(f"{_failure(client)} before its model was ready")
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise ServerModelError(f"the server did not load its model within {timeout:.0f} s") from None


async def ready_session(root: Path, options: dict, hold_messages: bool = False, **session_options) -> LanguageClient:
    """start_session, then wait for the model: raises ServerModelError (server stopped) if it failed.
    The server's showMessages are held back meanwhile, and the ones that restate the failure dropped: the
    error says it once. With `hold_messages` they stay held until `release_messages`."""
    client = await start_session(root, options, **session_options)
    client.held_messages = []  # type: ignore[attr-defined]
    try:
        outcome = await model_outcome(client)
    except ServerModelError as exc:
        await _abandon(client)
        release_messages(client, str(exc))
        raise
    if outcome["state"] != "ready":
        failure = f"cannot load the model: {outcome['detail'] or 'unknown reason'}"
        await stop_session(client)
        release_messages(client, failure)
        raise ServerModelError(failure)
    if not hold_messages:
        release_messages(client)
    return client


def release_messages(client: LanguageClient, failure: str | None = None) -> None:
    """Print the held showMessages (if the session shows them), except, when the command failed with
    `failure`, errors and messages that say the same: the command's own error line says it once."""
    held = client.held_messages or []  # type: ignore[attr-defined]
    client.held_messages = None  # type: ignore[attr-defined]
    if not client.show_messages:  # type: ignore[attr-defined]
        return
    for kind, message in held:
        if failure is not None and (kind == types.MessageType.Error or _same_failure(message, failure)):
            continue
        print(message, file=sys.stderr)


def _same_failure(message: str, failure: str) -> bool:
    core = message.removeprefix("codegen-lsp: ").removeprefix("cannot load the model: ").strip()
    return core in failure or failure.removeprefix("cannot load the model: ") in message


async def answer(client: LanguageClient, request: Awaitable[T], what: str) -> T:
    """The server's answer to `request`; ServerRequestError (one line) when it answered with an error,
    exited, or reported its model failed (`codegenLsp/status` error) while answering."""
    since = len(client.statuses)  # type: ignore[attr-defined]
    try:
        result = await request
    except (JsonRpcException, RuntimeError) as exc:  # RuntimeError: pygls fails pending requests when the server exits
        if isinstance(exc, RuntimeError) and _server_exit_status(client) is None:
            raise
        raise ServerRequestError(f"{what} failed: {_failure(client, exc)}") from None
    raise_if_model_failed(client, since, what)
    return result


def raise_if_model_failed(client: LanguageClient, since: int, what: str) -> None:
    """ServerRequestError if the server reported its model failed (a `codegenLsp/status` error) after
    its first `since` statuses (and, once the session is stopped, before its shutdown answer)."""
    statuses = client.statuses[since:getattr(client, "statuses_at_stop", None)]  # type: ignore[attr-defined]
    failed = next((s for s in statuses if s["state"] == "error"), None)
    if failed is not None:
        raise ServerRequestError(f"{what} failed: the model failed while answering: "
                                 f"{failed['detail'] or 'unknown reason'}")


async def inline_at(client: LanguageClient, uri: str, line: int, character: int) -> str:
    """The inline suggestion at a position of an open document ("" when none), asked as typing asks
    (Automatic: one suggestion, the caches apply)."""
    result = await answer(client, client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))),
        "the inline completion request")
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return str(items[0].insert_text) if items else ""


async def stop_session(client: LanguageClient) -> None:
    """shutdown + exit, then wait for the server (and its stderr) to end; a server that already exited,
    or a session already stopped, is fine."""
    if getattr(client, "statuses_at_stop", None) is not None:
        return
    if _server_exit_status(client) is None:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
        except (JsonRpcException, RuntimeError, asyncio.TimeoutError):
            pass
    # What the server reported before it answered shutdown (a model that failed during the last request
    # is reported by then), not what it says while shutting its engine down.
    client.statuses_at_stop = len(client.statuses)  # type: ignore[attr-defined]
    await _abandon(client, grace=30)


async def _abandon(client: LanguageClient, grace: float = 0) -> None:
    """Stop the client; kill a server still running after `grace` seconds (0: at once)."""
    server = getattr(client, "_server", None)
    if server is not None and server.returncode is None:
        try:
            await asyncio.wait_for(server.wait(), grace)
        except asyncio.TimeoutError:
            server.kill()
    await client.stop()
    task = getattr(client, "stderr_task", None)
    if task is not None:
        try:
            await asyncio.wait_for(task, 2)
        except asyncio.TimeoutError:  # a grandchild still holds the pipe
            pass


def open_file(client: LanguageClient, path: Path, announce: bool = True) -> tuple[str, str]:
    """Read `path` (UTF-8) and, with `announce`, send didOpen for it."""
    try:
        text = path.read_bytes().decode("utf-8")  # not read_text: keep "\r\n" as it is
    except UnicodeDecodeError:
        raise SystemExit(f"codegen-lsp: error: {path}: not UTF-8 text") from None
    uri = path.resolve().as_uri()
    if not announce:
        return uri, text
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=LANGUAGE_BY_SUFFIX.get(path.suffix, "plaintext"), version=1, text=text)))
    return uri, text


def _log_options(server_log: Path | None) -> dict:
    """A server log file the user asked for holds the per-request lines too (INFO)."""
    return {} if server_log is None else {"log_file": server_log, "log_level": "info"}


async def complete(path: Path, line: int, character: int, options: dict, server_log: Path | None = None,
                   show_model: bool = False) -> str:
    client = await ready_session(path.parent, options, hold_messages=True, **_log_options(server_log))
    if show_model:
        ready = next(s for s in client.statuses if s["state"] == "ready")  # type: ignore[attr-defined]
        print(f"codegen-lsp: model {ready['model']}: {ready['origin'] or 'unknown origin'}", file=sys.stderr)

    async def work() -> str:
        uri, _ = open_file(client, path)
        text = await inline_at(client, uri, line, character)
        # The stats of the request came before its answer: an excluded file (exclude, .gitignore,
        # disabledLanguages) says so, as the editors' status does, instead of an unexplained empty line.
        for stats in client.stats:  # type: ignore[attr-defined]
            if stats.uri == uri and stats.kind == "request" and stats.reason.startswith("excluded ("):
                print(f"codegen-lsp: {path}: off for this file ({stats.reason[len('excluded ('):-1]}); nothing "
                      "of it was sent to the model", file=sys.stderr)
        return text

    return await _one_answer(client, work, "the inline completion request")


async def _one_answer(client: LanguageClient, work: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `work` in a ready session, then stop the server: a model failure while answering is an error
    (reported after the answer), and the held showMessages are released once, minus the one it restates."""
    since = len(client.statuses)  # type: ignore[attr-defined]
    failure: str | None = None
    try:
        result = await work()
        await stop_session(client)
        raise_if_model_failed(client, since, what)
        return result
    except ServerRequestError as exc:
        failure = str(exc)
        raise
    finally:
        await stop_session(client)
        release_messages(client, failure)


def run_complete(path: Path, line: int, character: int, options: dict, server_log: Path | None = None,
                 show_model: bool = False) -> int:
    if not path.is_file():
        raise SystemExit(f"codegen-lsp: error: {path}: file not found")
    print(asyncio.run(complete(path, line, character, options, server_log, show_model)))
    return 0


# -- synthesize ------------------------------------------------------------------------------------

def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions, as this client negotiates) to `text`."""
    from .documents.positions import LineIndex, Pos, PositionEncoding

    index = LineIndex(text)
    spans = [(index.codepoint_offset(Pos(e.range.start.line, e.range.start.character), PositionEncoding.UTF16),
              index.codepoint_offset(Pos(e.range.end.line, e.range.end.character), PositionEncoding.UTF16), e.new_text)
             for e in edits]
    result = index.text
    for start, end, new_text in sorted(spans, key=lambda s: s[0], reverse=True):
        result = result[:start] + new_text + result[end:]
    return result


def whole_lines(text: str, first: int | None = None, last: int | None = None) -> types.Range:
    """A selection of lines first..last (1-based, inclusive; default: the whole text)."""
    lines = text.split("\n")
    first, last = first or 1, min(last or len(lines), len(lines))
    end_line = lines[last - 1]
    return types.Range(start=types.Position(line=first - 1, character=0),
                       end=types.Position(line=last - 1, character=len(end_line.encode("utf-16-le")) // 2))


async def synthesize_in_session(client: LanguageClient, uri: str, text: str, language: str,
                                selection: types.Range | None = None) -> str | None:
    """Open `text` as `uri`, run "Synthesize from comments" over the selection (default: all of it)
    through codeAction + codeAction/resolve, close it; the new text, or None when nothing changed."""
    from .features.synthesize import SYNTHESIZE, SYNTHESIZE_KIND

    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=language, version=1, text=text)))
    try:
        actions = await answer(client, client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=selection or whole_lines(text),
            context=types.CodeActionContext(diagnostics=[], only=[SYNTHESIZE_KIND]))), "the code action request")
        action = next((a for a in actions or [] if isinstance(a, types.CodeAction) and a.title == SYNTHESIZE), None)
        if action is None:
            return None
        resolved = await answer(client, client.code_action_resolve_async(action), "synthesis (codeAction/resolve)")
        if resolved.edit is None or not resolved.edit.document_changes:
            return None
        change = resolved.edit.document_changes[0]
        return apply_text_edits(text, list(change.edits))  # type: ignore[union-attr]
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))


async def synthesize(path: Path, text: str, line_range: tuple[int, int] | None, options: dict,
                     server_log: Path | None = None) -> str | None:
    """`text` (what the caller read from `path`) with the code under its comments written, or None."""
    client = await ready_session(path.parent, options, hold_messages=True, **_log_options(server_log),
                                 echo_log=lambda m: m.startswith("synthesis turn"))

    async def work() -> str | None:
        selection = whole_lines(text, *line_range) if line_range else None
        language = LANGUAGE_BY_SUFFIX.get(path.suffix, "plaintext")
        return await synthesize_in_session(client, path.resolve().as_uri(), text, language, selection)

    return await _one_answer(client, work, "synthesis")


def parse_line_range(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    first, sep, last = spec.partition(":")
    try:
        start, end = int(first), int(last or first) if sep else int(first)
    except ValueError:
        raise SystemExit(f"codegen-lsp: error: --range {spec!r}: expected START:END line numbers (1-based)") from None
    if start < 1 or end < start:
        raise SystemExit(f"codegen-lsp: error: --range {spec!r}: lines count from 1 and END must not precede START")
    return start, end


def run_synthesize(path: Path, line_range: str | None, write: bool, options: dict,
                   server_log: Path | None = None) -> int:
    from .safe_write import FileChanged, content_hash, replace_unchanged

    if not path.is_file():
        raise SystemExit(f"codegen-lsp: error: {path}: file not found")
    lines = parse_line_range(line_range)
    original = path.read_bytes()  # read once: what is synthesized, and what --write checks is still there
    if lines is not None and lines[0] > (count := len(original.splitlines())):
        raise SystemExit(f"codegen-lsp: error: --range {line_range!r}: {path} ends at line {count}")
    try:
        text = original.decode("utf-8")  # not read_text: keep "\r\n" as it is
    except UnicodeDecodeError:
        raise SystemExit(f"codegen-lsp: error: {path}: not UTF-8 text") from None
    result = asyncio.run(synthesize(path, text, lines, options, server_log))
    if result is None:
        print("codegen-lsp: nothing synthesized (no comment without code in the range, or every turn failed)",
              file=sys.stderr)
        return 1
    if not write:
        sys.stdout.write(result)
        return 0
    try:  # synthesis takes a while: the file may have been edited and saved meanwhile
        replace_unchanged(path, result.encode("utf-8"), content_hash(original))
    except FileChanged as exc:
        raise SystemExit(f"codegen-lsp: error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"codegen-lsp: error: cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)
    return 0
