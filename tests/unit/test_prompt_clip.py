"""Clipping a job's text before it is sent to the engine (context/prompt.clip_segments): the clipped job
gives the same prompt as the whole document, for any window up to n_ctx, whatever the lines look like
(long, short, one huge line, \\r\\n, the rarer line breaks str.splitlines knows), and what is sent is
bounded by n_ctx, not by the document."""

from __future__ import annotations

import random
import re

import pytest

from codegen_lsp.context.prompt import (MAX_CHARS_PER_TOKEN, TRIM_BLOCK_LINES, Chunks, Text, Token, clip_segments,
                                        fit_segments)


def words(text: str) -> int:
    return len(text.split())


def word_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"\S+", text)]


def chars(text: str) -> int:  # a tokenizer whose tokens are as long as they can be
    return -(-len(text) // MAX_CHARS_PER_TOKEN)


BREAKS = ["\n", "\n", "\n", "\r\n", "\r", "\x0c", "\u2028", "\x85", "\x1e"]


def document(rng: random.Random, size: int, style: str) -> str:
    parts, total = [], 0
    while total < size:
        if style == "code":
            line = "    " * rng.randint(0, 3) + " ".join(f"w{rng.randint(0, 99)}" for _ in range(rng.randint(0, 12)))
            brk = "\n"
        elif style == "long-lines":
            line = " ".join(f"x{rng.randint(0, 9)}" for _ in range(rng.randint(0, 3000)))
            brk = "\n"
        elif style == "mixed-breaks":
            line = " ".join(f"é{rng.randint(0, 9)}" for _ in range(rng.randint(0, 20)))
            brk = rng.choice(BREAKS)
        else:  # "one-line": a minified file
            line, brk = " ".join(f"v{rng.randint(0, 99)}" for _ in range(size // 4)), ""
        parts.append(line + brk)
        total += len(line) + len(brk)
    return "".join(parts)


def same_prompt(segments, n_ctx: int, budget: int, count, share: float, starts=None) -> None:
    clipped = clip_segments(segments, n_ctx)
    whole = fit_segments(segments, budget, count, share, starts)
    assert fit_segments(clipped, budget, count, share, starts) == whole
    keep = n_ctx * MAX_CHARS_PER_TOKEN
    for before, after in zip(segments, clipped):
        if isinstance(before, Text) and len(before.text) > keep:
            assert keep <= len(after.text) <= keep + TRIM_BLOCK_LINES  # n_ctx bounds what is sent
        else:
            assert after is before


@pytest.mark.parametrize("style", ["code", "long-lines", "mixed-breaks", "one-line"])
@pytest.mark.parametrize("seed", range(4))
def test_clipped_segments_give_the_same_prompt(style: str, seed: int):
    rng = random.Random(seed)
    for _ in range(6):
        n_ctx = rng.choice([64, 100, 256, 700])
        text = document(rng, rng.randint(n_ctx * MAX_CHARS_PER_TOKEN // 2, n_ctx * MAX_CHARS_PER_TOKEN * 4), style)
        cursor = rng.randint(0, len(text))  # anywhere, even between a \r and its \n
        prefix, suffix = text[:cursor], text[cursor:]
        max_tokens = rng.randint(1, n_ctx // 2)
        budget = n_ctx - max_tokens - 1
        share = rng.choice([0.5, 0.75, 0.9])
        for segments in ([Text(prefix, "prefix")],
                         [Token(1), Text(prefix, "prefix"), Token(2), Text(suffix, "suffix"), Token(3)],
                         [Chunks(("a b c\n",) * 5, 20), Text(prefix, "prefix"), Token(4), Text(suffix, "suffix")]):
            same_prompt(segments, n_ctx, budget, words, share)
            same_prompt(segments, n_ctx, budget, words, share, word_starts)
            same_prompt(segments, n_ctx, budget, chars, share)
            same_prompt(segments, n_ctx, max(0, budget - rng.randint(0, budget)), words, share)


def test_every_cut_of_the_prefix_near_the_bound():
    """The prefix cut lands on every offset of a few blocks (line starts, mid-line, inside \\r\\n)."""
    rng = random.Random(7)
    n_ctx = 64
    keep = n_ctx * MAX_CHARS_PER_TOKEN
    body = "".join(f"l{i} " + "y " * rng.randint(0, 9) + rng.choice(["\n", "\r\n", "\x0c"]) for i in range(1500))
    for extra in range(0, 400):
        prefix = body[:keep + extra]
        for budget in (20, 40, 62):
            same_prompt([Text(prefix, "prefix")], n_ctx, budget, words, 0.75)


def test_a_two_megabyte_document_is_sent_as_a_few_hundred_kilobytes():
    rng = random.Random(1)
    text = document(rng, 2 * 2**20, "code")
    cursor = len(text) // 2
    segments = [Text(text[:cursor], "prefix"), Token(1), Text(text[cursor:], "suffix")]
    clipped = clip_segments(segments, 2048)
    assert sum(len(s.text) for s in clipped if isinstance(s, Text)) <= 2 * (2048 * MAX_CHARS_PER_TOKEN + 31)
    assert clipped[0].text.endswith(text[cursor - 1000:cursor])
    assert clipped[2].text.startswith(text[cursor:cursor + 1000])
    same_prompt(segments, 2048, 2048 - 64 - 1, words, 0.75, word_starts)


def test_text_within_the_bound_is_not_touched():
    segments = [Text("a\n" * 100, "prefix"), Token(1), Text("b\n" * 100, "suffix")]
    assert clip_segments(segments, 64) == segments
