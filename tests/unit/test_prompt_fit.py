"""Fitting the prompt to the window (context/prompt.fit_segments): with the tokens' start offsets from
one tokenization, the same cut is found with far fewer counts of big text (the fixed cost per model
call on a file larger than the window)."""

from __future__ import annotations

import random
import re

import pytest

from codegen_lsp.context.prompt import MAX_CHARS_PER_TOKEN, Text, _first_fitting, fit_segments


def words(text: str) -> int:
    return len(text.split())


def word_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"\S+", text)]


def document(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(f"w{rng.randint(0, 99)}" for _ in range(rng.randint(0, 12))) + "\n"
                   for _ in range(lines))


@pytest.mark.parametrize("seed", range(5))
def test_a_hint_finds_what_binary_search_finds(seed: int):
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(0, 40)
        answer = rng.randint(0, n)
        keep = lambda i: i >= answer  # noqa: E731 - a monotone predicate over indices
        hint = rng.randint(-2, n + 2)
        assert _first_fitting(range(n), keep, hint) == _first_fitting(range(n), keep) == answer


def test_a_right_hint_costs_two_calls():
    calls = []

    def keep(i: int) -> bool:
        calls.append(i)
        return i >= 17

    assert _first_fitting(range(40), keep, 17) == 17 and len(calls) == 2


@pytest.mark.parametrize("budget", [50, 300, 1200, 5000, 100_000])
@pytest.mark.parametrize("with_suffix", [False, True])
def test_token_starts_give_the_same_prompt_with_fewer_counts_of_big_text(budget: int, with_suffix: bool):
    text = document(2000)
    cursor = len(text) * 3 // 4
    segments = [Text(text[:cursor], "prefix")] + ([Text(text[cursor:], "suffix")] if with_suffix else [])
    counted: dict[str, list[int]] = {"plain": [], "starts": []}

    def counter(name: str):
        def count(t: str) -> int:
            counted[name].append(len(t))
            return words(t)
        return count

    plain = fit_segments(segments, budget, counter("plain"))
    guided = fit_segments(segments, budget, counter("starts"), token_starts=word_starts)
    assert guided == plain
    fitted = sum(words(s.text) for s in guided)
    assert fitted <= budget
    # It had to cut whole blocks (a window smaller than a block is cut line by line either way) of a
    # prefix short enough to be worth tokenizing whole: the guided search counts far less text.
    if words(text) > budget >= 300 and cursor <= budget * MAX_CHARS_PER_TOKEN:
        assert sum(counted["starts"]) < sum(counted["plain"]) / 2, counted


def test_text_too_long_to_fit_by_its_length_is_never_tokenized_whole():
    huge = document(60_000)  # ~1.7 MB
    seen = []

    def starts(text: str) -> list[int]:
        seen.append(len(text))
        return word_starts(text)

    fitted = fit_segments([Text(huge, "prefix")], 200, words, token_starts=starts)
    assert not seen and 0 < words(fitted[0].text) <= 200
