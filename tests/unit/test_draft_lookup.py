"""Prompt-lookup drafting (engine/speculation.py): which tokens are proposed, and how many (DraftPolicy,\nwith pinned or measured batch costs)."""

from __future__ import annotations

from codegen_lsp.engine.speculation import EXPLORE_EVERY, MAX_DRAFT, DraftPolicy, PromptLookup


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


FREE = [1.0] * (MAX_DRAFT + 2)  # every batch costs one step (a GPU, nearly)
DEAR = [float(n) for n in range(MAX_DRAFT + 2)]  # a batch costs as much as its tokens one at a time


def test_free_batches_draft_as_long_as_there_is_room():
    policy = DraftPolicy(FREE)
    assert policy.next(64) == MAX_DRAFT and policy.next(3) == 3 and policy.next(0) == 0


def test_batches_as_dear_as_steps_never_pay_however_good_the_drafts():
    policy = DraftPolicy(DEAR)
    for _ in range(50):
        policy.verified(4, 4, 0.05)  # every draft accepted: p close to 1, still nothing to gain
    assert policy.p > 0.95
    assert policy.next(16) == 0


def test_only_one_short_draft_now_and_then_where_nothing_pays():
    policy = DraftPolicy(DEAR)
    lengths = []
    for _ in range(3 * EXPLORE_EVERY + 3):
        k = policy.next(16)
        lengths.append(k)
        policy.verified(k, 0, 0.02) if k else policy.single_step(0.01)
    assert sorted(set(lengths)) == [0, 1] and lengths.count(1) == 3  # one in EXPLORE_EVERY + 1 steps


def test_misses_teach_it_to_stop_drafting_even_where_batches_are_free():
    policy = DraftPolicy(FREE)
    for _ in range(30):
        policy.verified(policy.next(16) or 1, 0, 0.01)
    assert policy.p < 0.1 and policy.next(16) == 0


def test_measured_batch_costs_replace_the_cheap_prior():
    policy = DraftPolicy()  # costs measured
    policy.single_step(0.010)
    first = policy.next(16)
    assert first > 0  # the prior says batches are cheap: try one
    # Every batch turns out to cost its tokens' worth of steps, and about half of each draft is kept:
    # after a few batches (larger sizes are assumed at least as dear as the ones measured), no more.
    tried = 0
    while (k := policy.next(16)) and tried < MAX_DRAFT + 1:
        policy.verified(k, k // 2, 0.010 * (k + 1))
        tried += 1
    assert policy.next(16) == 0 and tried <= 3, tried


def test_one_dear_batch_makes_larger_unmeasured_ones_dear_too():
    policy = DraftPolicy()
    policy.single_step(0.010)
    policy.verified(1, 0, 0.017)  # a 2-token batch: 1.7 steps, and the draft missed
    # p is now below the prior; a 2-token batch is known to cost 1.7, so a 4-token one is assumed
    # to cost at least 1.7 + 2 * 0.2, and with that nothing pays.
    assert policy.next(16) == 0
    cheap = DraftPolicy()  # the same acceptance but nothing measured: the prior's cheap batches pay
    cheap.single_step(0.010)
    cheap.verified(1, 0, 0.0)  # a batch measured at no cost counts as one step
    assert cheap.next(16) > 0


def test_candidates_draft_only_for_sequence_0_and_within_the_cells_left():
    """Sequence 0 of several candidates drafts what the lookup offers, but no more than the context's
    free cells (after every sequence's tokens and this step's rows), its budget and one batch allow."""
    from codegen_lsp.engine.candidates import Candidate, Drafting, _draft
    from codegen_lsp.engine.speculation import MAX_DRAFT, DraftPolicy, DraftStats, PromptLookup

    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 7, 8, 1, 2], 64)  # after "1 2" came "3 4 5 6 7 8 1 2"
    drafting = Drafting(lookup, DraftPolicy([1.0] * (MAX_DRAFT + 2)), DraftStats())
    main, other = Candidate(0, b"", None, tokens=[2]), Candidate(1, b"", None, tokens=[9])
    assert _draft(drafting, [main, other], cells=100, max_tokens=48, n_ctx=1024, n_batch=512) == [3, 4, 5, 6, 7, 8, 1, 2]
    assert _draft(drafting, [main, other], cells=1020, max_tokens=48, n_ctx=1024, n_batch=512) == [3, 4, 5]
    assert _draft(drafting, [main, other], cells=1023, max_tokens=48, n_ctx=1024, n_batch=512) == []
    assert _draft(drafting, [main, other], cells=100, max_tokens=3, n_ctx=1024, n_batch=512) == [3, 4]
    assert _draft(drafting, [main, other], cells=100, max_tokens=48, n_ctx=1024, n_batch=4) == [3, 4]
    assert _draft(drafting, [other, main], cells=100, max_tokens=48, n_ctx=1024, n_batch=512) == []  # 0 is done
    assert _draft(None, [main, other], cells=100, max_tokens=48, n_ctx=1024, n_batch=512) == []
    healing = Candidate(0, b" ", None, tokens=[2], rest=b" ")
    assert _draft(drafting, [healing], cells=100, max_tokens=48, n_ctx=1024, n_batch=512) == []
