"""Headless use: start the server as a subprocess and speak LSP to it (`codegen-lsp complete`,
`codegen-lsp synthesize`, the MTPB benchmark)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Callable

from lsprotocol import types
from pygls.lsp.client import LanguageClient

LANGUAGE_BY_SUFFIX = {".py": "python", ".js": "javascript", ".jsx": "javascriptreact", ".ts": "typescript",
                      ".tsx": "typescriptreact", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c",
                      ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cxx": "cpp"}


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


MODEL_OUTCOMES = ("model ready", "cannot load the model", "no model configured")


async def start_session(root: Path, options: dict, log_level: str = "warning",
                        echo_log: Callable[[str], bool] | None = None, show_messages: bool = True) -> LanguageClient:
    """A started, initialized server. Its window/logMessage texts collect in `client.server_log`;
    those `echo_log` accepts are also printed to stderr, and so are showMessage texts if `show_messages`."""
    logging.getLogger("pygls").setLevel(logging.ERROR)  # the client logs every notification it ignores
    client = LanguageClient("codegen-lsp-headless", "1")
    server_log: list[str] = []
    client.server_log = server_log  # type: ignore[attr-defined]

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
        if show_messages:
            print(params.message, file=sys.stderr)

    await client.start_io(sys.executable, "-m", "codegen_lsp", "serve", "--log-level", log_level)
    await client.initialize_async(types.InitializeParams(
        capabilities=client_capabilities(), root_uri=root.resolve().as_uri(), initialization_options=options))
    client.initialized(types.InitializedParams())
    return client


async def model_outcome(client: LanguageClient, timeout: float = 300) -> str:
    """Wait until the server says whether its model loaded; the message."""
    async def poll() -> str:
        while True:
            for message in client.server_log:  # type: ignore[attr-defined]
                if message.startswith(MODEL_OUTCOMES):
                    return message
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


class ServerModelError(Exception):
    """The server could not load its model; the server's own message."""


async def ready_session(root: Path, options: dict, **session_options) -> LanguageClient:
    """start_session, then wait for the model: raises ServerModelError (server stopped) if it failed."""
    client = await start_session(root, options, **session_options)
    outcome = await model_outcome(client)
    if not outcome.startswith("model ready"):
        await stop_session(client)
        raise ServerModelError(outcome)
    return client


async def inline_at(client: LanguageClient, uri: str, line: int, character: int) -> str:
    """The first inline suggestion at a position of an open document ("" when none)."""
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return str(items[0].insert_text) if items else ""


async def stop_session(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


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


async def complete(path: Path, line: int, character: int, options: dict) -> str:
    client = await start_session(path.parent, options)
    try:
        uri, _ = open_file(client, path)
        return await inline_at(client, uri, line, character)
    finally:
        await stop_session(client)


def run_complete(path: Path, line: int, character: int, options: dict) -> int:
    if not path.is_file():
        raise SystemExit(f"codegen-lsp: error: {path}: file not found")
    print(asyncio.run(complete(path, line, character, options)))
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
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=selection or whole_lines(text),
            context=types.CodeActionContext(diagnostics=[], only=[SYNTHESIZE_KIND])))
        action = next((a for a in actions or [] if isinstance(a, types.CodeAction) and a.title == SYNTHESIZE), None)
        if action is None:
            return None
        resolved = await client.code_action_resolve_async(action)
        if resolved.edit is None or not resolved.edit.document_changes:
            return None
        change = resolved.edit.document_changes[0]
        return apply_text_edits(text, list(change.edits))  # type: ignore[union-attr]
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))


async def synthesize(path: Path, line_range: tuple[int, int] | None, options: dict) -> str | None:
    client = await start_session(path.parent, options, echo_log=lambda m: m.startswith("synthesis turn"))
    try:
        uri, text = open_file(client, path, announce=False)
        selection = whole_lines(text, *line_range) if line_range else None
        return await synthesize_in_session(client, uri, text, LANGUAGE_BY_SUFFIX.get(path.suffix, "plaintext"),
                                           selection)
    finally:
        await stop_session(client)


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


def run_synthesize(path: Path, line_range: str | None, write: bool, options: dict) -> int:
    from .convert.writer import atomic_output

    if not path.is_file():
        raise SystemExit(f"codegen-lsp: error: {path}: file not found")
    result = asyncio.run(synthesize(path, parse_line_range(line_range), options))
    if result is None:
        print("codegen-lsp: nothing synthesized (no comment without code in the range, or every turn failed)",
              file=sys.stderr)
        return 1
    if not write:
        sys.stdout.write(result)
        return 0
    with atomic_output(path) as tmp:
        tmp.write_text(result, encoding="utf-8")
        tmp.chmod(path.stat().st_mode & 0o7777)
    print(f"wrote {path}", file=sys.stderr)
    return 0
