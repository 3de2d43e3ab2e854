"""Helpers for end-to-end tests that speak LSP to the real server (see tests/e2e/conftest.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

SERVER = [sys.executable, "-m", "codegen_lsp", "serve", "--log-level", "info"]


def capabilities(encodings=("utf-16",), resolve_edits=True, inline=True, configuration=False) -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind(e) for e in encodings]),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]) if resolve_edits else None),
            synchronization=types.TextDocumentSyncClientCapabilities(),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True, show_message=None),
        workspace=types.WorkspaceClientCapabilities(configuration=configuration),
    )


async def start(client: LanguageClient, model: Path | str | None, root: Path, wait_ready: bool = True,
                caps: types.ClientCapabilities | None = None, **options) -> types.InitializeResult:
    """Handshake; by default wait until the server says the model is ready (or failed)."""
    if model is not None:
        options["model"] = str(model)
    result = await client.initialize_session(types.InitializeParams(
        capabilities=caps or capabilities(), root_uri=root.as_uri(), initialization_options=options))
    if wait_ready:
        await wait_for_log(client, ("model ready", "cannot load the model", "no model configured"))
    return result


async def wait_for_log(client: LanguageClient, needles: tuple[str, ...], timeout: float = 60) -> str:
    async def poll() -> str:
        while True:
            for message in client.log_messages + client.messages:
                if any(n in message.message for n in needles):
                    return message.message
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), timeout)


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def change_doc(client: LanguageClient, uri: str, version: int, start: tuple[int, int], end: tuple[int, int],
               text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(*start), end=types.Position(*end)), text=text)]))


async def inline(client: LanguageClient, uri: str, line: int, character: int) -> list[types.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    return list(result.items) if isinstance(result, types.InlineCompletionList) else list(result or [])




async def code_actions_at(client: LanguageClient, uri: str, line: int, character: int) -> list[types.CodeAction]:
    here = types.Range(start=types.Position(line=line, character=character),
                       end=types.Position(line=line, character=character))
    return list(await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=here,
        context=types.CodeActionContext(diagnostics=[]))))
