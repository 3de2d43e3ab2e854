"""Tokenizing only the edited part of a prompt (engine/tokens.py) gives the ids of tokenizing it whole,
on the real vocabularies it is used with: the default model's CodeGen-style BPE (GPT-2 pre-tokenizer
plus whitespace runs matched before BPE) and SmolLM2's (smollm pre-tokenizer, no added tokens)."""

from __future__ import annotations

import inspect
import json.decoder
import random
import textwrap
from pathlib import Path

import llama_cpp
import pytest

from codegen_lsp.engine.llama_runner import _splice_tokenizer, _vocab_pieces
from codegen_lsp.engine.tokens import SpliceTokenizer, splice_rule
from support.default_model import MODEL as DEFAULT_MODEL

SOURCES = [inspect.getsource(textwrap), inspect.getsource(json.decoder)]
# What typing inserts, and the shapes that decide pre-token boundaries: blank lines, trailing
# whitespace, tabs, CRLF, long indentation (longer than any whitespace token), non-ASCII, digits.
SNIPPETS = ["x", " ", "\n", "\n\n", "    ", "\t", "  \n", "return ", "foo(", ")\n", "'s", " 123", "é", "\r\n",
            "# ç\n", "\n    x = 1\n", "\n\tif y:\n\t\t", "\n" + " " * 33 + "z", "\n  \n", "日本", "\u00a0"]


@pytest.fixture(scope="module", params=["default", "smollm2"])
def vocab(request):
    path = DEFAULT_MODEL if request.param == "default" else request.getfixturevalue("smollm2")
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    yield llm
    llm.close()


def _whole(llm, text: str) -> list[int]:
    return llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False) if text else []


def _edits(seed: int, steps: int):
    """Texts a session would tokenize one after another: keystroke edits anywhere, and the prompt
    fit's cuts of the current text at line boundaries, from the top and from the bottom."""
    rng = random.Random(seed)
    for source in SOURCES:
        text = source[: rng.randint(3000, 9000)]
        for _ in range(steps):
            r = rng.random()
            at = rng.randint(0, len(text))
            if r < 0.55:
                text = text[:at] + rng.choice(SNIPPETS + [text[at:at + rng.randint(1, 40)]]) + text[at:]
                yield text
            elif r < 0.75:
                text = text[:at] + text[at + rng.randint(1, 30):]
                yield text
            else:
                lines = text.splitlines(keepends=True)
                cut = rng.randint(0, len(lines) // 3)
                yield "".join(lines[cut:]) if r < 0.9 else "".join(lines[:len(lines) - cut])


@pytest.mark.parametrize("seed", [0, 1])
def test_spliced_ids_equal_whole_tokenization(vocab, seed: int):
    tokens = _splice_tokenizer(llama_cpp, vocab, _vocab_pieces(llama_cpp, vocab))
    assert tokens.splice
    tokens._to_verify = 0  # the check under test is this test's, not the runtime one
    texts = list(_edits(seed, 150))
    for n, text in enumerate(texts):
        got = list(tokens.ids(text))
        assert got == _whole(vocab, text), f"edit {n}: {text[-80:]!r}"
        starts = tokens.byte_starts(text)
        assert len(starts) == len(got) and (len(got) == 0 or starts[0] == 0)
    # The splice path is what was tested: nearly every text shares most of itself with one before.
    assert tokens.spliced >= 0.9 * len(texts), (tokens.spliced, len(texts))


def test_typing_at_the_end_tokenizes_only_the_last_lines(vocab):
    calls: list[str] = []

    def counting(text: str) -> list[int]:
        calls.append(text)
        return _whole(vocab, text)

    pieces = _vocab_pieces(llama_cpp, vocab)
    tokens = _splice_tokenizer(llama_cpp, vocab, pieces)
    typing = SpliceTokenizer(counting, [len(p) for p in pieces], tokens.splice, tokens.runs)
    typing._to_verify = 0
    source = SOURCES[0]
    cut = source.index("\n        self.width = width") + 12  # inside an indented method body
    for end in range(cut, cut + 40):
        assert list(typing.ids(source[:end])) == _whole(vocab, source[:end])
    # The first text is tokenized whole; each later one only from its line's start (< 120 characters).
    assert len(calls[0]) == cut and max(len(c) for c in calls[1:]) < 120, [len(c) for c in calls]


def test_a_tokenizer_that_breaks_the_rule_turns_splicing_off():
    """Characters as tokens, whose ids also say whether an odd or even number of line breaks came before
    them: a line break inserted near the top changes every id after it, so reusing the old ids after the
    edit is wrong. The check of the first splice (run when the engine is idle) catches it."""
    def tokenize(text: str) -> list[int]:
        ids, breaks = [], 0
        for ch in text:
            ids.append(ord(ch) + 1000 * (breaks % 2))
            breaks += ch == "\n"
        return ids

    tokens = SpliceTokenizer(tokenize, [1] * 1128, True)
    text = "".join(f"line{i} = {i}\n" for i in range(100))
    assert list(tokens.ids(text)) == tokenize(text)
    edited = text[:40] + "\n" + text[40:]
    assert list(tokens.ids(edited)) != tokenize(edited)  # spliced by the (here wrong) rule
    assert tokens.spliced == 1 and tokens.unchecked == 1
    tokens.check_one()
    assert not tokens.splice and tokens.unchecked == 0
    assert list(tokens.ids(edited)) == tokenize(edited)  # forgotten, tokenized whole
    again = edited[:80] + "\n" + edited[80:]
    assert list(tokens.ids(again)) == tokenize(again) and tokens.spliced == 1


def test_the_engine_checks_its_first_splices_while_idle(smollm2: Path):
    """The runner defers the checks of its first splices to `idle_work`, which the engine process runs
    while no request waits; they pass on a real vocabulary and leave splicing on."""
    from codegen_lsp.context.prompt import Text
    from codegen_lsp.engine.jobs import EngineConfig, GenerationJob
    from codegen_lsp.engine.llama_runner import LlamaRunner

    runner = LlamaRunner()
    runner.load(EngineConfig(smollm2, n_ctx=512))
    try:
        source = SOURCES[0][:3000]
        for end in range(2000, 2006):
            runner.generate(GenerationJob([Text(source[:end], "prefix")], max_tokens=1))
        assert runner._tokens.spliced >= 4 and runner._tokens.unchecked >= 4
        while runner.idle_work():
            pass
        assert runner._tokens.unchecked == 0 and runner._tokens.splice
    finally:
        runner.free()


def test_which_vocabularies_splice():
    assert splice_rule("gpt2", "gpt-2", [b"  ", b"\t\t"]) == (True, frozenset({"  ", "\t\t"}))
    assert splice_rule("gpt2", "smollm", []) == (True, frozenset())
    assert splice_rule("gpt2", "llama-bpe", []) == (True, frozenset())
    assert not splice_rule("llama", "default", [])[0]  # SentencePiece: no pre-tokenizer, a leading space
    assert not splice_rule("gpt2", "deepseek-v3", [])[0]  # a regex not checked here
    assert not splice_rule("gpt2", "gpt-2", [b"  ", b"<fim>"])[0]  # added tokens matched across boundaries
    assert not splice_rule("gpt2", None, [])[0]
