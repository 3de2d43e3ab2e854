"""A multi-turn specification read from comments: each comment block is one turn.

The region is the selection (whole lines), else the function around the cursor, else the file.
A turn's code is what stands between its comment and the next turn's comment (or the region's
end); a turn whose code is blank is pending: synthesis writes its code. Tree-sitter works in UTF-8
bytes; the plan is built in bytes and its offsets are turned into code points of the document's text
once, where the plan is returned: every offset a caller gets or gives here is in code points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from tree_sitter import QueryCursor, Tree

from ..syntax.comments import CommentBlock, comment_blocks
from ..syntax.queries import QueryNotFound, load_query

RegionKind = Literal["selection", "function", "file"]


@dataclass(frozen=True)
class Turn:
    comment: str  # the comment's text without markers
    comment_start: int  # start of the comment's first line (its indentation included)
    indent: str  # the comment line's leading whitespace: the code goes at this indentation
    code_start: int  # start of the line after the comment: where code is inserted
    code_end: int  # end of the turn's existing code (trailing blank lines excluded)
    existing_code: str

    @property
    def pending(self) -> bool:
        return not self.existing_code.strip()

    @property
    def title(self) -> str:
        first = next((line for line in self.comment.splitlines() if line.strip()), "")
        return first if len(first) <= 60 else first[:57] + "..."


@dataclass(frozen=True)
class SynthesisPlan:
    region: RegionKind
    region_start: int
    region_end: int
    turns: tuple[Turn, ...]

    @property
    def pending(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.pending)


def plan_turns(tree: Tree | None, source: bytes, language: str | None, start: int, end: int) -> SynthesisPlan:
    """The turns in the region chosen by the selection [start, end) (code points of the text that
    `source` encodes; empty = a cursor), with all offsets in code points.

    A cursor picks its enclosing function when that has a pending turn, else the whole file."""
    text = source.decode("utf-8", "replace")
    start, end = _to_bytes(text, start), _to_bytes(text, end)
    return _in_codepoints(_plan_bytes(tree, source, language, start, end), source)


def _plan_bytes(tree: Tree | None, source: bytes, language: str | None, start: int, end: int) -> SynthesisPlan:
    if start != end:
        return _plan(tree, source, language, "selection", _line_start(source, start),
                     _line_end(source, max(start, end - 1)))
    function = _enclosing_function(tree, language, start)
    if function is not None:
        plan = _plan(tree, source, language, "function", *function)
        if plan.pending:
            return plan
    return _plan(tree, source, language, "file", 0, len(source))


_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes inside a character


def _to_bytes(text: str, offset: int) -> int:
    return len(text[:max(offset, 0)].encode("utf-8"))


def _in_codepoints(plan: SynthesisPlan, source: bytes) -> SynthesisPlan:
    """The one conversion: byte offsets (tree-sitter's) to code points (a character's bytes count once)."""
    def cp(offset: int) -> int:
        return len(source[:offset].translate(None, _CONTINUATION))

    turns = tuple(replace(t, comment_start=cp(t.comment_start), code_start=cp(t.code_start), code_end=cp(t.code_end))
                  for t in plan.turns)
    return SynthesisPlan(plan.region, cp(plan.region_start), cp(plan.region_end), turns)


def _plan(tree: Tree | None, source: bytes, language: str | None, kind: RegionKind, lo: int, hi: int) -> SynthesisPlan:
    blocks = [b for b in comment_blocks(tree, source, language, (lo, hi))
              if lo <= b.start_byte < hi and _owns_line(source, b)]
    turns = []
    for i, block in enumerate(blocks):
        code_start = _line_end(source, block.end_byte)
        code_start = min(code_start + 1, len(source)) if code_start < len(source) else code_start
        limit = _line_start(source, blocks[i + 1].start_byte) if i + 1 < len(blocks) else hi
        limit = max(limit, code_start)
        line_start = _line_start(source, block.start_byte)
        limit = _block_end(source, code_start, limit, block.start_byte - line_start)
        code = source[code_start:limit].decode("utf-8", "replace")
        stripped = code.rstrip()
        turns.append(Turn(
            comment=block.text,
            comment_start=line_start,
            indent=source[line_start:block.start_byte].decode("utf-8", "replace"),
            code_start=code_start,
            code_end=code_start + len(stripped.encode("utf-8")),
            existing_code=stripped,
        ))
    return SynthesisPlan(kind, lo, hi, tuple(turns))


def _block_end(source: bytes, start: int, limit: int, width: int) -> int:
    """Where code indented less than the comment begins: the enclosing block ended there."""
    offset = start
    while offset < limit:
        end = _line_end(source, offset)
        line = source[offset:end]
        if line.strip() and len(line) - len(line.lstrip()) < width:
            return offset
        offset = end + 1
    return limit


def _owns_line(source: bytes, block: CommentBlock) -> bool:
    """A comment after code on its line annotates that code; it is not a turn."""
    before = source[_line_start(source, block.start_byte):block.start_byte]
    return not before.strip()


def _line_start(source: bytes, offset: int) -> int:
    return source.rfind(b"\n", 0, offset) + 1


def _line_end(source: bytes, offset: int) -> int:
    end = source.find(b"\n", offset)
    return len(source) if end < 0 else end


def _enclosing_function(tree: Tree | None, language: str | None, offset: int) -> tuple[int, int] | None:
    """The innermost function around `offset`, from grammars/<language>/scopes.scm."""
    if tree is None or language is None:
        return None
    try:
        query = load_query(language, "scopes")
    except QueryNotFound:
        return None
    cursor = QueryCursor(query)
    cursor.set_byte_range(offset, offset + 1)
    best: tuple[int, int] | None = None
    for node in cursor.captures(tree.root_node).get("scope.function", []):
        if node.start_byte <= offset <= node.end_byte:
            if best is None or node.end_byte - node.start_byte < best[1] - best[0]:
                best = (node.start_byte, node.end_byte)
    return best
