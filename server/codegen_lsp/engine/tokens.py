"""Token ids of a text that differs a little from one tokenized just before, without tokenizing it all.

Every keystroke changes the document in one place, and the prompt is built from it again: tokenizing
a whole file costs milliseconds per call (textwrap.py, 4,800 tokens: ~5 ms, three times per request).
Byte-level BPE tokenizers split text into pre-tokens by a regular expression first and merge only
inside them, so at a pre-token boundary the ids before it do not depend on the text after it, and
the other way round. A new text then takes the old ids up to the last boundary before the edit, the
old ids from the first boundary after it, and tokenizes only what lies between.

Split points (`_line_points`), each a boundary in the GPT-2 and the Llama-3 pre-tokenizer regexes
(and the ones derived from them) whatever text lies beyond the characters that decide it:
- a line starting without indentation, after a line whose last character is visible ASCII;
- the last space of an indentation of spaces and tabs, before visible ASCII (the space goes
  with the word: " return");
- the end of an indentation that is itself a whitespace token matched before BPE (CodeGen's added
  tokens: "    " then "return").
A point is used only where the old ids have a token starting there too. Only vocabularies whose
pre-tokenizer llama.cpp runs with those regexes splice (`SPLICE_PRE_TOKENIZERS`, and no added tokens
but whitespace runs; the tests check both regex families on real vocabularies). As a last guard the
first splices of every model are checked against a whole tokenization while the engine waits for
requests: a mismatch turns splicing off for that model (logged), so a tokenizer that breaks the rule
would cost at most those first prompts' ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

# tokenizer.ggml.pre values whose llama.cpp pre-tokenizer is the GPT-2 regex (alone or after splitting
# digits) or the Llama-3 one (llama-vocab.cpp); the splice rule is checked against both in the tests.
SPLICE_PRE_TOKENIZERS = frozenset({
    "gpt-2", "mpt", "olmo", "starcoder", "refact", "command-r", "smollm", "codeshell",
    "llama3", "llama-bpe", "dbrx", "smaug-bpe", "qwen2", "stablelm2",
})
VERIFY_FIRST = 8  # splices checked against a whole tokenization, per model
RECENT = 16  # texts remembered: a prompt fit tokenizes ~3 per request
MIN_SHARED = 256  # characters in common with a remembered text, below which tokenizing afresh is as cheap
SEARCH_LINES = 400  # lines looked at for a split point before giving up on one side
MAX_TRIES = 64  # split points tried on one side (each must start a token of the old text)


def _visible(ch: str) -> bool:
    return "!" <= ch <= "~"


def _line_points(text: str, line: int, runs: frozenset[str]) -> list[int]:
    """The split points on the line starting at `line` (just after a line break), in order."""
    rest = text[line:line + 256]
    q = line + len(rest) - len(rest.lstrip(" \t"))  # where the indentation ends
    if q + 1 >= len(text) or not _visible(text[q]):
        return []  # a blank line, or the end of the text
    if q == line:  # no indentation: a boundary after the break if the line above ends visibly
        return [line] if line >= 2 and _visible(text[line - 2]) else []
    points = [q - 1] if text[q - 1] == " " else []  # " return": the space goes with the word
    if text[line:q] in runs:  # the whole indentation is one whitespace token, matched before BPE
        points.append(q)
    return points


def _points_before(text: str, before: int, runs: frozenset[str]) -> Iterator[int]:
    """Split points p with p + 2 <= before (the characters deciding them lie before `before`), last first."""
    end = before
    for _ in range(SEARCH_LINES):
        line = text.rfind("\n", 0, end) + 1
        if line == 0:
            return
        for p in reversed(_line_points(text, line, runs)):
            if p + 2 <= before:
                yield p
        end = line - 1


def _points_from(text: str, shared_from: int, at: int, runs: frozenset[str]) -> Iterator[int]:
    """Split points p >= at on lines whose deciding characters (from the end of the line above on)
    all lie at or after `shared_from`, first first."""
    start = max(shared_from + 2, 2)
    for _ in range(SEARCH_LINES):
        line = text.find("\n", start - 1) + 1  # the first line starting at `start` or later
        if line <= 0:
            return
        for p in _line_points(text, line, runs):
            if p >= at:
                yield p
        start = line + 1


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi - 1:  # a[:lo] == b[:lo], a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    if a[len(a) - hi:] == b[len(b) - hi:]:
        return hi
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid
    return lo


def _byte_offset(text: str, chars: int) -> int:
    return chars if text.isascii() else len(text[:chars].encode("utf-8", "replace"))


@dataclass
class _Entry:
    ids: tuple[int, ...]
    starts: np.ndarray | None = field(default=None)  # byte offset of each token, once asked for


class SpliceTokenizer:
    """`ids(text)`: what `tokenize(text)` returns, from the remembered tokenizations where it can be.
    `piece_lengths[i]`: how many bytes token i stands for (the vocabulary's pieces)."""

    def __init__(self, tokenize: Callable[[str], list[int]], piece_lengths: Sequence[int], splice: bool,
                 runs: frozenset[str] = frozenset()) -> None:
        self._tokenize = tokenize
        self._lengths = np.asarray(piece_lengths, dtype=np.int64)
        self.splice = splice
        self.runs = runs  # whitespace tokens matched before BPE (CodeGen's added tokens)
        self._recent: dict[str, _Entry] = {}  # oldest first
        self._to_verify = VERIFY_FIRST
        self._unchecked: list[tuple[str, tuple[int, ...]]] = []  # splices to check when the engine is idle
        self.spliced = 0  # texts answered by splicing (for tests and benchmarks)

    def ids(self, text: str) -> tuple[int, ...]:
        return self._entry(text).ids

    def byte_starts(self, text: str) -> np.ndarray:
        """The byte offset where each of text's tokens starts."""
        entry = self._entry(text)
        if entry.starts is None:
            ends = np.cumsum(self._lengths[np.asarray(entry.ids, dtype=np.int64)]) if entry.ids else np.zeros(0, np.int64)
            entry.starts = np.concatenate(([0], ends[:-1])) if len(ends) else ends
        return entry.starts

    def _entry(self, text: str) -> _Entry:
        entry = self._recent.pop(text, None)
        if entry is None:
            ids = self._spliced(text) if self.splice and text else None
            entry = _Entry(tuple(ids) if ids is not None else tuple(self._tokenize(text)) if text else ())
        self._recent[text] = entry  # newest last
        while len(self._recent) > RECENT:
            del self._recent[next(iter(self._recent))]
        return entry

    def _spliced(self, text: str) -> list[int] | None:
        best = None
        for old in reversed(self._recent):  # newest first: usually the text of the keystroke before
            if not old:
                continue
            c = _common_prefix(old, text)
            s = _common_suffix(old, text, min(len(old), len(text)) - c)
            if best is None or c + s > best[0]:
                best = (c + s, old, c, s)
                if c + s >= len(text) - 64:
                    break
        if best is None or best[0] < MIN_SHARED:
            return None
        _, old, c, s = best
        entry = self._recent[old]
        starts = self.byte_starts(old)
        # The last split point before the edit and the first after it that start a token of the old text.
        p1, k1 = next(((p, k) for p in islice(_points_before(text, c, self.runs), MAX_TRIES)
                       if (k := self._token_at(starts, _byte_offset(old, p))) is not None), (0, 0))
        shift = len(old) - len(text)
        p2, k2 = next(((p, k) for p in islice(_points_from(text, len(text) - s, p1, self.runs), MAX_TRIES)
                       if (k := self._token_at(starts, _byte_offset(old, p + shift))) is not None),
                      (len(text), len(entry.ids)))
        if k2 < k1:
            return None
        ids = [*entry.ids[:k1], *self._tokenize(text[p1:p2]), *entry.ids[k2:]] if p1 < p2 else \
            [*entry.ids[:k1], *entry.ids[k2:]]
        self.spliced += 1
        if self._to_verify > 0:
            self._to_verify -= 1
            self._unchecked.append((text, tuple(ids)))
        return ids

    @property
    def unchecked(self) -> int:
        return len(self._unchecked)

    def check_one(self) -> None:
        """Tokenize one of the model's first splices whole and compare (the engine calls this while it
        waits for requests: a whole tokenization costs milliseconds). A mismatch turns splicing off and
        forgets every remembered tokenization: the next prompts are tokenized whole."""
        if not self._unchecked:
            return
        text, ids = self._unchecked.pop(0)
        if tuple(self._tokenize(text)) != ids:
            self.splice, self._unchecked = False, []
            self._recent.clear()
            log.warning("tokenizing only the edited part of a prompt gave other ids than tokenizing it whole; "
                        "this model's prompts are tokenized whole from now on")

    @staticmethod
    def _token_at(starts: np.ndarray, offset: int) -> int | None:
        k = int(np.searchsorted(starts, offset))
        return k if k < len(starts) and int(starts[k]) == offset else None


def splice_rule(tokenizer_model: str | None, pre_tokenizer: str | None,
                user_defined: Sequence[bytes]) -> tuple[bool, frozenset[str]]:
    """(whether this vocabulary may splice, its whitespace tokens matched before BPE), from the GGUF's
    tokenizer.ggml.model / .pre and the pieces of its USER_DEFINED tokens (llama.cpp matches those
    anywhere before BPE: only whitespace runs keep the split points boundaries)."""
    runs = frozenset(p.decode("ascii") for p in user_defined if p and not p.strip(b" \t"))
    ok = tokenizer_model == "gpt2" and pre_tokenizer in SPLICE_PRE_TOKENIZERS and len(runs) == len(user_defined)
    return ok, runs
