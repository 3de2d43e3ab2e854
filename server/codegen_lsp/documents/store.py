"""Open documents with their text, line index and incremental syntax tree.

`Document` values are immutable snapshots: an edit produces a new Document
(the tree is copied before `Tree.edit`, which mutates), so a request that
holds an older snapshot keeps a consistent text/tree pair.

Lone surrogates (possible via JSON "\ud800" escapes) are replaced by U+FFFD
on the way in (see `positions.sanitize_text`), so the UTF-8 encoding never
fails and UTF-16 positions stay aligned.  NUL bytes are kept: tree-sitter is
given an explicit length and parses them as ordinary (erroneous) input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tree_sitter import Parser, Tree

from ..syntax.languages import language_name_for, make_parser
from ..syntax.points import advance_point
from .positions import LineIndex, Pos, PositionEncoding, Span, sanitize_text

DEFAULT_MAX_PARSE_BYTES = 4 * 1024 * 1024


class StaleVersion(ValueError):
    """A change whose version is not newer than the stored document's."""


class UnknownDocument(KeyError):
    """A request for a URI that is not open."""


@dataclass(frozen=True)
class TextChange:
    """One `TextDocumentContentChangeEvent`: `span=None` replaces everything."""

    span: Span | None
    text: str

    @classmethod
    def full(cls, text: str) -> TextChange:
        return cls(None, text)

    @classmethod
    def replace(cls, start: tuple[int, int], end: tuple[int, int], text: str) -> TextChange:
        return cls(Span(Pos(*start), Pos(*end)), text)


@dataclass(frozen=True)
class TreeEdit:
    """Arguments for `tree_sitter.Tree.edit` (bytes and tree-sitter points)."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: tuple[int, int]
    old_end_point: tuple[int, int]
    new_end_point: tuple[int, int]

    def apply_to(self, tree: Tree) -> None:
        tree.edit(
            start_byte=self.start_byte,
            old_end_byte=self.old_end_byte,
            new_end_byte=self.new_end_byte,
            start_point=self.start_point,
            old_end_point=self.old_end_point,
            new_end_point=self.new_end_point,
        )


@dataclass(frozen=True)
class Document:
    uri: str
    language_id: str
    version: int
    encoding: PositionEncoding
    index: LineIndex = field(repr=False)
    tree: Tree | None = field(repr=False, compare=False)
    # Grammar name when we have one, even if the tree was skipped for size.
    language: str | None

    @property
    def text(self) -> str:
        return self.index.text

    @property
    def source_bytes(self) -> bytes:
        return self.index.source_bytes

    def offset_of(self, pos: Pos) -> int:
        """UTF-8 byte offset of a request position (strict)."""
        return self.index.byte_offset(pos, self.encoding)

    def codepoint_offset_of(self, pos: Pos) -> int:
        """Offset into `text` of a request position (strict)."""
        return self.index.codepoint_offset(pos, self.encoding)

    def position_of(self, byte_offset: int) -> Pos:
        """LSP position (in this document's encoding) of a byte offset."""
        return self.index.byte_to_position(byte_offset, self.encoding)

    def line_text(self, line: int) -> str:
        return self.index.line_text(line)


def apply_change(
    index: LineIndex, change: TextChange, encoding: PositionEncoding
) -> tuple[LineIndex, TreeEdit | None]:
    """Apply one change; returns the new index and the tree edit it implies.

    Positions are resolved leniently (LSP: clamp past-end positions).  A full
    replacement returns `None` for the edit: the old tree is of no use then.
    """
    if change.span is None:
        return LineIndex(change.text), None
    inserted = sanitize_text(change.text)
    start = index.resolve(change.span.start, encoding, lenient=True)
    end = index.resolve(change.span.end, encoding, lenient=True)
    if end.byte < start.byte:
        # Some clients send reversed selections; LSP ranges are ordered.
        start, end = end, start
    text = index.text
    new_text = text[: start.codepoint] + inserted + text[end.codepoint :]
    inserted_bytes = inserted.encode("utf-8")
    old_bytes = index.source_bytes
    new_bytes = old_bytes[: start.byte] + inserted_bytes + old_bytes[end.byte :]
    start_point = index.ts_point(start.byte)
    edit = TreeEdit(
        start_byte=start.byte,
        old_end_byte=end.byte,
        new_end_byte=start.byte + len(inserted_bytes),
        start_point=start_point,
        old_end_point=index.ts_point(end.byte),
        new_end_point=advance_point(start_point, inserted_bytes),
    )
    return LineIndex(new_text, new_bytes), edit


class DocumentStore:
    """The open documents of one session, keyed by URI."""

    def __init__(
        self,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES,
    ) -> None:
        self.encoding = encoding
        self.max_parse_bytes = max_parse_bytes
        self._documents: dict[str, Document] = {}
        # Parsers are stateful and not thread-safe: one per grammar per store.
        self._parsers: dict[str, Parser] = {}

    def __contains__(self, uri: object) -> bool:
        return uri in self._documents

    def uris(self) -> list[str]:
        return list(self._documents)

    def get(self, uri: str) -> Document:
        try:
            return self._documents[uri]
        except KeyError:
            raise UnknownDocument(uri) from None

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        """didOpen; reopening a URI replaces it."""
        index = LineIndex(text)
        language = language_name_for(language_id)
        doc = Document(
            uri=uri,
            language_id=language_id,
            version=version,
            encoding=self.encoding,
            index=index,
            tree=self._parse(language, index.source_bytes, None),
            language=language,
        )
        self._documents[uri] = doc
        return doc

    def apply_changes(self, uri: str, version: int, changes: Iterable[TextChange]) -> Document:
        """didChange: apply `changes` in order, each relative to the previous result.

        The stored document only changes if every change applies; a position
        error leaves it untouched.
        """
        doc = self.get(uri)
        if version <= doc.version:
            raise StaleVersion(f"{uri}: version {version} is not newer than {doc.version}")
        index = doc.index
        # Copy: Tree.edit mutates, and older snapshots may still be in use.
        old_tree = doc.tree.copy() if doc.tree is not None else None
        for change in changes:
            index, edit = apply_change(index, change, self.encoding)
            if edit is None:
                old_tree = None
            elif old_tree is not None:
                edit.apply_to(old_tree)
        new_doc = Document(
            uri=uri,
            language_id=doc.language_id,
            version=version,
            encoding=self.encoding,
            index=index,
            tree=self._parse(doc.language, index.source_bytes, old_tree),
            language=doc.language,
        )
        self._documents[uri] = new_doc
        return new_doc

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def _parse(self, language: str | None, source: bytes, old_tree: Tree | None) -> Tree | None:
        # Huge files stay plain text: parsing them on every keystroke costs
        # more than the syntax-aware features are worth.
        if language is None or len(source) > self.max_parse_bytes:
            return None
        parser = self._parsers.get(language)
        if parser is None:
            parser = self._parsers[language] = make_parser(language)
        if old_tree is None:
            return parser.parse(source)
        return parser.parse(source, old_tree)

