"""Raw model completion -> text to insert (or nothing, with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Tree

from .cut import cut_to_syntax_unit
from .errors import count_errors, introduces_parse_error
from .indent import detect_indent_unit, reindent, without_extra_indent
from .mode import Mode, decide_mode
from .overlap import trim_suffix_overlap
from .parsing import parse_text, parse_with_insertion
from .repetition import find_repetition
from .text import leading_whitespace, normalize_newlines


@dataclass(frozen=True)
class CompletionContext:
    """The document around the cursor.

    `prefix`/`suffix` are the text before/after the cursor (the suffix as far
    as the caller has it).  `tree`, if given, is the parse of prefix+suffix;
    it saves a parse and makes the error check incremental.
    """

    language: str | None
    prefix: str
    suffix: str
    tree: Tree | None = None
    indent_unit: str | None = None


@dataclass(frozen=True)
class PostprocessResult:
    text: str
    mode: Mode
    # "ok" when text is kept; otherwise why it was dropped.
    reason: str

    @property
    def dropped(self) -> bool:
        return not self.text


def suggestion_mode(context: CompletionContext) -> Mode:
    """One line or a block, decided before generating (a single line stops decoding at its newline)."""
    tree = context.tree if context.tree is not None else parse_text(context.language, context.prefix + context.suffix)
    source = (context.prefix + context.suffix).encode("utf-8")
    return decide_mode(tree, source, len(context.prefix.encode("utf-8")), context.language)


def _opens_block_above(prefix: str) -> bool:
    """The last line with code above the cursor's ends with a block or bracket opener and is indented at
    least as deep as the cursor: a deeper line is what comes next."""
    lines = prefix.split("\n")
    cursor_depth = len(lines[-1])
    above = next((line for line in reversed(lines[:-1]) if line.strip()), "")
    return above.rstrip().endswith((":", "{", "(", "[")) and len(leading_whitespace(above)) >= cursor_depth


def _errors_with(context: CompletionContext, completion: str, tree: Tree | None) -> int:
    """ERROR/MISSING nodes in the buffer with `completion` at the cursor (0 without a grammar)."""
    inserted = parse_with_insertion(context.language, context.prefix, completion, context.suffix, tree)
    return count_errors(inserted.root_node) if inserted is not None else 0


def postprocess(context: CompletionContext, completion: str, mode: Mode | None = None,
                repetition_filter: bool = True) -> PostprocessResult:
    """Run the steps in order: newline normalization, repetition cut, reindent (and, after the
    editor's indentation, no extra indentation first), suffix overlap, syntax-unit cut, parse-error
    check."""
    tree = context.tree if context.tree is not None else parse_text(context.language, context.prefix + context.suffix)
    if mode is None:
        mode = suggestion_mode(CompletionContext(context.language, context.prefix, context.suffix, tree))

    text = normalize_newlines(completion)
    if not text.strip():
        return PostprocessResult("", mode, "empty completion")
    if repetition_filter and (found := find_repetition(text, context.prefix)) is not None:
        text = text[:found[0]]
        if not text.strip():
            return PostprocessResult("", mode, f"completion only repeats itself: {found[1]}")

    cursor_line = context.prefix[context.prefix.rfind("\n") + 1 :]
    indent_unit = context.indent_unit or detect_indent_unit(context.prefix[-20000:])
    text = reindent(text, leading_whitespace(cursor_line), indent_unit)
    if cursor_line and not cursor_line.strip() and text[:1] in (" ", "\t") and not _opens_block_above(context.prefix):
        # After the editor's indentation, more leading whitespace is almost always one level too deep
        # (`make demo` got 8 extra spaces): drop it, unless the line above opens a block the editor did
        # not indent for (`if x:` at the cursor's depth), or the deeper text parses better.
        shifted = without_extra_indent(text)
        if _errors_with(context, shifted, tree) <= _errors_with(context, text, tree):
            text = shifted

    text = trim_suffix_overlap(text, normalize_newlines(context.suffix))
    if not text.strip():
        return PostprocessResult("", mode, "completion only repeats the text after the cursor")

    text = cut_to_syntax_unit(context.prefix, text, context.language, mode, context.suffix, tree).rstrip()
    if not text.strip():
        return PostprocessResult("", mode, f"nothing left after the {mode} cut")

    if "\r\n" in context.prefix or "\r\n" in context.suffix:
        text = text.replace("\n", "\r\n")
    if introduces_parse_error(context.language, context.prefix, text, context.suffix, tree):
        return PostprocessResult("", mode, "completion introduces a parse error")
    return PostprocessResult(text, mode, "ok")

