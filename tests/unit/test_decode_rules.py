"""The decode rules and the draft bookkeeping that the single greedy/sampled loop (engine/llama_runner.py,
engine/speculation.py) and several candidates decoded together (engine/candidates.py) share (issue 30):
engine/decode_rules.DecodeRules and engine/speculation.Drafting. Pure: no model; the e2e tests of the
runner and of candidates check them through llama.cpp."""

from __future__ import annotations

from codegen_lsp.engine.decode_rules import DecodeRules
from codegen_lsp.engine.jobs import GenerationJob
from codegen_lsp.engine.speculation import MAX_DRAFT, DraftPolicy, Drafting, DraftStats, PromptLookup


def job(stops: tuple[str, ...] = (), loop: bool = True) -> GenerationJob:
    return GenerationJob(segments=[], stop_strings=stops, stop_on_loop=loop)


def decode(rules: DecodeRules, pieces: list[str]) -> tuple[str, str]:
    """Feed the text token by token as a decode loop does: (the text cut, the finish reason)."""
    text, finish = "", "end"
    for n, piece in enumerate(pieces, start=1):
        text += piece
        if (done := rules.check(text, n)) is not None:
            finish = done
            break
    return rules.cut(text, finish), finish


def test_a_stop_string_ends_decoding_and_the_text_is_cut_before_the_first_one():
    rules = DecodeRules(job(("\n\n", "#")), "x = ", max_tokens=50)
    assert decode(rules, ["1 +", " 2", "  # two\n\n", "y"]) == ("1 + 2  ", "stop")  # both in one token
    assert decode(DecodeRules(job(("END",)), "", 50), ["ab", "E", "N", "D", "cd"]) == ("ab", "stop")


def test_a_loop_ends_decoding_where_the_repetition_starts():
    rules = DecodeRules(job(), "x = ", max_tokens=50)
    assert decode(rules, ["3 "] * 20) == ("3 ", "loop")
    off = DecodeRules(job(loop=False), "x = ", max_tokens=20)
    assert off.scanner is None and decode(off, ["3 "] * 20) == ("3 " * 20, "length")


def test_the_budget_ends_decoding_and_a_stop_in_the_last_token_wins():
    assert decode(DecodeRules(job(), "", max_tokens=3), ["a", "b", "c", "d"]) == ("abc", "length")
    assert decode(DecodeRules(job(("c",)), "", max_tokens=3), ["a", "b", "c"]) == ("ab", "stop")


def test_an_alternative_ends_with_its_first_line_of_code_not_with_leading_line_breaks():
    line = DecodeRules(job(), "", max_tokens=50, first_line=True)
    assert decode(line, ["\n", "    ", "return x", "\n", "y"]) == ("\n    return x", "line")
    main = DecodeRules(job(), "", max_tokens=50)  # the main candidate goes on
    assert decode(main, ["\n", "    ", "return x", "\n", "y"]) == ("\n    return x\ny", "end")


class Calls:
    """llama_cpp and a DraftPolicy stand-in: what `settle` called."""

    def __init__(self) -> None:
        self.removed: list[tuple] = []
        self.told: list[tuple] = []

    def llama_memory_seq_rm(self, mem, seq, start, end):
        self.removed.append((mem, seq, start, end))


class RecordingPolicy(DraftPolicy):
    def __init__(self, calls: Calls) -> None:
        super().__init__([1.0] * (MAX_DRAFT + 2))
        self.calls = calls

    def observe(self, drafted, accepted):
        self.calls.told.append(("observe", drafted, accepted))
        super().observe(drafted, accepted)

    def verified(self, drafted, accepted, seconds):
        self.calls.told.append(("verified", drafted, accepted, seconds))
        super().verified(drafted, accepted, seconds)


def test_settling_a_draft_counts_it_tells_the_policy_and_removes_the_rejected_cells():
    calls = Calls()
    drafting = Drafting(PromptLookup([1, 2, 3, 1, 2], 8), RecordingPolicy(calls), DraftStats())
    assert drafting.draft(0) == [] and drafting.draft(8) == [3, 1, 2]

    drafting.settle(calls, "mem", 3, 1, kept_until=42, seconds=0.01)  # the single loop: timed
    drafting.settle(calls, "mem", 2, 2, kept_until=50)  # among candidates: acceptance only, all kept
    assert (drafting.stats.drafted, drafting.stats.accepted) == (5, 3)
    # (verified observes the acceptance too, then measures the batch)
    assert calls.told == [("verified", 3, 1, 0.01), ("observe", 3, 1), ("observe", 2, 2)]
    assert calls.removed == [("mem", 0, 42, -1)]  # only the first had rejected drafts
