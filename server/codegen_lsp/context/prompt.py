"""Prompt segments per prompt format, and fitting them to the context window.

A prompt is a list of segments: document text (tokenized without special tokens, so code that
contains "<|endoftext|>" stays text) and sentinel token ids. Fitting trims the far context first
(the top of the prefix, the bottom of the suffix) in blocks of whole lines, so the start of the
prompt stays put while the user types and llama.cpp can keep its KV cache prefix.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable, Sequence

from ..gguf.meta import PromptFormat

TRIM_BLOCK_LINES = 32  # lines dropped at a time; larger = more stable prompt start, less context
MAX_CHARS_PER_TOKEN = 64  # generous: text longer than budget * this is cut without tokenizing it


@dataclass(frozen=True)
class Text:
    text: str
    role: str = "prefix"  # prefix | suffix


@dataclass(frozen=True)
class Token:
    token_id: int


@dataclass(frozen=True)
class Chunks:
    """Text from other files (context/ring.py), before the current file. Fitting drops whole chunks,
    the oldest first, to stay within `budget` tokens (and half the window); `expand` turns what is left
    into text and, where the model has a file separator token (`sep`), that token before each chunk and
    before `tail` (the current file's name)."""
    texts: tuple[str, ...]
    budget: int
    sep: int | None = None
    tail: str = ""


Segment = Text | Token | Chunks


class PromptFormatError(ValueError):
    pass


FIM_FORMATS = {PromptFormat.STARCODER_FIM, PromptFormat.CODELLAMA_FIM, PromptFormat.DEEPSEEK_FIM,
               PromptFormat.QWEN_FIM}


def uses_suffix(fmt: PromptFormat) -> bool:
    return fmt is not PromptFormat.LEFT_TO_RIGHT


@dataclass(frozen=True)
class OtherFiles:
    """What the prompt gets from other files: (path, text) chunks, the current file's path and language."""
    chunks: tuple[tuple[str, str], ...]
    path: str
    language: str | None
    budget: int  # tokens


def _other_files(other: OtherFiles | None, token_ids: dict[str, int]) -> Chunks | None:
    if other is None or not other.chunks or other.budget <= 0:
        return None
    sep = token_ids.get("file_sep")
    if sep is not None:  # the family's own layout: <file_sep>path\ncode ... <file_sep>current path
        return Chunks(tuple(f"{path}\n{text}\n" for path, text in other.chunks), other.budget, sep, f"{other.path}\n")
    from .ring import header

    return Chunks(tuple(f"{header(path, other.language)}{text}\n\n" for path, text in other.chunks), other.budget)


def build_segments(fmt: PromptFormat, prefix: str, suffix: str, token_ids: dict[str, int],
                   other: OtherFiles | None = None) -> list[Segment]:
    """The segment layout each family was trained on; text from other files goes first (for models with
    a file separator token, before the whole FIM layout; otherwise as comment-headed text before the
    current file's text)."""
    chunks = _other_files(other, token_ids)
    if chunks is not None and chunks.sep is not None:
        return [chunks, *build_segments(fmt, prefix, suffix, token_ids)]
    extra: list[Segment] = [chunks] if chunks is not None else []
    def need(*roles: str) -> list[int]:
        missing = [r for r in roles if r not in token_ids]
        if missing:
            raise PromptFormatError(f"prompt format {fmt.value} needs token ids the model does not declare: {missing}")
        return [token_ids[r] for r in roles]

    if fmt is PromptFormat.LEFT_TO_RIGHT:
        return [*extra, Text(prefix, "prefix")]
    if fmt is PromptFormat.CODEGEN2_INFILL:
        mask, eos, sep = need("mask", "eos", "sep")
        return [*extra, Text(prefix, "prefix"), Token(mask), Text(suffix, "suffix"), Token(eos), Token(sep), Token(mask)]
    if fmt in FIM_FORMATS:  # prefix-suffix-middle with the FIM tokens the GGUF declares
        pre, suf, mid = need("fim_pre", "fim_suf", "fim_mid")
        return [Token(pre), *extra, Text(prefix, "prefix"), Token(suf), Text(suffix, "suffix"), Token(mid)]
    raise PromptFormatError(f"unknown prompt format {fmt!r}")


def _first_fitting(candidates: Sequence[str], keep: Callable[[str], bool], hint: int | None = None) -> int:
    """Index of the first candidate `keep` accepts, by binary search (candidates shrink, so `keep` goes
    from False to True once, near enough); len(candidates) when none does. Only ~log2(n) calls of `keep`:
    a linear scan tokenizes the whole document once per block, which is quadratic. With a `hint` (an
    estimate of the answer) the search gallops out from it first: two calls when the hint is right."""
    lo, hi = 0, len(candidates)  # the answer is in [lo, hi]
    if hint is not None and 0 <= hint < hi:
        step = 1
        if keep(candidates[hint]):
            hi = hint
            while hi - step >= lo:  # does an earlier (longer) one fit too?
                if keep(candidates[hi - step]):
                    hi, step = hi - step, step * 2
                else:
                    lo = hi - step + 1
                    break
        else:
            lo = hint + 1
            while lo + step - 1 < hi:
                if keep(candidates[lo + step - 1]):
                    hi = lo + step - 1
                    break
                lo, step = lo + step, step * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if keep(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo


class _Slices(Sequence[str]):
    """text[offsets[i]:] (or text[:offsets[i]]) for block boundaries, built only when looked at."""

    def __init__(self, text: str, offsets: list[int], from_top: bool) -> None:
        self.text, self.offsets, self.from_top = text, offsets, from_top

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):  # type: ignore[override]
        return self.text[self.offsets[i]:] if self.from_top else self.text[:self.offsets[i]]


def _line_offsets(text: str) -> tuple[list[str], list[int]]:
    lines = text.splitlines(keepends=True)
    return lines, list(accumulate(map(len, lines), initial=0))


def _trim_top(text: str, keep: Callable[[str], bool], estimate: Callable[[int], int] | None = None,
              limit: int = 0, block: int = TRIM_BLOCK_LINES) -> str:
    """Drop whole-line blocks from the top until `keep` accepts; the cut points are fixed multiples of
    TRIM_BLOCK_LINES counted from the document start, so typing below them does not move them.
    `estimate(offset)`, when given, guesses the tokens of text[offset:] without tokenizing it, and the
    search starts at the first cut it guesses within `limit`."""
    if (estimate is None or estimate(0) <= limit) and keep(text):
        return text
    lines, offsets = _line_offsets(text)
    starts = list(range(block, len(lines), block))
    hint = next((i for i, s in enumerate(starts) if estimate(offsets[s]) <= limit), len(starts)) if estimate else None
    found = _first_fitting(_Slices(text, [offsets[s] for s in starts], True), keep, hint)
    if found < len(starts):
        return text[offsets[starts[found]]:]
    # Not even the last block fits (a tiny window): keep as many of the last lines as fit.
    for start in range((starts[-1] if starts else 0) + 1, len(lines)):
        if keep(candidate := text[offsets[start]:]):
            return candidate
    return ""


def _trim_bottom(text: str, keep: Callable[[str], bool], block: int = TRIM_BLOCK_LINES) -> str:
    if keep(text):
        return text
    lines, offsets = _line_offsets(text)
    ends = list(range(len(lines) - (len(lines) % block or block), 0, -block))
    found = _first_fitting(_Slices(text, [offsets[e] for e in ends], False), keep)
    return text[:offsets[ends[found]]] if found < len(ends) else ""


def fit_segments(segments: Sequence[Segment], budget: int, count_tokens: Callable[[str], int],
                 prefix_share: float = 0.75,
                 token_starts: Callable[[str], Sequence[int]] | None = None,
                 block_lines: int = TRIM_BLOCK_LINES) -> list[Segment]:
    """Trim prefix/suffix text so the whole prompt is at most `budget` tokens; never fails. Chunks from
    other files get at most their own budget and half the window, in whole chunks. Text is cut in blocks
    of `block_lines` lines (a short window uses smaller blocks, so it stays close to its budget).

    `token_starts(text)`, when given, is where each of text's tokens starts (code-point offsets, from one
    tokenization): the prefix is then counted once and its cut found in about two more counts of
    window-sized text, instead of a binary search over slices of the whole file."""
    segments = [_fit_chunks(s, budget, count_tokens) if isinstance(s, Chunks) else s for s in segments]
    fixed = sum(1 for s in segments if isinstance(s, Token)) + sum(_chunk_tokens(s, count_tokens)
                                                                 for s in segments if isinstance(s, Chunks))
    available = max(0, budget - fixed)

    def fits(text: str, limit: int) -> bool:
        # A token covers at most MAX_CHARS_PER_TOKEN characters, so longer text cannot fit: no need to
        # tokenize (megabytes of) it to know.
        return len(text) <= limit * MAX_CHARS_PER_TOKEN and count_tokens(text) <= limit

    def count(text: str) -> int:  # exact up to `available`; available + 1 means "more than available"
        return available + 1 if len(text) > available * MAX_CHARS_PER_TOKEN else count_tokens(text)

    texts = {s.role: s.text for s in segments if isinstance(s, Text)}
    suffix_tokens = count(texts["suffix"]) if "suffix" in texts else 0
    prefix = texts.get("prefix", "")
    # Not for text that cannot fit by its length alone: megabytes are cut without tokenizing them all.
    guided = token_starts is not None and 0 < len(prefix) <= available * MAX_CHARS_PER_TOKEN
    starts = token_starts(prefix) if guided else None
    prefix_tokens = len(starts) if starts is not None else count(prefix)
    if prefix_tokens + suffix_tokens <= available:
        return list(segments)
    if "suffix" in texts:
        suffix_budget = max(available - prefix_tokens, int(available * (1 - prefix_share)))
        suffix_budget = min(suffix_budget, suffix_tokens)
        new_suffix = _trim_bottom(texts["suffix"], lambda t: fits(t, suffix_budget), block_lines)
        prefix_budget = available - count_tokens(new_suffix)
    else:
        new_suffix, prefix_budget = "", available
    estimate = (lambda offset: len(starts) - bisect_left(starts, offset)) if starts is not None else None
    new_prefix = _trim_top(prefix, lambda t: fits(t, prefix_budget), estimate, prefix_budget, block_lines)
    replaced = {"prefix": new_prefix, "suffix": new_suffix}
    return [Text(replaced[s.role], s.role) if isinstance(s, Text) else s for s in segments]


# The line breaks str.splitlines() splits at (what _line_offsets counts), besides "\n".
_RARE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _line_breaks(text: str, end: int) -> int:
    """How many lines of text[:end] str.splitlines() ends (\\r\\n is one break), without splitting: a count
    of "\\n", and of the rare breaks only where a (memchr-fast) find says there is one."""
    breaks = text.count("\n", 0, end)
    for char in _RARE_BREAKS:
        if text.find(char, 0, end) >= 0:
            breaks += text.count(char, 0, end)
            if char == "\r":
                breaks -= text.count("\r\n", 0, end)
    return breaks


def clip_segments(segments: Sequence[Segment], n_ctx: int) -> list[Segment]:
    """The segments with the text no prompt of an `n_ctx`-token window can use cut off, so a job is small to
    pickle and send whatever the document's size: fit_segments gives the same prompt for the result as for
    `segments`, with any window of at most n_ctx tokens (budget < n_ctx).

    The bound is fit_segments' own: a token covers at most MAX_CHARS_PER_TOKEN characters, so text longer
    than budget * MAX_CHARS_PER_TOKEN cannot fit, and fit_segments treats it as "over budget" without
    tokenizing it. Text is kept up to n_ctx * MAX_CHARS_PER_TOKEN characters from the cursor: more than any
    budget allows, so a clipped text is still over budget by its length alone (a tighter bound, say 32
    characters per token, would let a clipped prefix count as fitting and change the prefix/suffix split).
    Every cut point that could fit lies inside what is kept, and is the same text there:

    - the suffix is trimmed from its end in blocks counted from its start (the cursor): cut at the bound;
    - the prefix is trimmed from its start in blocks of TRIM_BLOCK_LINES lines counted from the document
      start: cut at the bound too, with as many empty lines put before the kept text as keep each kept
      line's number modulo TRIM_BLOCK_LINES, so its block starts are the original ones.

    Token healing works on the fitted prefix's end, which is kept. Segments of other kinds (sentinel
    tokens, other files' chunks, which have budgets of their own) pass unchanged."""
    keep = max(1, n_ctx) * MAX_CHARS_PER_TOKEN
    out: list[Segment] = []
    for segment in segments:
        if isinstance(segment, Text) and len(segment.text) > keep and segment.role in ("prefix", "suffix"):
            text = segment.text
            if segment.role == "suffix":
                segment = Text(text[:keep], "suffix")
            else:
                cut = len(text) - keep
                if text[cut - 1] == "\r" and text[cut] == "\n":
                    cut -= 1  # "\r\n" is one line break: keep it whole
                pad = "\n" * (_line_breaks(text, cut) % TRIM_BLOCK_LINES)
                segment = Text(pad + text[cut:], "prefix")
        out.append(segment)
    return out


def _chunk_counts(chunks: Chunks, count_tokens: Callable[[str], int]) -> tuple[list[int], int]:
    """(tokens of each chunk with its separator, tokens of the tail with its separator)."""
    per_sep = 1 if chunks.sep is not None else 0
    counts = [per_sep + count_tokens(t) for t in chunks.texts]
    return counts, (per_sep + count_tokens(chunks.tail) if chunks.sep is not None and counts else 0)


def _chunk_tokens(chunks: Chunks, count_tokens: Callable[[str], int]) -> int:
    counts, tail = _chunk_counts(chunks, count_tokens)
    return sum(counts) + tail


def _fit_chunks(chunks: Chunks, window: int, count_tokens: Callable[[str], int]) -> Chunks:
    """Drop whole chunks from the front (the oldest) until they fit their budget and half the window."""
    limit = min(chunks.budget, window // 2)
    counts, tail = _chunk_counts(chunks, count_tokens)
    first, total = 0, sum(counts) + tail
    while first < len(counts) and total > limit:
        total -= counts[first]
        first += 1
    return Chunks(chunks.texts[first:], chunks.budget, chunks.sep, chunks.tail)


def expand(segments: Sequence[Segment]) -> list[Text | Token]:
    """Fitted segments as plain text and token segments (what engines tokenize)."""
    out: list[Text | Token] = []
    for segment in segments:
        if not isinstance(segment, Chunks):
            out.append(segment)
            continue
        for text in segment.texts:
            if segment.sep is not None:
                out.append(Token(segment.sep))
            out.append(Text(text, "other"))
        if segment.texts and segment.sep is not None:
            out += [Token(segment.sep), Text(segment.tail, "other")]
    return out
