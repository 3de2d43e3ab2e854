"""Where one turn's generated code ends: the CodeGen paper's MTPB truncation, per language.

The paper cuts a Python completion at the 2nd line starting with `print` and the 2nd starting
with `def`, then at the earliest of a line starting with `#`, `'''` or `\"\"\"`, `<|endoftext|>`
or `\\n\\n\\n`. Generalised: lines are judged at the turn's indentation (the comment's), comments
and definitions are found by the grammar's own queries, a line indented less than the turn ends
the enclosing block, and "print" is each language's usual output call.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import QueryCursor

from ..postprocess.parsing import parse_text
from ..postprocess.text import is_blank, leading_whitespace, normalize_newlines
from ..syntax.queries import QueryNotFound, load_query

END_OF_TEXT = "<|endoftext|>"
BLANK_RUN = "\n\n\n"  # two blank lines end a turn

OUTPUT_CALLS: dict[str, tuple[str, ...]] = {
    "python": ("print(", "print "),
    "javascript": ("console.log(",), "typescript": ("console.log(",), "tsx": ("console.log(",),
    "go": ("fmt.Print",),
    "rust": ("println!", "print!"),
    "java": ("System.out.print",),
    "c": ("printf(", "puts("),
    "cpp": ("std::cout", "cout <<", "printf("),
}
_FALLBACK_COMMENT_MARKERS = ("#", "//", "/*")
_PYTHON_DOC_OPENERS = ('"""', "'''")  # the paper's rule: a docstring-like line ends the turn


@dataclass(frozen=True)
class TurnCode:
    text: str  # lines at the turn's indentation (first line included), no trailing newline
    reason: str  # what ended the turn


def stop_strings(indent: str, language: str | None) -> tuple[str, ...]:
    """Strings that let the engine stop decoding early; truncate_turn makes the exact cut."""
    markers = {"python": ("#",)}.get(language or "", ("//", "/*") if language else _FALLBACK_COMMENT_MARKERS)
    return (BLANK_RUN, END_OF_TEXT) + tuple(f"\n{indent}{marker}" for marker in markers)


_FINISH_REASONS = {"end": "end token", "stop": "stop string", "length": "token budget"}


def truncate_turn(completion: str, indent: str, language: str | None, finish: str = "length") -> TurnCode:
    """The turn's code, cut out of `completion` (the prompt ended with the comment's newline, so
    the model writes the indentation itself: a prompt ending in spaces splits BPE tokens)."""
    text = normalize_newlines(completion)
    reason = _FINISH_REASONS.get(finish, finish)
    for marker, why in ((END_OF_TEXT, "end token"), (BLANK_RUN, "blank lines")):
        if marker in text:
            text, reason = text[: text.index(marker)], why
    lines = text.split("\n")
    while lines and is_blank(lines[0]):
        lines.pop(0)
    text = "\n".join(lines)
    cut, why = _line_cut(text, indent, language)
    if cut is not None:
        text, reason = text[:cut], why
    return TurnCode(text.rstrip(), reason)


def _line_cut(text: str, indent: str, language: str | None) -> tuple[int | None, str]:
    comment_rows, definition_rows = _syntax_rows(text, len(indent.encode("utf-8")), language)
    outputs = OUTPUT_CALLS.get(language or "", ())
    definitions = prints = 0
    offset = 0
    for row, line in enumerate(text.split("\n")):
        start, offset = offset, offset + len(line) + 1
        if is_blank(line):
            continue
        whitespace = leading_whitespace(line)
        if len(whitespace) < len(indent):
            return start, "end of block"
        if len(whitespace) != len(indent):
            continue
        body = line[len(whitespace):]
        if row in comment_rows or _looks_like_comment(body, language):
            return start, "next comment"
        if row in definition_rows:
            definitions += 1
            if definitions == 2:
                return start, "second definition"
        if outputs and body.startswith(outputs):
            prints += 1
            if prints == 2:
                return start, "second print"
    return None, ""


def _looks_like_comment(body: str, language: str | None) -> bool:
    if language is None:
        return body.startswith(_FALLBACK_COMMENT_MARKERS)
    return language == "python" and body.startswith(_PYTHON_DOC_OPENERS)


def _syntax_rows(text: str, column: int, language: str | None) -> tuple[set[int], set[int]]:
    """Rows where a comment, and where a function or class definition, starts at `column`."""
    tree = parse_text(language, text)
    if tree is None or language is None:
        return set(), set()
    rows: dict[str, set[int]] = {"comment": set(), "definition": set()}
    for kind, names in (("comments", ("comment.line", "comment.block", "comment.doc")),
                        ("scopes", ("scope.function", "scope.class"))):
        try:
            captures = QueryCursor(load_query(language, kind)).captures(tree.root_node)
        except QueryNotFound:
            continue
        for name in names:
            for node in captures.get(name, []):
                if node.start_point[1] == column:
                    rows["comment" if kind == "comments" else "definition"].add(node.start_point[0])
    return rows["comment"], rows["definition"]
