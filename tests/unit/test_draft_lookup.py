"""Prompt-lookup drafting (engine/speculation.py): which tokens are proposed, and how many."""

from __future__ import annotations

from codegen_lsp.engine.speculation import FIRST_DRAFT, MAX_DRAFT, DraftLength, PromptLookup


def lookup(tokens: list[int]) -> PromptLookup:
    return PromptLookup(tokens, room=64)


def test_the_longest_tail_that_occurred_before_picks_the_draft():
    # "1 2 3 4" then later "9 3 4": the 2-gram (3, 4) matched earlier at the first place; the
    # 1-gram (4) would also match "4 7", but the longer tail wins.
    got = lookup([1, 2, 3, 4, 5, 6, 4, 7, 9, 3, 4]).draft(3)
    assert got == [5, 6, 4]


def test_the_latest_occurrence_wins_among_equal_tails():
    assert lookup([5, 1, 2, 5, 3, 8, 5]).draft(2) == [3, 8]


def test_no_draft_without_a_repeat_and_never_past_the_end():
    assert lookup([1, 2, 3, 4]).draft(4) == []
    assert lookup([7]).draft(4) == []
    assert lookup([1, 2, 1]).draft(8) == [2, 1]  # only what exists after the match


def test_appended_tokens_are_looked_up_too():
    got = lookup([10, 11, 12])
    for t in (13, 10, 11):
        got.append(t)
    assert got.draft(3) == [12, 13, 10]


def test_draft_length_grows_on_full_acceptance_and_pauses_after_misses():
    length = DraftLength()
    assert length.next() == FIRST_DRAFT
    length.update(FIRST_DRAFT, FIRST_DRAFT)
    assert length.next() == FIRST_DRAFT * 2
    length.update(8, 3)
    assert length.next() == 4  # what was accepted, plus one
    length.update(4, 0)  # a full miss: no draft on the next step
    assert length.next() == 0 and length.next() == 2
    length.update(2, 0)  # a second miss in a row: two steps without
    assert [length.next() for _ in range(3)] == [0, 0, 1]
    for _ in range(10):
        length.update(1, 1)
    assert length.next() == MAX_DRAFT
