"""When the first line is chosen by the code below it (context/suffix_fit.py)."""

from __future__ import annotations

import pytest

from codegen_lsp.context.suffix_fit import SUFFIX_FIT_MAX_CHARS, suffix_fit_text

PREFIX = "def f(xs):\n    out = []\n    for x in xs:\n        "


def test_blank_line_with_code_below_scores_the_next_two_non_blank_lines():
    suffix = "\n\n    return out\n\n\nprint(f([1]))\nmore = 1\n"
    assert suffix_fit_text(PREFIX, suffix) == "\n\n    return out\n\n\nprint(f([1]))"


def test_trailing_spaces_on_the_cursor_line_are_still_a_blank_line():
    assert suffix_fit_text(PREFIX, "   \n    return out") == "\n    return out"


@pytest.mark.parametrize("prefix, suffix", [
    (PREFIX + "out.", "\n    return out\n"),  # typing inside a line
    (PREFIX, "x\n    return out\n"),  # text after the cursor on its line
    (PREFIX, "\n\n   \n"),  # nothing below
    (PREFIX, ""),  # end of the file
])
def test_not_applied(prefix, suffix):
    assert suffix_fit_text(prefix, suffix) == ""


def test_first_line_of_a_file():
    assert suffix_fit_text("", "\nimport os\n") == "\nimport os"


def test_long_lines_are_cut():
    assert len(suffix_fit_text(PREFIX, "\n" + "y" * 1000 + "\n")) == SUFFIX_FIT_MAX_CHARS
