"""Degenerate output: where a suggestion starts repeating itself, and where to cut it.

Small models loop: `3 3 3 3 …`, `1000000000…`, `self.x = self.x` again and again, or the line above
the cursor nested inside itself. Every repeated line is valid code in the same block, so the syntax
cut cannot catch it. The rules (a suggestion is cut before the first place one applies):

- a unit of 1–8 characters repeated 8 times in a row (9–32 characters: 4 times), whitespace excepted,
  keeping its first instance (`10000000000` → `10`);
- a block of 1–8 lines that repeats the block just before it, whether that block is in the suggestion
  or above the cursor (`if name.endswith('.py'):` nested in itself);
- a line of the suggestion that occurs there for the third time.

Lines are compared without their indentation; blank lines and structural lines (`}`, `pass`, `return
None`, `else:`) never count. Legitimate repetition is kept: the document above the cursor already has
the same run, the same repeated block, or the line twice (generated data, tables, `0, 0, 0, 0`).

One scanner serves both places: the engine feeds it each token's text and stops decoding as soon as
it reports a cut; post-processing runs it over the whole suggestion. It is linear in the text's
length (a fixed number of counters per character, a bounded block search per line). Pure.
"""

from __future__ import annotations

import re
from collections import Counter

MAX_UNIT = 32
MAX_BLOCK_LINES = 8
CONTEXT_LINES = 64  # lines above the cursor that count as "the block just before" or as precedent
CONTEXT_CHARS = 8000  # text above the cursor searched for a precedent of a unit run
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+")
STRUCTURAL_WORDS = frozenset({
    "return", "None", "null", "nil", "undefined", "break", "continue", "pass", "else", "try", "finally",
    "end", "true", "false", "True", "False", "default", "do", "then", "fi", "done", "esac", "begin",
    "yield", "await", "self", "this", "raise", "throw", "new", "super", "Ok", "Some", "unreachable",
})


def min_repeats(unit_length: int) -> int:
    return 8 if unit_length <= 8 else 4


def is_structural(line: str) -> bool:
    """A line that legitimately repeats: blank, punctuation only, or keywords only."""
    words = _WORD.findall(line)
    return not words or all(w in STRUCTURAL_WORDS for w in words)


class RepetitionScanner:
    """Feed text as it is generated; `cut` becomes the offset (into all text fed) where the suggestion
    should end, and `reason` says why, once a rule applies."""

    def __init__(self, context: str = "") -> None:
        self._context_text = context = context[-CONTEXT_CHARS:]
        lines = context.split("\n")
        self._line_start = lines[-1]  # the cursor line's text before the cursor
        self._context_lines = [l.strip() for l in lines[:-1][-CONTEXT_LINES:] if l.strip()]
        self._context_counts = Counter(self._context_lines)
        self._context_repeated_blocks = _repeated_blocks(self._context_lines)
        self._text: list[str] = []
        self._length = 0
        self._runs = [0] * (MAX_UNIT + 1)  # per unit length L: how many characters in a row equal the one L before
        self._lines: list[str] = list(self._context_lines)  # stripped non-blank lines, context first
        self._line_offsets: list[int] = [-1] * len(self._context_lines)  # where each line starts in the text fed
        self._first_own = len(self._context_lines)  # index of the first line that belongs to the suggestion
        self._own_counts: Counter[str] = Counter()
        self._line_begin = 0  # offset in the text fed where the current (unfinished) line starts
        self.cut: int | None = None
        self.reason = ""

    @property
    def text(self) -> str:
        return "".join(self._text)

    def feed(self, chunk: str) -> int | None:
        for char in chunk:
            if self.cut is not None:
                break
            self._text.append(char)
            self._length += 1
            self._scan_units()
            if char == "\n" and self.cut is None:
                self._end_line(self._length - 1)
        return self.cut

    def finish(self) -> int | None:
        """The text ended: its last line counts as complete."""
        if self.cut is None and self._line_begin < self._length:
            self._end_line(self._length)
        return self.cut

    # -- runs of one unit ----------------------------------------------------------------------

    def _scan_units(self) -> None:
        text, i = self._text, self._length - 1
        for length in range(1, min(MAX_UNIT, i) + 1):
            if text[i] != text[i - length]:
                self._runs[length] = 0
                continue
            self._runs[length] += 1
            if self._runs[length] != (min_repeats(length) - 1) * length:
                continue
            start = i - self._runs[length] - length + 1  # the first instance of the unit
            unit = "".join(text[start:start + length])
            if unit.isspace() or _primitive(unit) != unit or self._has_precedent(unit):
                continue
            self._set_cut(start + length, f"a unit repeated {min_repeats(length)} times in a row ({unit!r})")
            return

    def _has_precedent(self, unit: str) -> bool:
        repeats = min_repeats(len(unit))
        return any((unit[k:] + unit[:k]) * repeats in self._context_text for k in range(len(unit)))

    # -- lines and blocks ----------------------------------------------------------------------

    def _end_line(self, end: int) -> None:
        begin, self._line_begin = self._line_begin, end + 1
        own = "".join(self._text[begin:end])
        line = (self._line_start + own if begin == 0 else own).strip()  # the first line continues the cursor line
        if not line:
            return
        if begin == 0 and not own.strip():  # the cursor line as typed: context, not the suggestion's
            self._lines.append(line)
            self._line_offsets.append(-1)
            self._first_own += 1
            self._context_counts[line] += 1
            return
        self._lines.append(line)
        self._line_offsets.append(begin)
        last = len(self._lines) - 1
        if not is_structural(line):
            self._own_counts[line] += 1
            if self._own_counts[line] == 3 and self._context_counts[line] < 2:
                self._set_cut(begin, f"a line repeated a third time ({line!r})")
                return
        for size in range(1, MAX_BLOCK_LINES + 1):
            first = last - size + 1  # the block lines[first:last+1] against the one before it
            if first < self._first_own or first - size < 0:
                break
            block = self._lines[first:last + 1]
            if block != self._lines[first - size:first] or all(is_structural(l) for l in block):
                continue
            if tuple(block) in self._context_repeated_blocks:
                continue
            self._set_cut(self._line_offsets[first], f"a block of {size} line{'s' * (size > 1)} repeating the one "
                                                     "before it")
            return

    def _set_cut(self, offset: int, reason: str) -> None:
        self.cut, self.reason = max(0, offset), reason


def _primitive(unit: str) -> str:
    """The shortest unit that repeats to `unit` ("abab" → "ab")."""
    for size in range(1, len(unit)):
        if len(unit) % size == 0 and unit[:size] * (len(unit) // size) == unit:
            return unit[:size]
    return unit


def _repeated_blocks(lines: list[str]) -> set[tuple[str, ...]]:
    """Blocks of 1–8 lines that the context itself repeats right after themselves."""
    found: set[tuple[str, ...]] = set()
    for size in range(1, MAX_BLOCK_LINES + 1):
        for first in range(size, len(lines) - size + 1):
            if lines[first:first + size] == lines[first - size:first]:
                found.add(tuple(lines[first:first + size]))
    return found


def find_repetition(text: str, context: str = "") -> tuple[int, str] | None:
    """(offset to cut `text` at, why) for the first repetition rule that applies, or None."""
    scanner = RepetitionScanner(context)
    scanner.feed(text)
    scanner.finish()
    return None if scanner.cut is None else (scanner.cut, scanner.reason)


def is_degenerate(text: str) -> bool:
    """The target, without context: a line repeated 3+ times (structural lines such as `}` excepted), or
    a unit of 1–8 characters (not only whitespace) repeated 8+ times in a row (`bench quality` counts these)."""
    lines = Counter(l.strip() for l in text.split("\n") if l.strip() and not is_structural(l))
    if any(count >= 3 for count in lines.values()):
        return True
    for length in range(1, 9):
        run = 0
        for i in range(length, len(text)):
            run = run + 1 if text[i] == text[i - length] else 0
            if run >= 7 * length and not text[i - length + 1:i + 1].isspace():
                return True
    return False
