"""Should the suggestion be one line or a whole block?"""

from __future__ import annotations

from typing import Literal

from tree_sitter import Node, QueryCursor, Tree

from ..syntax.queries import load_query
from .text import INDENT_LANGUAGES

Mode = Literal["single-line", "multi-line"]

# Python tokens ":" that end a compound statement header (not slices, dicts,
# lambdas or annotations).
_PY_HEADER_PARENTS = frozenset(
    {
        "function_definition", "class_definition", "if_statement", "elif_clause", "else_clause",
        "for_statement", "while_statement", "with_statement", "try_statement", "except_clause",
        "finally_clause", "match_statement", "case_clause", "ERROR",
    }
)


def decide_mode(tree: Tree | None, source_bytes: bytes, cursor_byte: int, language: str | None) -> Mode:
    """"multi-line" where the user is starting a block, else "single-line".

    Multi-line: the cursor ends a block opener ("def f():", "{"), sits in an
    empty block body, on a blank line after an opener or a comment, or on a
    blank line at definition level (module / class body).  Single-line: text
    after the cursor on its line, the middle of an expression, inside a
    string or comment, or a blank line among a function's statements.
    """
    line_start = source_bytes.rfind(b"\n", 0, cursor_byte) + 1
    line_end = source_bytes.find(b"\n", cursor_byte)
    before = source_bytes[line_start:cursor_byte].strip()
    after = source_bytes[cursor_byte : len(source_bytes) if line_end < 0 else line_end].strip()

    if after:
        # "{|}" on one line is an empty block being opened.
        return "multi-line" if before.endswith(b"{") and after.startswith(b"}") else "single-line"
    if tree is None or language is None:
        return _mode_from_text(source_bytes, line_start, before, language)
    if _inside_string_or_comment(tree.root_node, cursor_byte):
        return "single-line"
    previous = _previous_token(tree.root_node, source_bytes, cursor_byte)
    if previous is not None and _opens_block(previous, language):
        return "multi-line"
    if before:
        return "single-line"
    if previous is not None and "comment" in previous.type:
        return "multi-line"
    scope = _innermost_scope(tree, language, cursor_byte)
    return "multi-line" if scope is None or scope == "scope.class" else "single-line"


def _mode_from_text(source: bytes, line_start: int, before: bytes, language: str | None) -> Mode:
    """Without a parse: look at the text before the cursor only."""
    previous = before or _previous_nonblank_line(source, line_start)
    openers = (b":",) if language in INDENT_LANGUAGES else (b"{",) if language else (b":", b"{")
    if previous.endswith(openers):
        return "multi-line"
    return "multi-line" if not before and previous.startswith((b"#", b"//", b"/*", b"*")) else "single-line"


def _previous_nonblank_line(source: bytes, line_start: int) -> bytes:
    end = line_start
    while end > 0:
        start = source.rfind(b"\n", 0, end - 1) + 1
        line = source[start : end - 1].strip()
        if line:
            return line
        end = start
    return b""


def _inside_string_or_comment(root: Node, cursor_byte: int) -> bool:
    node: Node | None = root.descendant_for_byte_range(cursor_byte, cursor_byte)
    while node is not None:
        if ("string" in node.type or "comment" in node.type) and node.start_byte < cursor_byte < node.end_byte:
            return True
        node = node.parent
    return False


def _previous_token(root: Node, source: bytes, cursor_byte: int) -> Node | None:
    """The leaf ending at the last non-whitespace byte before the cursor."""
    last = len(source[:cursor_byte].rstrip()) - 1
    if last < 0:
        return None
    node = root.descendant_for_byte_range(last, last + 1)
    # Comment and string tokens are the whole node, not their first child.
    while node is not None and node.parent is not None and node.parent.end_byte == node.end_byte and (
        "comment" in node.parent.type or "string" in node.parent.type
    ):
        node = node.parent
    return node


def _opens_block(token: Node, language: str) -> bool:
    if language in INDENT_LANGUAGES:
        parent = token.parent
        return token.type == ":" and parent is not None and parent.type in _PY_HEADER_PARENTS
    return token.type == "{"


def _innermost_scope(tree: Tree, language: str, cursor_byte: int) -> str | None:
    """Capture name of the smallest scope strictly containing the cursor."""
    cursor = QueryCursor(load_query(language, "scopes"))
    cursor.set_byte_range(max(cursor_byte - 1, 0), cursor_byte + 1)
    best: tuple[int, str] | None = None
    for name, nodes in cursor.captures(tree.root_node).items():
        for node in nodes:
            if node.start_byte < cursor_byte < node.end_byte and (best is None or node.start_byte > best[0]):
                best = (node.start_byte, name)
    return best[1] if best else None
