"""Make a completion's indentation match the buffer's."""

from __future__ import annotations

import re
from collections import Counter

from .text import indent_width, is_blank, leading_whitespace

DEFAULT_INDENT_UNIT = "    "
# The indentation of each line with something on it, in one pass (it runs on every suggestion over up
# to 20,000 characters: a Python loop over the lines took ~0.5 ms of it).
_LINE_INDENT = re.compile(r"^([ \t]*)\S", re.MULTILINE)


def detect_indent_unit(text: str, default: str = DEFAULT_INDENT_UNIT) -> str:
    """The buffer's indentation unit: "\\t" or a run of spaces (most common step)."""
    tabbed = spaced = 0
    steps: Counter[int] = Counter()
    previous = 0
    for whitespace in _LINE_INDENT.findall(text.replace("\r", "\n")):
        if whitespace.startswith("\t"):
            tabbed += 1
        elif whitespace:
            spaced += 1
            width = len(whitespace)
            if width > previous:
                steps[width - previous] += 1
            previous = width
            continue
        previous = 0
    if tabbed > spaced:
        return "\t"
    if not steps:
        return default
    return " " * steps.most_common(1)[0][0]


def reindent(
    completion: str,
    cursor_line_indent: str,
    indent_unit: str | None = None,
    *,
    relative: bool = False,
    tab_size: int = 4,
) -> str:
    """Rewrite the leading whitespace of the completion's lines after the first.

    * Style: tabs if the buffer indents with tabs (the cursor line's
      indentation, else `indent_unit`, tells), spaces otherwise.  Widths are
      kept, so a continuation line aligned under an opening bracket stays
      aligned: its remainder after whole tabs stays spaces.
    * `relative=True`: the model wrote lines relative to column 0 (e.g. a
      prompt without the surrounding code); shift them to the cursor's block.
    * Whitespace-only lines become empty.

    The first line continues the cursor line and is left as is.
    """
    uses_tabs = _uses_tabs(cursor_line_indent, indent_unit)
    if indent_unit and not indent_unit.startswith("\t"):
        tab_size = len(indent_unit)
    shift = indent_width(cursor_line_indent, tab_size) if relative else 0
    lines = completion.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        if is_blank(line):
            out.append("")
            continue
        whitespace = leading_whitespace(line)
        if uses_tabs is None and not shift:
            out.append(line)
            continue
        width = indent_width(whitespace, tab_size) + shift
        out.append(_whitespace(width, bool(uses_tabs) if uses_tabs is not None else "\t" in whitespace, tab_size)
                   + line[len(whitespace):])
    return "\n".join(out)


def _uses_tabs(cursor_line_indent: str, indent_unit: str | None) -> bool | None:
    """True/False when the buffer's style is known, None when it is not."""
    if cursor_line_indent:
        return "\t" in cursor_line_indent
    if indent_unit:
        return indent_unit.startswith("\t")
    return None


def _whitespace(width: int, tabs: bool, tab_size: int) -> str:
    if tabs:
        return "\t" * (width // tab_size) + " " * (width % tab_size)
    return " " * width


def without_extra_indent(completion: str) -> str:
    """The completion moved left by its first line's leading whitespace: each later line loses as much
    of its own leading whitespace (what it has, if less). For a cursor after the indentation of an
    otherwise empty line, where the editor has placed the indentation already: whitespace the model
    puts first is indentation on top of it (token healing lets a model trade the prompt's whitespace
    token for a longer one), and its later lines are written relative to that deeper column."""
    lines = completion.split("\n")
    extra = len(leading_whitespace(lines[0]))
    if not extra:
        return completion
    return "\n".join(line[min(extra, len(leading_whitespace(line))):] for line in lines)
