"""Comment blocks of a parsed document.

A block is what a human reads as one comment: a run of line comments on
adjacent lines at the same column, or one block / doc comment.  Each block is
one turn when synthesizing code from comments.

Points are tree-sitter points: (row counted at "\\n", UTF-8 byte column).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, QueryCursor, Tree

from .points import advance_point
from .queries import load_query

CommentKind = Literal["line", "block", "doc"]

# When a node is captured under several names, the most specific wins.
_PRIORITY: dict[str, int] = {"doc": 3, "block": 2, "line": 1}

# "///" and "//!" are doc markers, but "////" is a plain comment (a ruler).
_LINE_MARKER = re.compile(r"^(//(?:[/!](?!/))?|#)")
_PY_STRING = re.compile(r"^[rRuUbBfFtT]*('''|\"\"\"|'|\")(.*)\1$", re.DOTALL)


@dataclass(frozen=True)
class CommentBlock:
    start_byte: int
    end_byte: int
    start_point: tuple[int, int]
    end_point: tuple[int, int]
    kind: CommentKind
    # Comment text without markers ("//", "#", "/*", " * ", quotes), dedented.
    text_lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.text_lines)


@dataclass(frozen=True)
class _Comment:
    """One comment node, trailing newline excluded (Rust includes it)."""

    start_byte: int
    end_byte: int
    start_point: tuple[int, int]
    end_point: tuple[int, int]
    kind: CommentKind
    raw: str

    @property
    def marker(self) -> str | None:
        """The line-comment marker ("//", "///", "#", ...), None for other comments."""
        if self.start_point[0] != self.end_point[0]:
            return None
        match = _LINE_MARKER.match(self.raw)
        return match.group(1) if match else None

    @property
    def line_style(self) -> bool:
        return self.marker is not None


def comment_blocks(
    tree: Tree | None,
    source_bytes: bytes,
    language_name: str | None,
    byte_range: tuple[int, int] | None = None,
) -> list[CommentBlock]:
    """Comment blocks in document order.

    With `byte_range=(lo, hi)` only blocks touching [lo, hi] are returned,
    but those are complete even where they extend beyond the range.
    """
    if tree is None or language_name is None:
        return []
    if byte_range is None:
        return [_finish(group) for group in _group(_collect(tree, source_bytes, language_name, None), source_bytes)]
    lo, hi = byte_range
    # Start from whole lines: an empty range would match nothing.
    line_end = source_bytes.find(b"\n", hi)
    window = (source_bytes.rfind(b"\n", 0, lo) + 1, len(source_bytes) if line_end < 0 else line_end + 1)
    while True:
        groups = _group(_collect(tree, source_bytes, language_name, window), source_bytes)
        touching = [g for g in groups if g[0].start_byte <= hi and g[-1].end_byte >= lo]
        wider = _widen(window, touching, source_bytes)
        if wider == window:
            return [_finish(g) for g in touching]
        window = wider


def _collect(tree: Tree, source: bytes, language_name: str, window: tuple[int, int] | None) -> list[_Comment]:
    cursor = QueryCursor(load_query(language_name, "comments"))
    if window is not None:
        cursor.set_byte_range(max(window[0], 0), min(window[1], len(source)))
    by_span: dict[tuple[int, int], tuple[CommentKind, Node]] = {}
    for name, nodes in cursor.captures(tree.root_node).items():
        kind = name.rpartition(".")[2]
        if kind not in _PRIORITY:
            continue
        for node in nodes:
            key = (node.start_byte, node.end_byte)
            if key not in by_span or _PRIORITY[kind] > _PRIORITY[by_span[key][0]]:
                by_span[key] = (kind, node)  # type: ignore[assignment]
    return [_comment(node, kind, source) for _, (kind, node) in sorted(by_span.items())]


def _comment(node: Node, kind: CommentKind, source: bytes) -> _Comment:
    raw = source[node.start_byte : node.end_byte]
    trimmed = raw.rstrip(b"\r\n")
    end_point = tuple(node.end_point)
    if len(trimmed) != len(raw):
        end_point = advance_point(tuple(node.start_point), trimmed)
    return _Comment(
        start_byte=node.start_byte,
        end_byte=node.start_byte + len(trimmed),
        start_point=tuple(node.start_point),  # type: ignore[arg-type]
        end_point=end_point,  # type: ignore[arg-type]
        kind=kind,
        raw=trimmed.decode("utf-8", "replace"),
    )


def _group(comments: list[_Comment], source: bytes) -> list[list[_Comment]]:
    groups: list[list[_Comment]] = []
    for comment in comments:
        if groups and _continues(groups[-1][-1], comment, source):
            groups[-1].append(comment)
        else:
            groups.append([comment])
    return groups


def _continues(prev: _Comment, nxt: _Comment, source: bytes) -> bool:
    """Whether `nxt` is the next line of the same line-comment block."""
    # Same marker: "//!" (inner) and "///" (outer) docs describe different items.
    if prev.marker is None or prev.marker != nxt.marker or prev.kind != nxt.kind:
        return False
    if nxt.start_point[0] != prev.end_point[0] + 1 or nxt.start_point[1] != prev.start_point[1]:
        return False
    # Only whitespace between them: a trailing comment after code on the next
    # line annotates that code and starts its own block.
    gap = source[prev.end_byte : nxt.start_byte]
    return gap.strip() == b"" and gap.count(b"\n") == 1


def _widen(window: tuple[int, int], touching: list[list[_Comment]], source: bytes) -> tuple[int, int]:
    """A wider query window if an edge block may continue outside `window`.

    The cursor only sees comments intersecting the window, so a line-comment
    run crossing its edge would be cut; grow the window (geometrically, to
    bound the number of queries) until the neighbouring line is inside.
    """
    lo, hi = window
    step = max(hi - lo, 256)
    if touching and touching[0][0].line_style and lo > 0:
        line_start = source.rfind(b"\n", 0, touching[0][0].start_byte) + 1
        prev_line_start = source.rfind(b"\n", 0, line_start - 1) + 1 if line_start > 0 else lo
        if prev_line_start < lo:
            lo = max(0, min(prev_line_start, lo - step))
    if touching and touching[-1][-1].line_style and hi < len(source):
        last = touching[-1][-1].end_byte
        next_break = source.find(b"\n", last)
        next_line_end = len(source) if next_break < 0 else source.find(b"\n", next_break + 1)
        next_line_end = len(source) if next_line_end < 0 else next_line_end
        if next_break >= 0 and next_line_end > hi:
            hi = min(len(source), max(next_line_end, hi + step))
    return (lo, hi)


def _finish(group: list[_Comment]) -> CommentBlock:
    first, last = group[0], group[-1]
    if first.line_style:
        lines = [_strip_line_marker(c.raw) for c in group]
        lines = textwrap.dedent("\n".join(lines)).split("\n")
    elif _PY_STRING.match(first.raw):
        lines = _docstring_lines(first.raw)
    else:
        lines = _block_lines(first.raw)
    return CommentBlock(
        start_byte=first.start_byte,
        end_byte=last.end_byte,
        start_point=first.start_point,
        end_point=last.end_point,
        kind=first.kind,
        text_lines=tuple(line.rstrip() for line in lines),
    )


def _strip_line_marker(raw: str) -> str:
    body = _LINE_MARKER.sub("", raw, count=1)
    return body[1:] if body.startswith(" ") else body


def _docstring_lines(raw: str) -> list[str]:
    match = _PY_STRING.match(raw)
    body = match.group(2) if match else raw
    return inspect.cleandoc(body).split("\n")


def _block_lines(raw: str) -> list[str]:
    body = raw[2:-2] if len(raw) >= 4 and raw.endswith("*/") else raw[2:]
    if body[:1] in ("*", "!"):  # "/**" and "/*!" doc openers
        body = body[1:]
    lines = body.split("\n")
    # Drop the decorative " * " gutter only when every continuation line has it.
    rest = [line for line in lines[1:] if line.strip()]
    if rest and all(line.lstrip().startswith("*") for line in rest):
        lines = [lines[0]] + [re.sub(r"^\s*\* ?", "", line) for line in lines[1:]]
        lines[1:] = [line.rstrip("\r") for line in lines[1:]]
        return _trim_blank_edges([lines[0].strip()] + lines[1:])
    lines = [line.rstrip("\r") for line in lines]
    return _trim_blank_edges([lines[0].strip()] + textwrap.dedent("\n".join(lines[1:])).split("\n"))


def _trim_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end] or [""]
