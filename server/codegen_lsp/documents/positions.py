"""Conversion between LSP positions and offsets into a document.

An LSP position is (line, character) where `character` counts code units of
the negotiated encoding (UTF-8 bytes, UTF-16 units or code points).  The
server works internally with two offsets into the document:

* code-point offsets, to slice the Python `str`;
* UTF-8 byte offsets, which is what tree-sitter uses.

`LineIndex` is built once per document version and answers both directions.
Lines end at "\\n", "\\r\\n" or "\\r", as the LSP specification says.

Tree-sitter's own points count rows at "\\n" only, so they differ from LSP
lines when a lone "\\r" occurs; `LineIndex.ts_point` gives tree-sitter points.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from enum import Enum
from itertools import accumulate
from operator import add

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")


class PositionEncoding(str, Enum):
    """The position encodings LSP 3.17 defines (`PositionEncodingKind`)."""

    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"


class PositionError(ValueError):
    """A position that does not denote a place in the document."""


@dataclass(frozen=True, order=True)
class Pos:
    """A (line, character) pair; `character` is in the document's encoding."""

    line: int
    character: int


@dataclass(frozen=True)
class Span:
    """A half-open range between two positions (LSP `Range`)."""

    start: Pos
    end: Pos


@dataclass(frozen=True)
class Offsets:
    """A resolved position: code-point offset and UTF-8 byte offset."""

    codepoint: int
    byte: int


def sanitize_text(text: str) -> str:
    """Replace lone surrogates with U+FFFD.

    JSON lets a client send "\\ud800" on its own; such a `str` cannot be
    encoded to UTF-8.  U+FFFD is, like a lone surrogate, exactly one UTF-16
    code unit and one code point, so UTF-16 and UTF-32 positions sent by the
    client stay valid, while the text becomes encodable everywhere downstream
    (tree-sitter, tokenizer).
    """
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of `text`; lone surrogates become U+FFFD (see sanitize_text)."""
    return sanitize_text(text).encode("utf-8")


def _column_length(segment: str, encoding: PositionEncoding) -> int:
    """Length of `segment` counted in `encoding` code units."""
    if encoding is PositionEncoding.UTF32 or segment.isascii():
        return len(segment)
    if encoding is PositionEncoding.UTF16:
        return len(segment.encode("utf-16-le")) // 2
    return len(segment.encode("utf-8"))


class LineIndex:
    """Line table of one immutable text.

    `LineIndex(text)` sanitizes the text (see `sanitize_text`).  Passing
    `source_bytes` skips that work on the hot edit path: the caller then
    guarantees `text` is sanitized and `source_bytes == text.encode()`.
    """

    __slots__ = ("_text", "_bytes", "_cp_starts", "_byte_starts", "_cp_ends", "_byte_ends", "_ts_starts")

    def __init__(self, text: str, source_bytes: bytes | None = None) -> None:
        if source_bytes is None:
            text = sanitize_text(text)
            source_bytes = text.encode("utf-8")
        self._text = text
        self._bytes = source_bytes
        # Line breaks are single-byte ASCII, so the n-th break in the str and
        # the n-th break in the bytes are the same break.
        self._cp_starts, self._cp_ends = _line_table(text)
        if text.isascii():
            self._byte_starts, self._byte_ends = self._cp_starts, self._cp_ends
        else:
            self._byte_starts, self._byte_ends = _line_table(self._bytes)
        if "\r" in text and text.count("\r") != text.count("\r\n"):
            # A lone "\r" ends an LSP line but not a tree-sitter row.
            self._ts_starts = _split_table(self._bytes, b"\n")[0]
        else:
            self._ts_starts = self._byte_starts

    # -- basic facts -------------------------------------------------------

    @property
    def text(self) -> str:
        return self._text

    @property
    def source_bytes(self) -> bytes:
        return self._bytes

    @property
    def line_count(self) -> int:
        return len(self._cp_starts)

    def line_text(self, line: int) -> str:
        """Text of `line` without its line break."""
        self._check_line(line)
        return self._text[self._cp_starts[line] : self._cp_ends[line]]

    def lines_text(self, first: int, last: int) -> str:
        """Text of lines `first`..`last` (clamped to the document), with the breaks between them."""
        last = min(last, len(self._cp_starts) - 1)
        if not 0 <= first <= last:
            return ""
        return self._text[self._cp_starts[first]: self._cp_ends[last]]

    def line_start_byte(self, line: int) -> int:
        self._check_line(line)
        return self._byte_starts[line]

    def line_end_byte(self, line: int) -> int:
        """Byte offset of the end of `line`'s content (before the break)."""
        self._check_line(line)
        return self._byte_ends[line]

    def _check_line(self, line: int) -> None:
        if not 0 <= line < len(self._cp_starts):
            raise PositionError(f"line {line} is outside the document (0..{len(self._cp_starts) - 1})")

    # -- position -> offsets -----------------------------------------------

    def resolve(self, pos: Pos, encoding: PositionEncoding, *, lenient: bool = False) -> Offsets:
        """Offsets of `pos`.

        Requests: a character past the line end clamps to the line end (LSP:
        "defaults back to the line length"; Neovim's linewise selections send
        them), a line past the end is an error.
        Lenient (didChange edits): a line past the end also clamps, to the end
        of the document.  Both reject a position inside a surrogate pair /
        UTF-8 sequence, since no sensible character boundary is meant.
        """
        line, character = pos.line, pos.character
        if line < 0 or character < 0:
            raise PositionError(f"negative position {line}:{character}")
        if line >= self.line_count:
            if lenient:
                return Offsets(len(self._text), len(self._bytes))
            raise PositionError(f"line {line} is past the last line {self.line_count - 1}")
        cp_start, cp_end = self._cp_starts[line], self._cp_ends[line]
        byte_start = self._byte_starts[line]
        content = self._text[cp_start:cp_end]
        col_cp = self._codepoint_column(content, character, encoding, line, lenient)
        if content.isascii():
            return Offsets(cp_start + col_cp, byte_start + col_cp)
        return Offsets(cp_start + col_cp, byte_start + len(content[:col_cp].encode("utf-8")))

    def _codepoint_column(
        self, content: str, character: int, encoding: PositionEncoding, line: int, lenient: bool
    ) -> int:
        """Code-point column of `character` (in `encoding`) on one line."""
        if encoding is PositionEncoding.UTF32 or content.isascii():
            return min(character, len(content))
        codec = "utf-16-le" if encoding is PositionEncoding.UTF16 else "utf-8"
        unit = 2 if encoding is PositionEncoding.UTF16 else 1
        encoded = content.encode(codec)
        if character * unit > len(encoded):
            return len(content)
        try:
            return len(encoded[: character * unit].decode(codec))
        except UnicodeDecodeError:
            what = "a surrogate pair" if unit == 2 else "a UTF-8 sequence"
            raise PositionError(f"position {line}:{character} is inside {what}") from None

    def byte_offset(self, pos: Pos, encoding: PositionEncoding, *, lenient: bool = False) -> int:
        return self.resolve(pos, encoding, lenient=lenient).byte

    def codepoint_offset(self, pos: Pos, encoding: PositionEncoding, *, lenient: bool = False) -> int:
        return self.resolve(pos, encoding, lenient=lenient).codepoint

    # -- offsets -> position -----------------------------------------------

    def byte_to_position(self, byte_offset: int, encoding: PositionEncoding) -> Pos:
        """LSP position of a UTF-8 byte offset (e.g. a tree-sitter node edge).

        Offsets are clamped to the document; an offset inside a multi-byte
        character or a line break snaps back to the preceding boundary.
        """
        byte_offset = min(max(byte_offset, 0), len(self._bytes))
        line = bisect_right(self._byte_starts, byte_offset) - 1
        start = self._byte_starts[line]
        end = min(byte_offset, self._byte_ends[line])
        prefix = self._bytes[start:end]
        if encoding is PositionEncoding.UTF8 or prefix.isascii():
            # Even in UTF-8 we must not point inside a character.
            if prefix.isascii():
                return Pos(line, len(prefix))
            return Pos(line, len(prefix.decode("utf-8", "ignore").encode("utf-8")))
        return Pos(line, _column_length(prefix.decode("utf-8", "ignore"), encoding))

    def codepoint_to_position(self, cp_offset: int, encoding: PositionEncoding) -> Pos:
        """LSP position of a code-point offset into the text."""
        cp_offset = min(max(cp_offset, 0), len(self._text))
        line = bisect_right(self._cp_starts, cp_offset) - 1
        start = self._cp_starts[line]
        end = min(cp_offset, self._cp_ends[line])
        return Pos(line, _column_length(self._text[start:end], encoding))

    def byte_to_codepoint(self, byte_offset: int) -> int:
        """Code-point offset of a byte offset (snapping back inside a character)."""
        byte_offset = min(max(byte_offset, 0), len(self._bytes))
        line = bisect_right(self._byte_starts, byte_offset) - 1
        prefix = self._bytes[self._byte_starts[line] : byte_offset]
        return self._cp_starts[line] + len(prefix.decode("utf-8", "ignore"))

    def codepoint_to_byte(self, cp_offset: int) -> int:
        cp_offset = min(max(cp_offset, 0), len(self._text))
        line = bisect_right(self._cp_starts, cp_offset) - 1
        segment = self._text[self._cp_starts[line] : cp_offset]
        return self._byte_starts[line] + len(segment.encode("utf-8"))

    def ts_point(self, byte_offset: int) -> tuple[int, int]:
        """Tree-sitter point (row counted at "\\n", byte column) of a byte offset."""
        byte_offset = min(max(byte_offset, 0), len(self._bytes))
        row = bisect_right(self._ts_starts, byte_offset) - 1
        return (row, byte_offset - self._ts_starts[row])


def _line_table(text: str | bytes) -> tuple[list[int], list[int]]:
    """(start offsets, content end offsets) of the lines of `text`."""
    if isinstance(text, str):
        cr, lf, crlf, breaks = "\r", "\n", "\r\n", _LINE_BREAK
    else:
        cr, lf, crlf, breaks = b"\r", b"\n", b"\r\n", _LINE_BREAK_BYTES
    if cr not in text:
        return _split_table(text, lf)
    if text.count(cr) == text.count(crlf) == text.count(lf):
        return _split_table(text, crlf)
    # Mixed line endings: slower, one match object per break.
    starts, ends = [0], []
    for match in breaks.finditer(text):  # type: ignore[arg-type]
        ends.append(match.start())
        starts.append(match.end())
    ends.append(len(text))
    return starts, ends


def _split_table(text: str | bytes, separator: str | bytes) -> tuple[list[int], list[int]]:
    """Line table for a single kind of separator, computed with C-level
    iterators (this runs on every edit of possibly large documents)."""
    lengths = list(map(len, text.split(separator)))  # type: ignore[arg-type]
    step = len(separator)
    starts = list(map(add, accumulate(lengths[:-1], initial=0), range(0, step * len(lengths), step)))
    return starts, list(map(add, starts, lengths))
