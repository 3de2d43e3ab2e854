"""Document synchronisation: didOpen / didChange (incremental) / didClose into our DocumentStore, the
one copy of each open document: pygls' built-in handlers, which keep another in `ls.workspace`, are
taken out. Whatever is kept per document (the store's entry, the completion service's typing rhythm,
cache, warm-up and job in flight) exists only between its didOpen and its didClose."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lsprotocol import types

from ..documents.positions import Pos, PositionError
from ..documents.store import Document, StaleVersion, TextChange, UnknownDocument

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


DID_VIEW = "codegenLsp/didView"
FOCUS = "codegenLsp/focus"


def to_text_change(change: types.TextDocumentContentChangeEvent) -> TextChange:
    if isinstance(change, types.TextDocumentContentChangePartial):
        r = change.range
        return TextChange.replace((r.start.line, r.start.character), (r.end.line, r.end.character), change.text)
    return TextChange.full(change.text)


def schedule_warm_up(ls: "CodegenLanguageServer", doc: Document,
                     change: types.TextDocumentContentChangeEvent | None) -> None:
    """The cursor is most likely right after the last change's text: warm up there once typing settles."""
    offset = None
    if isinstance(change, types.TextDocumentContentChangePartial):
        start = change.range.start
        try:
            offset = doc.codepoint_offset_of(Pos(start.line, start.character)) + len(change.text)
        except PositionError:
            pass
    ls.completions.schedule_warm_up(doc, offset)


# pygls answers these three with built-in handlers that first update its own document store
# (`ls.workspace`) and then call ours: every document would be held twice.
SYNC_METHODS = (types.TEXT_DOCUMENT_DID_OPEN, types.TEXT_DOCUMENT_DID_CHANGE, types.TEXT_DOCUMENT_DID_CLOSE)


def register(server: "CodegenLanguageServer") -> None:
    for method in SYNC_METHODS:  # ours (below) are then called directly; the capabilities come from them
        server.protocol.fm.builtin_features.pop(method, None)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: "CodegenLanguageServer", params: types.DidOpenTextDocumentParams) -> None:
        d = params.text_document
        ls.exclusion.forget(d.uri)  # checked afresh: a symlink may point elsewhere now, git asked again
        doc = ls.store.open(d.uri, d.language_id, d.version, d.text)
        ls.completions.seen(doc, 0)
        ls.completions.focused(doc, None)  # a client that sends codegenLsp/focus names the cursor right after

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: "CodegenLanguageServer", params: types.DidChangeTextDocumentParams) -> None:
        uri, version = params.text_document.uri, params.text_document.version
        if uri not in ls.store:  # nothing about it is kept: it would stay until a didClose that never comes
            ls.log_to_client(f"ignored didChange for {uri} v{version}: it is not open", types.MessageType.Warning)
            return
        ls.completions.edited(uri, time.monotonic())  # a suggestion for the old text is worthless now
        try:
            doc = ls.store.apply_changes(uri, version, [to_text_change(c) for c in params.content_changes])
        except (StaleVersion, UnknownDocument, PositionError) as exc:
            ls.log_to_client(f"ignored didChange for {uri} v{version}: {exc}", types.MessageType.Warning)
            return
        last = params.content_changes[-1] if params.content_changes else None
        ls.completions.seen(doc, last.range.start.line if isinstance(last, types.TextDocumentContentChangePartial) else 0)
        schedule_warm_up(ls, doc, last)

    @server.feature(DID_VIEW)
    def did_view(ls: "CodegenLanguageServer", params) -> None:
        """`codegenLsp/didView` {uri, line}: the editor shows this line of an open document; that region
        goes into the other files' context (clients send it when the visible range settles)."""
        uri, line = getattr(params, "uri", None), getattr(params, "line", None)
        doc = ls.store.get(uri) if isinstance(uri, str) and uri in ls.store else None
        if doc is None or not isinstance(line, int) or line < 0:
            ls.log_to_client(f"ignored {DID_VIEW}: expected {{uri of an open document, line >= 0}}, got "
                             f"uri={uri!r} line={line!r}", types.MessageType.Warning)
            return
        ls.completions.seen(doc, line)

    @server.feature(FOCUS)
    def focus(ls: "CodegenLanguageServer", params) -> None:
        """`codegenLsp/focus` {textDocument: {uri}, position?}: this open document became the one the person
        works in (its editor got focus, or it was just opened), the cursor there: warm the model's cache for
        a suggestion at the cursor (completion.CompletionService.focused)."""
        document = getattr(params, "text_document", None) or getattr(params, "textDocument", None)
        uri = getattr(document, "uri", None)
        doc = ls.store.get(uri) if isinstance(uri, str) and uri in ls.store else None
        position = getattr(params, "position", None)
        offset = None
        if doc is not None and position is not None:
            try:
                offset = doc.codepoint_offset_of(Pos(position.line, position.character))
            except (PositionError, AttributeError, TypeError):
                doc = None
        if doc is None:
            ls.log_to_client(f"ignored {FOCUS}: expected {{textDocument: {{uri of an open document}}, position?: a "
                             f"position in it}}, got {params!r:.200}", types.MessageType.Warning)
            return
        ls.completions.focused(doc, offset)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: "CodegenLanguageServer", params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.completions.closed(uri)
        ls.store.close(uri)
        ls.exclusion_told.pop(uri, None)  # reopened (a rename is a close and an open), it is told again
