"""Stop a completion where it starts repeating the text after the cursor."""

from __future__ import annotations

from .text import has_word, is_blank, unclosed_openers


def trim_suffix_overlap(completion: str, suffix_text: str) -> str:
    """`completion` cut where it re-types what already follows the cursor.

    Two cases, tried in order:

    * same line: the rest of the cursor line (e.g. ")" or ") {") reappears in
      the completion's first line; cut before it, but only if the kept part
      closes every bracket it opens ("foo(a)" before ")" is not trimmed to
      "foo(a").
    * following lines: a completion line equals the first non-blank line of
      the suffix.  A line with a word in it ("return x") is distinctive
      enough alone; a bare "}" or ")" must be confirmed by the next line too,
      or be the completion's last line, since completions close their own
      blocks with identical lines.
    """
    rest_of_line = suffix_text.split("\n", 1)[0].strip()
    if rest_of_line:
        cut = _same_line_cut(completion.split("\n", 1)[0], rest_of_line)
        if cut is not None:
            return completion[:cut]
    return _line_overlap_cut(completion, suffix_text)


def _same_line_cut(first_line: str, rest: str) -> int | None:
    stripped_end = len(first_line.rstrip())
    for start in range(stripped_end):
        if first_line[start].isspace():
            continue
        tail = first_line[start:stripped_end]
        if not _overlaps(first_line, start, tail, rest):
            continue
        kept = first_line[:start]
        if unclosed_openers(kept) == 0:
            return len(kept.rstrip()) if kept.strip() else 0
    return None


def _overlaps(line: str, start: int, tail: str, rest: str) -> bool:
    if tail[0].isalnum() or tail[0] == "_":
        # Words only match whole and at a token boundary: "self.x" must not
        # lose its "x" because the suffix starts with "x".
        boundary = start == 0 or not (line[start - 1].isalnum() or line[start - 1] == "_")
        return boundary and tail.startswith(rest)
    # Punctuation may also overlap partly: the completion ends with ")" and
    # the line continues with ") {".
    return tail.startswith(rest) or rest.startswith(tail)


def _line_overlap_cut(completion: str, suffix_text: str) -> str:
    suffix_lines = [line.strip() for line in suffix_text.split("\n") if not is_blank(line)]
    if not suffix_lines:
        return completion
    lines = completion.split("\n")
    offset = 0
    for index, line in enumerate(lines):
        if not is_blank(line) and line.strip() == suffix_lines[0] and _confirmed(lines[index:], suffix_lines):
            return completion[:offset].rstrip()
        offset += len(line) + 1
    return completion


def _confirmed(tail: list[str], suffix_lines: list[str]) -> bool:
    if has_word(suffix_lines[0]):
        return True
    rest = [line.strip() for line in tail if not is_blank(line)]
    matched = 0
    for mine, theirs in zip(rest, suffix_lines):
        if mine != theirs:
            break
        matched += 1
    return matched >= 2 or matched == len(rest)
