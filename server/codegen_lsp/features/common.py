"""Helpers the feature modules share: LSP ↔ core conversions and request validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..documents.positions import Pos, PositionError
from ..documents.store import Document

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def document_or_error(ls: "CodegenLanguageServer", uri: str) -> Document:
    if uri not in ls.store:  # the protocol logs the error it answers (one line)
        raise JsonRpcInvalidParams(f"document not open: {uri}")
    return ls.store.get(uri)


def offset_or_error(ls: "CodegenLanguageServer", doc: Document, position: types.Position) -> int:
    """Code-point offset of an LSP position, strictly: impossible positions are an InvalidParams error."""
    try:
        return doc.codepoint_offset_of(Pos(position.line, position.character))
    except PositionError as exc:
        raise JsonRpcInvalidParams(f"{doc.uri}: invalid position {position.line}:{position.character}: {exc}") from None


def lsp_position(doc: Document, codepoint_offset: int, ls: "CodegenLanguageServer") -> types.Position:
    pos = doc.index.codepoint_to_position(codepoint_offset, ls.store.encoding)
    return types.Position(line=pos.line, character=pos.character)
