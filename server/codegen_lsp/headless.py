"""`codegen-lsp complete`: start the server as a subprocess, speak LSP to it, print the suggestion."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

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


async def start_session(root: Path, options: dict, log_level: str = "warning") -> LanguageClient:
    logging.getLogger("pygls").setLevel(logging.ERROR)  # the client logs every notification it ignores
    client = LanguageClient("codegen-lsp-headless", "1")

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _progress(params):  # accept the server's progress tokens
        return None

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def _show(params: types.ShowMessageParams):
        print(params.message, file=sys.stderr)

    await client.start_io(sys.executable, "-m", "codegen_lsp", "serve", "--log-level", log_level)
    await client.initialize_async(types.InitializeParams(
        capabilities=client_capabilities(), root_uri=root.resolve().as_uri(), initialization_options=options))
    client.initialized(types.InitializedParams())
    return client


async def stop_session(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def open_file(client: LanguageClient, path: Path) -> tuple[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SystemExit(f"codegen-lsp: error: {path}: not UTF-8 text") from None
    uri = path.resolve().as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=LANGUAGE_BY_SUFFIX.get(path.suffix, "plaintext"), version=1, text=text)))
    return uri, text


async def complete(path: Path, line: int, character: int, options: dict) -> str:
    client = await start_session(path.parent, options)
    try:
        uri, _ = open_file(client, path)
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    finally:
        await stop_session(client)
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return str(items[0].insert_text) if items else ""


def run_complete(path: Path, line: int, character: int, options: dict) -> int:
    if not path.is_file():
        raise SystemExit(f"codegen-lsp: error: {path}: file not found")
    print(asyncio.run(complete(path, line, character, options)))
    return 0
