"""Small text helpers shared by the post-processing steps."""

from __future__ import annotations

import re

OPENERS = "([{"
CLOSERS = ")]}"
# Languages whose blocks are delimited by indentation rather than braces.
INDENT_LANGUAGES = frozenset({"python"})

_STRING_QUOTES = "'\"`"


def leading_whitespace(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def indent_width(whitespace: str, tab_size: int = 4) -> int:
    """Display width of leading whitespace (tabs advance to the next stop)."""
    width = 0
    for char in whitespace:
        width = (width // tab_size + 1) * tab_size if char == "\t" else width + 1
    return width


def is_blank(line: str) -> bool:
    return not line.strip()


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def bracket_events(text: str) -> list[tuple[int, str]]:
    """(offset, bracket) for brackets outside string literals and // comments.

    A language-agnostic approximation used where no parse is available: it
    skips quoted strings (with backslash escapes) so "(" in "a(b" is ignored.
    """
    events: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _STRING_QUOTES:
            i = _skip_string(text, i)
            continue
        if text.startswith("//", i) or text.startswith("/*", i):
            end = text.find("\n" if text[i + 1] == "/" else "*/", i + 2)
            i = n if end < 0 else end + (0 if text[i + 1] == "/" else 2)
            continue
        if char in OPENERS or char in CLOSERS:
            events.append((i, char))
        i += 1
    return events


def _skip_string(text: str, start: int) -> int:
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote or (text[i] == "\n" and quote != "`"):
            return i + 1
        i += 1
    return len(text)


def unclosed_openers(text: str) -> int:
    """Openers in `text` that `text` itself does not close."""
    stack = 0
    for _, char in bracket_events(text):
        if char in OPENERS:
            stack += 1
        elif stack:
            stack -= 1
    return stack


_WORD = re.compile(r"\w", re.UNICODE)


def has_word(text: str) -> bool:
    return _WORD.search(text) is not None
