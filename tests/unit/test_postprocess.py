"""Post-processing of raw completions, checked against real tree-sitter parses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen_lsp.postprocess import (
    CompletionContext,
    count_errors,
    cut_to_syntax_unit,
    decide_mode,
    detect_indent_unit,
    introduces_parse_error,
    postprocess,
    reindent,
    trim_suffix_overlap,
)
from codegen_lsp.syntax.languages import make_parser


def _split(buffer: str) -> tuple[str, str]:
    """A buffer with "|" at the cursor -> (prefix, suffix)."""
    prefix, suffix = buffer.split("|")
    return prefix, suffix


# -- trim_suffix_overlap --------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "suffix", "expected"),
    [
        ("a, b)", ")\n", "a, b"),  # closing paren already follows the cursor
        ("a, b) + 1", ")\n", "a, b"),  # ...and what comes after it is beyond the line
        ("x > 0) {", ") {\n", "x > 0"),
        ("x > 0)", ") {\n", "x > 0"),  # completion ends with part of the rest of the line
        ('hello")', '")\n', "hello"),
        ("foo(a)", ")\n", "foo(a)"),  # trimming would leave "foo(a" unbalanced
        ("f(x)) + 1", ")\n", "f(x)"),
        ("self.x", "x\n", "self."),  # "x" already follows the cursor
        ("myx", "x\n", "myx"),  # a word only matches whole, at a token boundary
        ("a, b", ")\n", "a, b"),
        (")", ")\n", ""),
    ],
)
def test_trim_same_line(completion: str, suffix: str, expected: str) -> None:
    assert trim_suffix_overlap(completion, suffix) == expected


def test_trim_following_lines() -> None:
    suffix = "\n    return total\n"
    assert trim_suffix_overlap("total = sum(xs)\n    return total\n", suffix) == "total = sum(xs)"
    # Diverging after the repeated line still cuts at the repeat.
    assert trim_suffix_overlap("t = 1\n    return total\n\ndef g(): pass", suffix) == "t = 1"
    assert trim_suffix_overlap("return total", suffix) == ""


def test_trim_does_not_cut_at_a_brace_the_completion_needs() -> None:
    suffix = "\n}\n"
    completion = "if (x) {\n    y();\n  }\n  return 1;\n}"
    # The first "}" closes the completion's own "if"; the last one repeats the suffix.
    assert trim_suffix_overlap(completion, suffix) == "if (x) {\n    y();\n  }\n  return 1;"
    assert trim_suffix_overlap("a();\n}\nfoo();", "\n}\nfoo();\n") == "a();"
    assert trim_suffix_overlap("a();\n}\nbar();", suffix) == "a();\n}\nbar();"


# -- decide_mode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "buffer", "expected"),
    [
        ("python", "def f():\n    |\n", "multi-line"),  # empty body
        ("python", "def f():|\n", "multi-line"),  # end of a header
        ("python", "if x:\n    pass\nelse:|\n", "multi-line"),
        ("python", "|\n", "multi-line"),  # empty module
        ("python", "import os\n\n|\n\ndef f():\n    pass\n", "multi-line"),  # definition level
        ("python", "class A:\n    def f(self):\n        pass\n\n    |\n", "multi-line"),
        ("python", "def f():\n    # sum the values\n    |\n    return 1\n", "multi-line"),  # after a comment
        ("python", "def f():\n    x = 1\n    |\n    return x\n", "single-line"),  # among statements
        ("python", "x = foo(|\n", "single-line"),  # middle of an expression
        ("python", "x = foo(|)\n", "single-line"),  # text after the cursor
        ("python", "x = y[1:|]\n", "single-line"),  # ":" of a slice opens nothing
        ("python", "s = 'ab|c'\n", "single-line"),
        ("javascript", "function f() {\n  |\n}\n", "multi-line"),
        ("javascript", "function f() {|}\n", "multi-line"),
        ("javascript", "function f() {\n  a();\n  |\n  b();\n}\n", "single-line"),
        ("javascript", "const x = a +|\n", "single-line"),
        ("go", "package m\n\nfunc f() {\n\t|\n}\n", "multi-line"),
        ("go", "package m\n\nfunc f() {\n\tx := 1\n\t|\n\treturn\n}\n", "single-line"),
        ("go", "package m\n\nfunc f() {\n\tfmt.Println(|)\n}\n", "single-line"),
    ],
)
def test_decide_mode(language: str, buffer: str, expected: str) -> None:
    prefix, suffix = _split(buffer)
    source = (prefix + suffix).encode()
    tree = make_parser(language).parse(source)
    assert decide_mode(tree, source, len(prefix.encode()), language) == expected


def test_decide_mode_without_tree_uses_text() -> None:
    source = b"def f():\n    \n"
    assert decide_mode(None, source, 13, "python") == "multi-line"
    source = b"def f():\n    x = 1\n    \n"
    assert decide_mode(None, source, 23, "python") == "single-line"
    assert decide_mode(None, b"foo {\n  \n}", 8, None) == "multi-line"


# -- cut_to_syntax_unit -------------------------------------------------------------


def _cut(language: str, buffer: str, completion: str, mode: str = "multi-line") -> str:
    prefix, suffix = _split(buffer)
    return cut_to_syntax_unit(prefix, completion, language, mode, suffix)  # type: ignore[arg-type]


def test_single_line_keeps_first_line() -> None:
    assert _cut("python", "x = |\n", "compute(1)\ny = 2\n", "single-line") == "compute(1)"


@pytest.mark.parametrize(
    ("buffer", "completion", "expected"),
    [
        # dedent below the cursor's block ends it
        ("def add(a, b):\n    |\n", "return a + b\n\ndef sub(a, b):\n    return a - b\n", "return a + b"),
        # a block the completion (or cursor line) opened ends when it does
        ("def add(a, b):|\n", "\n    return a + b\n\nprint(add(1, 2))\n", "\n    return a + b"),
        ("def f():\n    |\n", "for x in xs:\n        print(x)\n    return 1\n", "for x in xs:\n        print(x)"),
        ("def f():\n    |\n", "if x:\n        a()\n    else:\n        b()\n    c()\n",
         "if x:\n        a()\n    else:\n        b()"),
        # a second top-level definition after a complete one
        ("|\n", "import os\n\ndef main():\n    pass\n\n\ndef other():\n    pass\n", "import os\n\ndef main():\n    pass"),
        ("@dec\n|", "def f():\n    pass\n\n@dec\ndef g():\n    pass\n", "def f():\n    pass"),
        # comments right before the cut belong to what follows
        ("# add\n|", "def add(a, b):\n    return a + b\n\n# mul\ndef mul(a, b):\n    return a * b\n",
         "def add(a, b):\n    return a + b"),
        # dedented lines inside strings, brackets and comments do not count
        ("def f():\n    |\n", 'return """\nabc\n"""\nx = 1\n', 'return """\nabc\n"""'),
        ("def f():\n    |\n", "return (1 +\n            2)\nfoo()\n", "return (1 +\n            2)"),
        ("def f():\n    |\n", "x = 1\n# note\n    return x\n", "x = 1\n# note\n    return x"),
    ],
)
def test_cut_python(buffer: str, completion: str, expected: str) -> None:
    assert _cut("python", buffer, completion) == expected


@pytest.mark.parametrize(
    ("language", "buffer", "completion", "expected"),
    [
        # a closer of a block enclosing the cursor ends the completion
        ("javascript", "function f(a) {\n  |\n}\n", "return a + 1;\n}\n\nfunction g() {}\n", "return a + 1;"),
        # the completion's own block closes and the statement ends
        ("javascript", "function f(a) {\n  |\n}\n", "if (a) {\n    return 1;\n  }\n  return 2;\n}\n",
         "if (a) {\n    return 1;\n  }"),
        ("javascript", "|\n", "function f() {\n  return '}';\n}\n\nfunction g() {}\n",
         "function f() {\n  return '}';\n}"),
        ("javascript", "|\n", "describe('x', () => {\n  it('y', () => {});\n});\ndescribe('z', () => {});\n",
         "describe('x', () => {\n  it('y', () => {});\n});"),
        ("javascript", "function f() {\n  |\n}\n", "try {\n    a();\n  } catch (e) {\n    b();\n  }\n  c();\n",
         "try {\n    a();\n  } catch (e) {\n    b();\n  }"),
        ("javascript", "function f() {\n  |\n}\n", "const s = `${a}`;\n  return s;\n}\n", "const s = `${a}`;\n  return s;"),
        ("javascript", "const o = {\n  |\n};\n", "a: 1,\n  b: 2,\n};\nfoo();\n", "a: 1,\n  b: 2,"),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "if a > 0 {\n\t\treturn a\n\t}\n\treturn -a\n}\n",
         "if a > 0 {\n\t\treturn a\n\t}"),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "return a\n}\n\nfunc g() {}\n", "return a"),
        ("go", "package m\n\n|\n", "func g() {\n\tfmt.Println(\"{\")\n}\n\nfunc h() {}\n",
         "func g() {\n\tfmt.Println(\"{\")\n}"),
    ],
)
def test_cut_brace_languages(language: str, buffer: str, completion: str, expected: str) -> None:
    assert _cut(language, buffer, completion) == expected


def test_cut_without_grammar_scans_text() -> None:
    prefix, suffix = _split("foo {\n  |\n}\n")
    assert cut_to_syntax_unit(prefix, "a;\n  b('}');\n}\nmore", None, "multi-line", suffix) == "a;\n  b('}');"


# -- introduces_parse_error -----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "buffer", "completion", "expected"),
    [
        ("python", "def f():\n    |\n", "return 1", False),
        ("python", "def f():\n    |\n", "return [1, 2", True),
        ("python", "x = foo(|\n", "a, b)", False),  # fixes the user's error
        ("python", "x = foo(|\n", "a, b", False),  # still broken, but not worse
        ("javascript", "function f() {\n  |\n}\n", "if (x) {", True),
        ("javascript", "function f() {\n  |\n}\n", "if (x) { y(); }", False),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "return a +", True),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "return a + 1", False),
    ],
)
def test_introduces_parse_error(language: str, buffer: str, completion: str, expected: bool) -> None:
    prefix, suffix = _split(buffer)
    assert introduces_parse_error(language, prefix, completion, suffix) is expected
    # Same answer when reusing the document's tree (incremental reparse).
    tree = make_parser(language).parse((prefix + suffix).encode())
    before = str(tree.root_node)
    assert introduces_parse_error(language, prefix, completion, suffix, tree) is expected
    assert str(tree.root_node) == before  # the caller's tree is not edited


def test_count_errors_and_unknown_language() -> None:
    assert count_errors(make_parser("python").parse(b"x = (\n").root_node) >= 1
    assert count_errors(make_parser("python").parse(b"x = 1\n").root_node) == 0
    assert introduces_parse_error(None, "", "(((", "") is False


# -- reindent ----------------------------------------------------------------------------


def test_reindent_spaces_to_tabs_keeps_alignment() -> None:
    completion = "if x:\n        y = f(a,\n              b)\n"
    assert reindent(completion, "\t") == "if x:\n\t\ty = f(a,\n\t\t\t  b)\n"


def test_reindent_tabs_to_buffer_spaces() -> None:
    assert reindent("a\n\tb\n\t\tc", "  ", "  ") == "a\n  b\n    c"
    assert reindent("a\n\tb", "    ") == "a\n    b"


def test_reindent_relative_and_blank_lines() -> None:
    assert reindent("x = 1\n   \nreturn x", "    ", relative=True) == "x = 1\n\n    return x"
    # Unknown style: left alone.
    assert reindent("a\n\tb\n    c", "") == "a\n\tb\n    c"


def test_detect_indent_unit() -> None:
    assert detect_indent_unit("def f():\n  if x:\n    y\n") == "  "
    assert detect_indent_unit("func f() {\n\tx\n\tif y {\n\t\tz\n\t}\n}\n") == "\t"
    assert detect_indent_unit("x = 1\n") == "    "


# -- postprocess ----------------------------------------------------------------------------


def _post(language: str | None, buffer: str, completion: str, **kwargs: object):
    prefix, suffix = _split(buffer)
    return postprocess(CompletionContext(language, prefix, suffix, **kwargs), completion)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("language", "buffer", "completion", "text", "mode"),
    [
        ("python", "def add(a, b):\n    |\n\nprint(add(1, 2))\n", "return a + b\n\ndef sub(a, b):\n    pass\n",
         "return a + b", "multi-line"),
        ("python", "x = foo(|)\n", "a, b)\ny = 2\n", "a, b", "single-line"),
        ("python", "def f():\n    x = 1\n    |\n    return x\n", "y = 2\n    return x\n", "y = 2", "single-line"),
        ("python", "def f():\n\t|\n", "x = 1\n    return x\n", "x = 1\n\treturn x", "multi-line"),
        ("javascript", "function f(a) {\n  |\n}\n", "if (a) {\n    return 1;\n  }\n  return 2;\n}\n",
         "if (a) {\n    return 1;\n  }", "multi-line"),
        ("javascript", "if (|) {\n}\n", "x > 0) {", "x > 0", "single-line"),
        ("go", "package m\n\nfunc f(a int) int {\n\treturn f(|)\n}\n", "a - 1)\n}", "a - 1", "single-line"),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "return a\n}\n\nfunc g() {}\n", "return a", "multi-line"),
    ],
)
def test_postprocess_keeps(language: str, buffer: str, completion: str, text: str, mode: str) -> None:
    result = _post(language, buffer, completion)
    assert (result.text, result.mode, result.reason) == (text, mode, "ok")
    assert not result.dropped


@pytest.mark.parametrize(
    ("language", "buffer", "completion", "reason"),
    [
        ("python", "def f():\n    |\n", "   \n", "empty completion"),
        ("python", "x = foo(|)\n", ")", "completion only repeats the text after the cursor"),
        ("python", "x = 1|\n", "\ny = 2", "nothing left after the single-line cut"),
        ("python", "def f():\n    |\n", "return [1, 2\n", "completion introduces a parse error"),
        ("go", "package m\n\nfunc f(a int) int {\n\t|\n}\n", "return a +\n", "completion introduces a parse error"),
    ],
)
def test_postprocess_drops_with_reason(language: str, buffer: str, completion: str, reason: str) -> None:
    result = _post(language, buffer, completion)
    assert (result.text, result.reason) == ("", reason)
    assert result.dropped


@pytest.mark.parametrize(
    ("buffer", "completion", "text"),
    [
        # the editor put the cursor at the block's indentation; the model indented once more
        ("def f(names):\n    for n in names:\n        |\n    return n\n", "        print(n)", "print(n)"),
        # a block: its later lines move left with the first (relative indentation kept)
        ("def f(x):\n    |\n", "    if x:\n            return 1\n        return 2\n", "if x:\n        return 1"),
        # the editor did not indent after `if x:`: only the deeper line parses, so it stays
        ("def f(x):\n    if x:\n    |\n", "    return 1\n", "    return 1"),
        # at column 0 the model's indentation is the only indentation: kept
        ("def f(x):\n|\n", "    return x\n", "    return x"),
        # after code on the line, leading blanks are not indentation: the reindent step alone decides
        ("x = foo(|)\n", " a)", "a"),
    ],
)
def test_extra_indentation_after_the_editors_is_dropped(buffer: str, completion: str, text: str) -> None:
    result = _post("python", buffer, completion)
    assert (result.text.lstrip(" ") if "foo(" in buffer else result.text, result.reason) == (text, "ok")


def test_postprocess_uses_document_tree_and_crlf() -> None:
    prefix, suffix = _split("def f():\r\n    |\r\n")
    tree = make_parser("python").parse((prefix + suffix).encode())
    result = postprocess(CompletionContext("python", prefix, suffix, tree), "x = 1\n    return x\n")
    assert result.text == "x = 1\r\n    return x"
    assert result.reason == "ok"


def test_postprocess_without_grammar() -> None:
    result = _post(None, "foo {\n  |\n}\n", "a;\n}\n")
    assert (result.text, result.mode) == ("a;", "multi-line")


def _indent_unit_line_by_line(text: str) -> str:
    """detect_indent_unit as it was written first, a line at a time: the reference for the one-pass version."""
    from collections import Counter

    tabbed = spaced = previous = 0
    steps: Counter[int] = Counter()
    for line in text.splitlines():
        if not line.strip():
            continue
        whitespace = line[: len(line) - len(line.lstrip(" \t"))]
        if whitespace.startswith("\t"):
            tabbed += 1
        elif whitespace:
            spaced += 1
            if len(whitespace) > previous:
                steps[len(whitespace) - previous] += 1
            previous = len(whitespace)
            continue
        previous = 0
    if tabbed > spaced:
        return "\t"
    return " " * steps.most_common(1)[0][0] if steps else "    "


@given(st.lists(st.tuples(st.sampled_from(["", " ", "  ", "   ", "    ", "\t", "\t\t", " \t", "\t "]),
                          st.sampled_from(["x", "", " ", "if y:", "\t", "# c"])), max_size=40),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_detect_indent_unit_matches_the_line_by_line_reference(lines, newline) -> None:
    text = newline.join(indent + rest for indent, rest in lines)
    assert detect_indent_unit(text) == _indent_unit_line_by_line(text)
