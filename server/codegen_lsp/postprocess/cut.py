"""Cut a completion at the end of the syntactic unit it is writing."""

from __future__ import annotations

import re

from tree_sitter import Node, Tree

from .mode import Mode
from .parsing import parse_with_insertion
from .text import CLOSERS, INDENT_LANGUAGES, OPENERS, bracket_events, indent_width, is_blank, leading_whitespace

_PY_CONTINUATION = re.compile(r"^(elif\b|else\b|except\b|finally\b)")
_PY_DEFINITION = re.compile(r"^(@|def\b|class\b|async\s+def\b)")
# A brace unit goes on when the next line continues the statement.
_BRACE_CONTINUATION = re.compile(r"^(else\b|catch\b|finally\b|\.|\?|:|&&|\|\|)")
# Leaf token types that are brackets.  "${" opens a template substitution:
# it nests like a bracket but is not a block, so it counts as "(".
_BRACKET_TOKENS = {char: char for char in OPENERS + CLOSERS} | {"${": "("}
# Python nodes inside which line breaks and indentation do not matter.
_PY_NO_INDENT = frozenset(
    {
        "string", "argument_list", "parameters", "list", "dictionary", "set", "tuple",
        "parenthesized_expression", "generator_expression", "list_comprehension",
        "dictionary_comprehension", "set_comprehension", "subscript", "type_parameter",
    }
)


def cut_to_syntax_unit(
    prefix: str, completion: str, language: str | None, mode: Mode, suffix: str = "", tree: Tree | None = None
) -> str:
    """The part of `completion` that forms one unit.

    single-line: the first line.  multi-line: up to the end of the block the
    completion is writing (trailing whitespace dropped), by indentation for Python and by bracket depth for
    brace languages.  The buffer prefix+completion+suffix is parsed (when a
    grammar exists) so that brackets and dedents inside strings and comments
    do not count; `tree`, the parse of prefix+suffix, makes that incremental.
    """
    if mode == "single-line":
        return completion.split("\n", 1)[0]
    tree = parse_with_insertion(language, prefix, completion, suffix, tree)
    start = len(prefix.encode("utf-8"))
    if language in INDENT_LANGUAGES:
        return _cut_by_indentation(prefix, completion, tree, start).rstrip()
    return _cut_by_brackets(completion, tree, start).rstrip()


# -- indentation (Python) ------------------------------------------------------


def _cut_by_indentation(prefix: str, completion: str, tree: Tree | None, start_byte: int) -> str:
    """Stop at a dedent below the cursor's block, at the end of a block the
    completion opened, or at a second top-level definition."""
    cursor_line = prefix[prefix.rfind("\n") + 1 :]
    lines = (cursor_line + completion).split("\n")
    # Byte offset of each line start in the buffer, to ask the tree about it.
    line_bytes = [start_byte - len(cursor_line.encode("utf-8"))]
    for line in lines[:-1]:
        line_bytes.append(line_bytes[-1] + len(line.encode("utf-8")) + 1)

    first = next((i for i, line in enumerate(lines) if not is_blank(line)), None)
    if first is None:
        return completion
    floor = indent_width(leading_whitespace(lines[first]))
    header = _strip_py_comment(lines[first]).rstrip().endswith(":")
    definition = "header" if _PY_DEFINITION.match(lines[first].lstrip()) else None

    # Comments just before the cut introduce what follows: cut above them.
    last_code = first
    for i in range(first + 1, len(lines)):
        line = lines[i]
        code = line.strip()
        if not code or code.startswith("#"):
            continue
        if _is_continuation(tree, line_bytes[i]):
            last_code = i
            continue
        width = indent_width(leading_whitespace(line))
        ends_unit = width < floor or (width == floor and header and not _PY_CONTINUATION.match(code))
        if width == floor and _PY_DEFINITION.match(code):
            ends_unit = ends_unit or definition == "body"
            definition = "header"
        if ends_unit:
            return _cut_at_line(completion, lines, last_code + 1, len(cursor_line))
        if width > floor and definition == "header":
            definition = "body"
        last_code = i
    return completion


def _strip_py_comment(line: str) -> str:
    # Good enough for a header line: '#' inside a string there is rare.
    return line.split("#", 1)[0]


def _is_continuation(tree: Tree | None, byte: int) -> bool:
    """Whether a line starting at `byte` is inside a string or brackets,
    where its indentation means nothing."""
    if tree is None:
        return False
    node: Node | None = tree.root_node.descendant_for_byte_range(byte, byte)
    while node is not None:
        if node.type in _PY_NO_INDENT and node.start_byte < byte < node.end_byte:
            return True
        node = node.parent
    return False


def _cut_at_line(completion: str, lines: list[str], index: int, cursor_column: int) -> str:
    """`completion` up to (not including) line `index` of cursor_line+completion."""
    offset = sum(len(line) + 1 for line in lines[:index]) - cursor_column
    return completion[: max(offset, 0)].rstrip()


# -- brackets (brace languages) ---------------------------------------------------


def _cut_by_brackets(completion: str, tree: Tree | None, start_byte: int) -> str:
    """Stop where a bracket closes a block that encloses the cursor, or after
    the statement in which the brackets the completion opened close again."""
    events = _bracket_tokens(completion, tree, start_byte)
    depth = 0
    opened = False  # a "{" block opened by the completion itself
    for index, (offset, char) in enumerate(events):
        if char in OPENERS:
            depth += 1
            opened = opened or char == "{"
            continue
        depth -= 1
        if depth < 0:
            line_start = completion.rfind("\n", 0, offset) + 1
            keep = line_start if is_blank(completion[line_start:offset]) else offset
            return completion[:keep].rstrip()
        if depth == 0 and opened:
            end = _unit_end(completion, offset, events[index + 1 :])
            if end is not None:
                return completion[:end].rstrip()
    return completion


def _unit_end(completion: str, offset: int, later: list[tuple[int, str]]) -> int | None:
    """End of the line where depth returned to 0, unless the statement goes on."""
    line_end = completion.find("\n", offset)
    if line_end < 0:
        return None
    if any(pos < line_end for pos, char in later if char in OPENERS):
        return None  # "} else {", "}).then(() => {"
    following = completion[line_end + 1 :].lstrip()
    if _BRACE_CONTINUATION.match(following):
        return None
    if not following:
        return None
    return line_end


def _bracket_tokens(completion: str, tree: Tree | None, start_byte: int) -> list[tuple[int, str]]:
    """Bracket tokens of the completion as (offset into completion, char)."""
    if tree is None:
        return bracket_events(completion)
    data = completion.encode("utf-8")
    end_byte = start_byte + len(data)
    found: list[tuple[int, str]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_byte <= start_byte or node.start_byte >= end_byte:
            continue
        if node.child_count == 0:
            char = _BRACKET_TOKENS.get(node.type)
            if char is not None and not node.is_missing:
                found.append((node.start_byte, char))
            continue
        stack.extend(node.children)
    found.sort()
    # Byte offsets -> str offsets into the completion.
    return [(len(data[: byte - start_byte].decode("utf-8", "ignore")), char) for byte, char in found]
