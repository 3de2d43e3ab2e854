"""Open documents: text, positions and incremental syntax trees."""

from .positions import LineIndex, Pos, PositionEncoding, PositionError, Span
from .store import Document, DocumentStore, StaleVersion, TextChange, UnknownDocument

__all__ = [
    "Document",
    "DocumentStore",
    "LineIndex",
    "Pos",
    "PositionEncoding",
    "PositionError",
    "Span",
    "StaleVersion",
    "TextChange",
    "UnknownDocument",
]
