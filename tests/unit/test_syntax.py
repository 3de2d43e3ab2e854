"""Grammars, query files and comment blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tree_sitter import Query, QueryCursor

from codegen_lsp.resources import resource_path
from codegen_lsp.syntax.comments import CommentBlock, comment_blocks
from codegen_lsp.syntax.languages import (
    SUPPORTED_LANGUAGES,
    UnknownLanguage,
    get_language,
    language_name_for,
    make_parser,
)
from codegen_lsp.syntax.queries import QUERY_KINDS, QueryNotFound, load_query


@pytest.mark.parametrize(
    ("language_id", "name"),
    [
        ("python", "python"),
        ("javascript", "javascript"),
        ("javascriptreact", "javascript"),
        ("typescript", "typescript"),
        ("typescriptreact", "tsx"),
        ("go", "go"),
        ("rust", "rust"),
        ("java", "java"),
        ("c", "c"),
        ("cpp", "cpp"),
        ("c++", "cpp"),
        ("cuda-cpp", "cpp"),
        ("markdown", None),
    ],
)
def test_language_ids(language_id: str, name: str | None) -> None:
    assert language_name_for(language_id) == name


def test_languages_load_and_parse() -> None:
    for name in SUPPORTED_LANGUAGES:
        assert get_language(name) is get_language(name)  # cached
        assert make_parser(name).parse(b"").root_node is not None
    with pytest.raises(UnknownLanguage):
        get_language("cobol")


@pytest.mark.parametrize("kind", QUERY_KINDS)
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_query_files_compile(language: str, kind: str) -> None:
    assert resource_path("grammars", language, f"{kind}.scm").is_file()
    query = load_query(language, kind)  # type: ignore[arg-type]
    assert isinstance(query, Query)
    names = {query.capture_name(i) for i in range(query.capture_count)}
    prefix = "comment." if kind == "comments" else "scope."
    assert names and all(n.startswith(prefix) for n in names)


def test_missing_query_is_a_clear_error() -> None:
    with pytest.raises(QueryNotFound, match="no highlights query for 'python'"):
        load_query("python", "highlights")  # type: ignore[arg-type]


SCOPE_FIXTURES = {
    "python": ("def f():\n    if x:\n        pass\nclass A:\n    pass\n", {"function", "class", "block"}),
    "javascript": ("function f() { if (x) {} }\nclass A {}\nconst g = () => { };\n", {"function", "class", "block"}),
    "typescript": ("interface I { a: number }\nfunction f(): void { for (;;) {} }\n", {"function", "class", "block"}),
    "tsx": ("enum E { A }\nconst f = () => { while (x) {} };\n", {"function", "class", "block"}),
    "go": ("package m\ntype T struct{}\nfunc f() { for {} }\n", {"function", "class", "block"}),
    "rust": ("struct S;\nimpl S { fn f() { loop {} } }\n", {"function", "class", "block"}),
    "java": ("class A { void f() { if (x) {} } }\n", {"function", "class", "block"}),
    "c": ("struct S { int a; };\nint f(void) { while (1) {} }\n", {"function", "class", "block"}),
    "cpp": ("namespace n { class C {}; }\nint f() { try {} catch (...) {} }\n", {"function", "class", "block"}),
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_scopes_capture_each_kind(language: str) -> None:
    source, expected = SCOPE_FIXTURES[language]
    tree = make_parser(language).parse(source.encode())
    assert not tree.root_node.has_error
    captures = QueryCursor(load_query(language, "scopes")).captures(tree.root_node)
    assert {name.removeprefix("scope.") for name in captures} == expected


def test_scopes_skip_expression_arrows_and_bare_struct_references() -> None:
    tree = make_parser("javascript").parse(b"const g = x => x + 1;\n")
    assert QueryCursor(load_query("javascript", "scopes")).captures(tree.root_node) == {}
    tree = make_parser("c").parse(b"struct S *p;\n")
    assert QueryCursor(load_query("c", "scopes")).captures(tree.root_node) == {}


# -- comment blocks -----------------------------------------------------------


def _blocks(language: str, source: str, byte_range: tuple[int, int] | None = None) -> list[CommentBlock]:
    data = source.encode()
    return comment_blocks(make_parser(language).parse(data), data, language, byte_range)


def _summary(blocks: list[CommentBlock]) -> list[tuple[str, int, tuple[str, ...]]]:
    return [(b.kind, b.start_point[0], b.text_lines) for b in blocks]


PYTHON = '''#!/usr/bin/env python
"""Module doc.

    Indented detail.
"""
# read the file
# and parse it
x = 1  # trailing one
y = 2  # trailing two


# separate
def f():
    """Return one."""
    # step 1
    #   detail
    return 1

s = """not a docstring"""
'''


def test_python_comment_blocks() -> None:
    assert _summary(_blocks("python", PYTHON)) == [
        ("line", 0, ("!/usr/bin/env python",)),
        ("doc", 1, ("Module doc.", "", "Indented detail.")),
        ("line", 5, ("read the file", "and parse it")),
        ("line", 7, ("trailing one",)),
        ("line", 8, ("trailing two",)),
        ("line", 11, ("separate",)),
        ("doc", 13, ("Return one.",)),
        ("line", 14, ("step 1", "  detail")),
    ]


def test_blocks_have_exact_extent() -> None:
    blocks = _blocks("python", PYTHON)
    merged = blocks[2]
    assert PYTHON.encode()[merged.start_byte : merged.end_byte] == b"# read the file\n# and parse it"
    assert merged.end_point == (6, 14)


JAVASCRIPT = """/**
 * Add two numbers.
 * @param {number} a
 */
function add(a, b) {
  // sum them
  // and return
  return a + b; /* inline */
}
/**/
// a
    // b at another column
"""


def test_javascript_comment_blocks() -> None:
    assert _summary(_blocks("javascript", JAVASCRIPT)) == [
        ("doc", 0, ("Add two numbers.", "@param {number} a")),
        ("line", 5, ("sum them", "and return")),
        ("block", 7, ("inline",)),
        ("block", 9, ("",)),
        ("line", 10, ("a",)),
        ("line", 11, ("b at another column",)),
    ]


def test_typescript_and_tsx_share_rules() -> None:
    source = "/** Doc. */\n// one\n// two\nconst x = 1;\n"
    expected = [("doc", 0, ("Doc.",)), ("line", 1, ("one", "two"))]
    assert _summary(_blocks("typescript", source)) == expected
    assert _summary(_blocks("tsx", source)) == expected


GO = """package main

// Greet prints a greeting.
// It never fails.
func Greet() {
\t/* multi
\t   line */
\tfmt.Println("hi") // trailing
}
"""


def test_go_comment_blocks() -> None:
    assert _summary(_blocks("go", GO)) == [
        ("line", 2, ("Greet prints a greeting.", "It never fails.")),
        ("block", 5, ("multi", "line")),
        ("line", 7, ("trailing",)),
    ]


RUST = """//! Crate docs.
//! More crate docs.
/// Adds one.
/// Really.
// plain note
fn add_one(x: i32) -> i32 {
    /* block */
    x + 1
}
/** Block doc. */
struct S;
"""


def test_rust_comment_blocks() -> None:
    assert _summary(_blocks("rust", RUST)) == [
        ("doc", 0, ("Crate docs.", "More crate docs.")),
        ("doc", 2, ("Adds one.", "Really.")),
        ("line", 4, ("plain note",)),
        ("block", 6, ("block",)),
        ("doc", 9, ("Block doc.",)),
    ]
    # Rust line comments include their newline; blocks end before it.
    assert _blocks("rust", RUST)[0].end_point == (1, 20)


C = """/**
 * Compute.
 */
int compute(void);
/// Doxygen line
/// doc
// plain
// lines
int x; /* tail */
"""


def test_c_and_cpp_comment_blocks() -> None:
    expected = [
        ("doc", 0, ("Compute.",)),
        ("doc", 4, ("Doxygen line", "doc")),
        ("line", 6, ("plain", "lines")),
        ("block", 8, ("tail",)),
    ]
    assert _summary(_blocks("c", C)) == expected
    assert _summary(_blocks("cpp", C)) == expected


def test_java_comment_blocks() -> None:
    source = "/** Javadoc. */\nclass A {\n  // a\n  // b\n  /* c */\n}\n"
    assert _summary(_blocks("java", source)) == [
        ("doc", 0, ("Javadoc.",)),
        ("line", 2, ("a", "b")),
        ("block", 4, ("c",)),
    ]


def test_crlf_comments() -> None:
    source = "// one\r\n// two\r\n/* a\r\n * b\r\n */\r\nint x;\r\n"
    assert _summary(_blocks("c", source)) == [("line", 0, ("one", "two")), ("block", 2, ("a", "b"))]


def test_byte_range_returns_complete_blocks() -> None:
    source = "x = 1\n" + "".join(f"# line {i}\n" for i in range(300)) + "y = 2\n# after\n"
    middle = source.index("# line 150")
    blocks = _blocks("python", source, (middle, middle))
    assert len(blocks) == 1
    assert blocks[0].text_lines == tuple(f"line {i}" for i in range(300))
    assert _blocks("python", source, (0, 3)) == []
    tail = source.index("# after")
    assert [b.text_lines for b in _blocks("python", source, (tail, len(source)))] == [("after",)]


def test_no_tree_means_no_comments() -> None:
    assert comment_blocks(None, b"# x", "python") == []


LINES = ["# c", "# c2", "    # d", "x = 1", "", "y = 2  # t", "def f():", "    pass", "/* not c */", "// nor"]


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=40),
    a=st.integers(0, 2000),
    b=st.integers(0, 2000),
)
def test_byte_range_equals_filtering_all_blocks(lines: list[str], a: int, b: int) -> None:
    source = "\n".join(lines)
    lo, hi = sorted((min(a, len(source)), min(b, len(source))))
    every = _blocks("python", source)
    touching = [blk for blk in every if blk.start_byte <= hi and blk.end_byte >= lo]
    assert _blocks("python", source, (lo, hi)) == touching
