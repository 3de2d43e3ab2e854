"""Code actions: "Complete here" (fill in the middle at the cursor, or replace the selection) and
the synthesis actions of features/synthesize.py.

Listing is instant; the edit is computed in codeAction/resolve (or inline for clients that cannot
resolve) and carries the document version it was computed for. An edit for a document that changed
meanwhile is refused, with a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .common import document_or_error, offset_or_error
from .synthesize import SYNTHESIZE_KIND, offered_actions, resolve_synthesis

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer

COMPLETE_HERE = "Complete here (codegen-lsp)"
COMPLETE_KIND = "refactor.rewrite.codegen.complete"  # lsprotocol kinds are open strings


def _client_resolves_edits(ls: "CodegenLanguageServer") -> bool:
    caps = ls.client_capabilities.text_document
    support = caps and caps.code_action and caps.code_action.resolve_support
    return bool(support and "edit" in support.properties)


async def compute_edit(ls: "CodegenLanguageServer", action: types.CodeAction) -> types.CodeAction:
    data: dict[str, Any] = action.data or {}
    uri, version = data.get("uri"), data.get("version")
    doc = document_or_error(ls, str(uri))
    if doc.version != version:
        ls.tell_user(f"{COMPLETE_HERE}: the document changed since the action was offered; try again",
                     types.MessageType.Warning)
        return action
    rng = types.Range(start=types.Position(**data["start"]), end=types.Position(**data["end"]))
    start, end = offset_or_error(ls, doc, rng.start), offset_or_error(ls, doc, rng.end)
    suggestion = await ls.completions.suggest(doc, start, end)
    if not suggestion.text:
        ls.tell_user(f"{COMPLETE_HERE}: nothing to insert ({suggestion.reason})", types.MessageType.Info)
        return action
    edit = types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
        edits=[types.TextEdit(range=rng, new_text=suggestion.text)],
    )
    action.edit = types.WorkspaceEdit(document_changes=[edit])
    return action


def register(server: "CodegenLanguageServer") -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[COMPLETE_KIND, SYNTHESIZE_KIND], resolve_provider=True))
    async def code_action(ls: "CodegenLanguageServer", params: types.CodeActionParams):
        doc = document_or_error(ls, params.text_document.uri)
        offset_or_error(ls, doc, params.range.start)
        offset_or_error(ls, doc, params.range.end)
        if ls.excluded(doc.uri, doc.language_id) is not None:
            return []  # nothing to offer where no model may look
        only = params.context.only

        def wanted(kind: str) -> bool:
            return not only or any(kind.startswith(k) for k in only)

        resolves = _client_resolves_edits(ls)
        actions = offered_actions(ls, doc, params.range, resolves) if wanted(SYNTHESIZE_KIND) else []
        if wanted(COMPLETE_KIND):
            r = params.range
            action = types.CodeAction(
                title=COMPLETE_HERE, kind=COMPLETE_KIND,
                data={"action": "complete", "uri": doc.uri, "version": doc.version,
                      "start": {"line": r.start.line, "character": r.start.character},
                      "end": {"line": r.end.line, "character": r.end.character}},
            )
            actions.append(action if resolves else await compute_edit(ls, action))
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: "CodegenLanguageServer", action: types.CodeAction) -> types.CodeAction:
        kind = (action.data or {}).get("action") if isinstance(action.data, dict) else None
        if kind == "synthesize":
            return await resolve_synthesis(ls, action)
        if kind == "complete":
            return await compute_edit(ls, action)
        return action
