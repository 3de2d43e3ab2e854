"""Token healing (engine/healing.py) on real vocabularies: SmolLM2's (a real model made elsewhere) and a
CodeGen test model's (CodeGen's layout: whitespace runs are tokens of their own). Pieces and
tokenization come from llama.cpp itself, as the engine gets them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from codegen_lsp.engine.healing import TokenHealer, pick


class Vocab:
    def __init__(self, path) -> None:
        import llama_cpp

        from codegen_lsp.engine.llama_runner import _vocab_pieces

        self.llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.healer = TokenHealer(_vocab_pieces(llama_cpp, self.llm))

    def tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=False)

    def brute_force_allowed(self, rest: bytes) -> list[int]:
        return [i for i, p in enumerate(self.healer.pieces) if p and (p.startswith(rest) or rest.startswith(p))]


@pytest.fixture(scope="module")
def smol(smollm2) -> Vocab:
    return Vocab(smollm2)


@pytest.fixture(scope="module")
def codegen(tiny_codegen1) -> Vocab:
    return Vocab(tiny_codegen1.gguf_path)


@pytest.fixture(params=["smol", "codegen"])
def vocab(request) -> Vocab:
    return request.getfixturevalue(request.param)


def test_the_vocabulary_pieces_are_the_tokens_text(vocab: Vocab):
    text = "def add(a, b):\n    return a + b\n"
    assert b"".join(vocab.healer.pieces[t] for t in vocab.tokens(text)) == text.encode()


@pytest.mark.parametrize(("before", "removed"), [
    ("def add(a, b):\n    return ", b" "),  # a trailing space
    ("x = 1\ny = x * ", b" "),
])
def test_a_trailing_space_is_taken_off_and_spelled_out_first(vocab: Vocab, before: str, removed: bytes):
    plan = vocab.healer.plan(vocab.tokens(before), before)
    assert plan.removed == removed and plan.skipped == ""
    assert b"".join(vocab.healer.pieces[t] for t in plan.tokens) + plan.removed == before.encode()
    allowed = set(vocab.healer.allowed(plan.removed).tolist())
    assert vocab.tokens(" a")[0] in allowed  # ` a`: the token the model saw after `return` in training
    assert vocab.tokens("a")[0] not in allowed  # would make "return  a"... or "returna"


def test_indentation_is_taken_off_and_shorter_runs_may_start_it(vocab: Vocab):
    before = "class P:\n    def f(self):\n        "
    plan = vocab.healer.plan(vocab.tokens(before), before)
    assert plan.removed.strip(b" \n") == b"" and plan.removed.endswith(b"        ")
    allowed = vocab.healer.allowed(plan.removed)
    assert all(vocab.healer.pieces[t].startswith(plan.removed) or plan.removed.startswith(vocab.healer.pieces[t])
               for t in allowed)
    assert any(len(vocab.healer.pieces[t]) < len(plan.removed) for t in allowed)  # a prefix of the run


def test_half_a_word_allows_its_completions(vocab: Vocab):
    before = "def greet(name):\n    pri"
    plan = vocab.healer.plan(vocab.tokens(before), before)
    assert plan.removed.strip() and before.encode().endswith(plan.removed)
    spelled = {vocab.healer.pieces[t] for t in vocab.healer.allowed(plan.removed)}
    assert any(p.startswith(plan.removed) and len(p) > len(plan.removed) for p in spelled)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_allowed_is_exactly_the_tokens_that_agree(smol: Vocab, data):
    pieces = [p for p in smol.healer.pieces if p]
    piece = data.draw(st.sampled_from(pieces))
    rest = piece[data.draw(st.integers(0, len(piece) - 1)):]  # what is left after a shorter token
    assert sorted(smol.healer.allowed(rest).tolist()) == smol.brute_force_allowed(rest)


def test_advance_keeps_what_is_left(vocab: Vocab):
    rest = b"        "
    shorter = [t for t in vocab.healer.allowed(rest) if len(vocab.healer.pieces[t]) < len(rest)]
    assert shorter
    for token in shorter:
        assert vocab.healer.advance(rest, token) == rest[len(vocab.healer.pieces[token]):]
    assert vocab.healer.advance(b" ", vocab.tokens(" a")[0]) == b""  # covered, and beyond


def test_healing_is_skipped_with_a_reason_when_it_cannot_apply(smol: Vocab):
    text = "x = 1"
    tokens = smol.tokens(text)
    assert smol.healer.plan([], "").removed == b""
    after_break = "x = 1\n"
    assert smol.healer.plan(smol.tokens(after_break), after_break).removed == b""  # a line break is a boundary
    assert smol.healer.plan(tokens[-1:], "1").skipped == "the prompt is a single token"
    mismatched = smol.healer.plan(tokens, "x = 2")
    assert mismatched.removed == b"" and "not how the text before the cursor ends" in mismatched.skipped
    control = smol.llm.token_eos()
    assert smol.healer.plan(tokens + [control], text).skipped.startswith("the text before the cursor ends in a token")


def test_pick_chooses_only_among_allowed_tokens():
    logits = np.array([5.0, 1.0, 3.0, 9.0], dtype=np.float32)
    allowed = np.array([1, 2], dtype=np.intc)
    rng = np.random.default_rng(0)
    assert pick(logits, allowed, 0.0, rng) == 2  # 3 has the best logit but is not allowed
    assert {pick(logits, allowed, 1.0, rng) for _ in range(200)} == {1, 2}


def test_candidates_first_tokens_differ_by_more_than_whitespace(smol: Vocab):
    """Several suggestions branch on the best first tokens, but never on two that only differ in
    whitespace (` return` and `return` end as one suggestion); tokens that only spell part of what
    healing removed decide nothing yet and are kept."""
    from codegen_lsp.engine.candidates import _distinct_firsts

    pieces = smol.healer.pieces
    by_text = {p: i for i, p in enumerate(pieces) if p}
    ranked = [by_text[b" return"], by_text[b"return"], by_text[b"\n"], by_text[b"\n\n"], by_text[b" x"]]
    logits = np.full(len(pieces), -100.0, dtype=np.float32)
    logits[ranked] = [5.0, 4.0, 3.0, 2.0, 1.0]
    pool = np.arange(len(pieces), dtype=np.intc)
    assert _distinct_firsts(logits, pool, 3, pieces, b"") == [ranked[0], ranked[2], ranked[4]]
    # After healing took "  " off: " " and "  " only spell it (kept); "   " and "    " both leave
    # whitespace after it, so they end as the same suggestion.
    ranked = [by_text[b" "], by_text[b"   "], by_text[b"    "], by_text[b"  "]]
    logits = np.full(len(pieces), -100.0, dtype=np.float32)
    logits[ranked] = [5.0, 4.0, 3.0, 2.0]
    pool = smol.healer.allowed(b"  ")
    assert _distinct_firsts(logits, pool, 3, pieces, b"  ") == [ranked[0], ranked[1], ranked[3]]


@pytest.mark.parametrize("rest", [b"\xff", b"\xef\xbf", b" ", b"    "])
def test_allowed_at_the_ends_of_the_byte_order(smol: Vocab, rest: bytes):
    """Prefixes whose last bytes are 0xff (their run of sorted pieces ends where the next prefix starts)
    and the largest runs (a space begins most of SmolLM2's tokens)."""
    assert sorted(smol.healer.allowed(rest).tolist()) == smol.brute_force_allowed(rest)


def test_successor_bounds_every_string_with_the_prefix():
    from codegen_lsp.engine.healing import _successor

    assert _successor(b"ab") == b"ac" and _successor(b"a\xff\xff") == b"b" and _successor(b"\xff") is None
