"""Helpers for end-to-end tests that speak LSP to the real server (see tests/e2e/conftest.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from codegen_lsp.events import STATS_NOTIFICATION, STATUS_FIELDS, STATUS_NOTIFICATION, SuggestionStats

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


def record_events(client: LanguageClient) -> None:
    """Collect the server's structured notifications on `client` (once; tests/e2e/conftest.py does it for
    the `client` fixture): `codegenLsp/status` as dicts in `client.statuses`, `codegenLsp/stats` as
    `SuggestionStats` in `client.stats`. Tests learn what the server did from these, never from its log."""
    if hasattr(client, "statuses"):
        return
    client.statuses = []  # type: ignore[attr-defined]
    client.stats = []  # type: ignore[attr-defined]

    @client.feature(STATUS_NOTIFICATION)
    def _status(params):
        client.statuses.append({key: getattr(params, key, None) for key in STATUS_FIELDS})  # type: ignore[attr-defined]

    @client.feature(STATS_NOTIFICATION)
    def _stats(params):
        client.stats.append(SuggestionStats.from_json(params))  # type: ignore[attr-defined]


def record_status(client: LanguageClient) -> list[dict]:
    """The `codegenLsp/status` notifications the server sent `client`, in order (a live list)."""
    record_events(client)
    return client.statuses  # type: ignore[attr-defined]


def loads(client: LanguageClient, state: str = "ready") -> list[dict]:
    """The statuses that ended a model load (`state` "ready", or "error"): the ones right after a "loading"."""
    seen = record_status(client)
    return [s for before, s in zip(seen, seen[1:]) if before["state"] == "loading" and s["state"] == state]


def restarts(client: LanguageClient) -> int:
    """Engine restarts after a crash: "ready" right after an "error" (a load always goes through "loading")."""
    seen = record_status(client)
    return sum(before["state"] == "error" and s["state"] == "ready" for before, s in zip(seen, seen[1:]))


async def wait_for_status(client: LanguageClient, states: tuple[str, ...], after: int = 0,
                          timeout: float = 60) -> dict:
    """The first `codegenLsp/status` at or after index `after` whose state is one of `states`."""
    seen = record_status(client)

    async def poll() -> dict:
        while True:
            for status in seen[after:]:
                if status["state"] in states:
                    return status
            await asyncio.sleep(0.02)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {'/'.join(states)} status after #{after} within {timeout}s: {seen}") from None


async def start(client: LanguageClient, model: Path | str | None, root: Path, wait_ready: bool = True,
                caps: types.ClientCapabilities | None = None, **options) -> types.InitializeResult:
    """Handshake; by default wait until the server's `codegenLsp/status` says the model is ready (or failed)."""
    if model is not None:
        options["model"] = str(model)
    since = len(record_status(client))
    result = await client.initialize_session(types.InitializeParams(
        capabilities=caps or capabilities(), root_uri=root.as_uri(), initialization_options=options))
    if wait_ready:
        await wait_for_status(client, ("ready", "error"), since)
    return result


async def _first_containing(messages, needle: str, timeout: float) -> str:
    async def poll() -> str:
        while True:
            for message in messages:
                if needle in message.message:
                    return message.message
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), timeout)


async def wait_for_shown(client: LanguageClient, needle: str, timeout: float = 60) -> str:
    """The first showMessage (what a person reads) containing `needle`."""
    return await _first_containing(client.messages, needle, timeout)


async def wait_for_logged(client: LanguageClient, needle: str, timeout: float = 30) -> str:
    """The first window/logMessage containing `needle`."""
    return await _first_containing(client.log_messages, needle, timeout)


async def wait_for_stats(client: LanguageClient, predicate, timeout: float = 10, what: str = "stats") -> SuggestionStats:
    """The first `codegenLsp/stats` (a SuggestionStats) that `predicate` accepts."""
    record_events(client)

    async def poll() -> SuggestionStats:
        while True:
            for stats in client.stats:  # type: ignore[attr-defined]
                if predicate(stats):
                    return stats
            await asyncio.sleep(0.02)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}: {client.stats}") from None  # type: ignore[attr-defined]


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def change_doc(client: LanguageClient, uri: str, version: int, start: tuple[int, int], end: tuple[int, int],
               text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(*start), end=types.Position(*end)), text=text)]))


async def inline(client: LanguageClient, uri: str, line: int, character: int,
                 invoked: bool = False) -> list[types.InlineCompletionItem]:
    """An inline completion request as typing triggers it (Automatic: one suggestion), or as an explicit
    request (`invoked`: up to the `candidates` setting, to cycle through)."""
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind)))
    return list(result.items) if isinstance(result, types.InlineCompletionList) else list(result or [])


async def code_actions_at(client: LanguageClient, uri: str, line: int, character: int) -> list[types.CodeAction]:
    here = types.Range(start=types.Position(line=line, character=character),
                       end=types.Position(line=line, character=character))
    return list(await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=here,
        context=types.CodeActionContext(diagnostics=[]))))
