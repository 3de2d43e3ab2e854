"""Turns from comments (regions, kept code, indentation) and where a turn's generated code ends."""

from __future__ import annotations

import pytest

from codegen_lsp.syntax.languages import make_parser
from codegen_lsp.synthesis.truncate import stop_strings, truncate_turn
from codegen_lsp.synthesis.turns import plan_turns


def plan(language: str, text: str, start: int | None = None, end: int | None = None):
    source = text.encode("utf-8")
    tree = make_parser(language).parse(source)
    start = 0 if start is None else start
    return plan_turns(tree, source, language, start, start if end is None else end)


MTPB_FILE = "# Import libraries.\n\nimport numpy as np\n\n# Assign 1 to x.\n\n# Print x.\n\n"


def test_each_comment_block_is_a_turn_and_code_under_it_is_kept():
    p = plan("python", MTPB_FILE)
    assert p.region == "file"
    assert [t.comment for t in p.turns] == ["Import libraries.", "Assign 1 to x.", "Print x."]
    assert [t.pending for t in p.turns] == [False, True, True]
    assert p.turns[0].existing_code.strip() == "import numpy as np"
    assert MTPB_FILE.encode()[p.turns[1].code_start:].startswith(b"\n# Print x.")


def test_consecutive_comment_lines_are_one_turn():
    p = plan("python", "# Import libraries.\n# Assign 1 to x.\n# Print x.\n")
    assert [t.comment for t in p.turns] == ["Import libraries.\nAssign 1 to x.\nPrint x."]


def test_cursor_in_a_function_picks_that_function():
    text = "# Top-level step.\n\ndef f(x):\n    \"\"\"Double x.\"\"\"\n\n\ny = 2\n"
    cursor = text.index("Double")
    p = plan("python", text, cursor)
    assert p.region == "function"
    assert [(t.comment, t.indent, t.pending) for t in p.turns] == [("Double x.", "    ", True)]


def test_code_indented_less_than_the_comment_is_not_its_code():
    text = "def f(x):\n    # Double x.\n\ny = 2\n"
    (turn,) = plan("python", text).turns
    assert turn.pending and turn.indent == "    "


def test_selection_limits_the_turns_to_its_lines():
    text = "# One.\n\n# Two.\n\n# Three.\n"
    start, end = text.index("# Two"), text.index("# Two") + 3
    p = plan("python", text, start, end)
    assert p.region == "selection" and [t.comment for t in p.turns] == ["Two."]


def test_trailing_comments_annotate_code_and_are_not_turns():
    p = plan("python", "x = 1  # one\n")
    assert p.turns == ()


@pytest.mark.parametrize("language,text,expected", [
    ("javascript", "// Log one.\n\n/* Log two. */\n", ["Log one.", "Log two."]),
    ("rust", "fn main() {\n    // Print one.\n}\n", ["Print one."]),
    ("go", "package main\n\n// Print one.\n", ["Print one."]),
    ("c", "int main(void) {\n    /* Print one. */\n}\n", ["Print one."]),
])
def test_comment_syntax_per_language(language, text, expected):
    p = plan(language, text)
    assert [t.comment for t in p.turns] == expected and all(t.pending for t in p.turns)


# -- truncation: the paper's rules ------------------------------------------------------------------

def test_second_print_ends_the_turn():
    assert truncate_turn("x = 1\nprint(x)\nprint(x + 1)\n", "", "python").text == "x = 1\nprint(x)"


def test_next_comment_at_the_turn_indentation_ends_it_but_nested_comments_stay():
    completion = "for i in range(3):\n    # nested\n    total += i\n# Next step.\ny = 2\n"
    cut = truncate_turn(completion, "", "python")
    assert cut.text == "for i in range(3):\n    # nested\n    total += i" and cut.reason == "next comment"


def test_hash_inside_a_string_is_not_a_comment():
    assert truncate_turn('s = "#"\nt = "# x"\n', "", "python").text == 's = "#"\nt = "# x"'


def test_second_definition_ends_the_turn():
    completion = "def f():\n    return 1\n\ndef g():\n    return 2\n"
    cut = truncate_turn(completion, "", "python")
    assert cut.text == "def f():\n    return 1" and cut.reason == "second definition"


def test_docstring_line_and_blank_run_and_end_token():
    assert truncate_turn('x = 1\n"""Doc."""\n', "", "python").text == "x = 1"
    assert truncate_turn("x = 1\n\n\ny = 2\n", "", "python").text == "x = 1"
    assert truncate_turn("x = 1<|endoftext|>junk", "", "python").reason == "end token"


def test_dedent_ends_the_enclosing_block():
    cut = truncate_turn("    total = sum(xs)\n    return total\n}\nmore()\n", "    ", "javascript")
    assert cut.text == "    total = sum(xs)\n    return total" and cut.reason == "end of block"


def test_a_completion_that_starts_with_a_comment_is_empty():
    assert truncate_turn("# Another comment.\nx = 1\n", "", "python").text == ""


def test_output_calls_per_language():
    cut = truncate_turn("console.log(1);\nconsole.log(2);\n", "", "javascript")
    assert cut.text == "console.log(1);" and cut.reason == "second print"


def test_stop_strings_follow_the_turn_indentation():
    assert "\n    #" in stop_strings("    ", "python")
    assert "\n//" in stop_strings("", "go") and "\n\n\n" in stop_strings("", "go")
