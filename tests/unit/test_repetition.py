"""The repetition rules (postprocess/repetition.py): degenerate output is cut, legitimate repetition kept."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from codegen_lsp.postprocess.pipeline import CompletionContext, postprocess
from codegen_lsp.postprocess.repetition import RepetitionScanner, find_repetition, is_degenerate

INIT = "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        "


def kept(text: str, context: str = "") -> str:
    found = find_repetition(text, context)
    return text if found is None else text[:found[0]]


# -- what the issue measured on a real 270M model ---------------------------------------------------

def test_a_short_unit_repeated_to_the_token_limit_is_cut_after_its_first_instance():
    assert kept("3 3 3 3 3 3 3 3 3 3 3 3 3 3", "x = ") == "3 "
    assert kept("2222222222222222", "x = ") == "2"
    assert kept("1000000000000000000000", "MAX = ") == "10"
    assert kept("os.path.join(path.join(path.join(path.join(path", "p = ") == "os.path.join("  # 10 characters, 4 times


def test_seven_repeats_of_a_short_unit_are_not_a_run():
    assert kept("1" + "0" * 7, "MAX = ") == "1" + "0" * 7
    assert kept("1" + "0" * 8, "MAX = ") == "10"


def test_whitespace_runs_are_never_cut():
    text = "if x:\n" + " " * 16 + "y = 1\n\n\n\n\n\n\n\n\n\nz = 2"
    assert find_repetition(text, "") is None


def test_alternating_lines_repeated_as_a_block_are_cut_before_the_second_copy():
    text = ("self.y = y\n        self.x = self.x\n        self.y = self.y\n"
            "        self.x = self.x\n        self.y = self.y\n        self.x = self.x\n")
    assert kept(text, INIT) == "self.y = y\n        self.x = self.x\n        self.y = self.y\n"


def test_the_line_above_nested_in_itself_is_cut_to_nothing():
    context = "for name in names:\n    if name.endswith('.py'):\n        "
    assert kept("if name.endswith('.py'):\n            if name.endswith('.py'):\n                x", context) == ""


def test_a_line_a_third_time_is_cut():
    text = "a = f(1)\nb = g(a)\na = f(1)\nc = h(b)\na = f(1)\nd = 4\n"
    assert kept(text) == "a = f(1)\nb = g(a)\na = f(1)\nc = h(b)\n"


# -- legitimate repetition ----------------------------------------------------------------------------

def test_similar_assignments_with_different_names_are_kept():
    text = "self.c = c\n        self.d = d\n        self.e = e\n        self.f = f\n"
    assert find_repetition(text, "        self.a = a\n        self.b = b\n        ") is None


def test_a_table_literal_is_kept():
    text = "    (1, 'one', 1.0),\n    (2, 'two', 2.0),\n    (3, 'three', 3.0),\n    (4, 'four', 4.0),\n]\n"
    assert find_repetition(text, "ROWS = [\n") is None


def test_a_run_the_document_already_has_is_kept():
    context = "ZEROS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\nMORE = ["
    assert find_repetition("0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]", context) is None
    assert kept("0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]", "MORE = [") == "0, "  # the same without precedent


def test_a_repetitive_document_continued_is_kept():
    """Generated data: identical rows above the cursor, and the suggestion continues them."""
    rows = "    [0, 0, 0],\n" * 6
    context = "GRID = [\n" + rows + "    "
    suggestion = "[0, 0, 0],\n    [0, 0, 0],\n    [0, 0, 0],\n]"
    assert find_repetition(suggestion, context) is None


def test_structural_lines_repeat_freely():
    text = "if a:\n    return None\nif b:\n    return None\nif c:\n    return None\n}\n}\n}\n"
    assert find_repetition(text, "") is None


def test_the_cursor_line_as_typed_is_context_not_suggestion():
    """A suggestion that starts on the next line is not cut because the typed line repeats one above."""
    context = "print(x)\nprint(x)"
    assert find_repetition("\nprint(y)", context) is None


# -- one scanner, streamed or whole, linear ---------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_feeding_token_by_token_cuts_where_the_whole_text_is_cut(seed: int):
    rng = random.Random(seed)
    pieces = ["x = 1\n", "y = 2\n", "self.x = self.x\n", "0", "3 ", "foo(", "    ", "\n", "z = x + y\n", "ab"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
    whole = find_repetition(text, INIT)
    streamed = RepetitionScanner(INIT)
    at = 0
    while at < len(text) and streamed.cut is None:
        step = rng.randint(1, 6)
        streamed.feed(text[at:at + step])
        at += step
    if streamed.cut is None:
        streamed.finish()
    assert (None if streamed.cut is None else (streamed.cut, streamed.reason)) == whole


def test_a_long_minified_line_is_scanned_without_a_cut():
    rng = random.Random(0)
    line = "".join(f"var v{i}=f{rng.randint(0, 999)}(a[{i}],{rng.randint(0, 99)});" for i in range(20_000))
    assert len(line) > 400_000
    assert find_repetition(line, "") is None


def test_is_degenerate_is_the_issue_target():
    assert is_degenerate("x\n" + "a = 1\n" * 3) and is_degenerate("v = 2" + "2" * 8)
    assert not is_degenerate("a = 1\nb = 2\n}\n}\n}\n") and not is_degenerate("v = 1" + "0" * 6)


# -- in the pipeline ------------------------------------------------------------------------------

def test_postprocess_cuts_the_repetition_and_says_why_when_nothing_is_left():
    context = CompletionContext("python", "for name in names:\n    if name.endswith('.py'):\n        ", "\n")
    result = postprocess(context, "if name.endswith('.py'):\n            if name.endswith('.py'):\n")
    assert result.text == "" and result.reason.startswith("completion only repeats itself")
    unit = postprocess(CompletionContext("python", "MAX = 1", "\n"), "0000000000000000", "single-line")
    assert unit.text == "0"
    off = postprocess(CompletionContext("python", "MAX = 1", "\n"), "0000000000000000", "single-line",
                      repetition_filter=False)
    assert off.text == "0000000000000000"
