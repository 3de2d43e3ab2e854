"""Typed-through and recent-context answers (pure)."""

from __future__ import annotations

from codegen_lsp.context.suggestion_cache import SuggestionCache

URI = "file:///a.py"


def test_typed_through_returns_the_rest_of_the_shown_suggestion():
    cache = SuggestionCache()
    cache.remember(URI, "def f():\n    ", "\n", "return 42")
    assert cache.lookup(URI, "def f():\n    ret", "\n") == ("urn 42", "typed-through")
    assert cache.lookup(URI, "def f():\n    rex", "\n") is None  # typed something else
    assert cache.lookup(URI, "def f():\n    ret", "\nx = 1\n") is None  # the text after the cursor changed
    assert cache.lookup(URI, "def f():\n    return 42", "\n") is None  # typed all of it: nothing left
    assert cache.lookup("file:///b.py", "def f():\n    ret", "\n") is None


def test_recent_contexts_are_an_lru():
    cache = SuggestionCache(size=2)
    cache.remember(URI, "a", "", "1")
    cache.remember(URI, "b", "", "2")
    assert cache.lookup(URI, "a", "") == ("1", "recent context")  # also refreshes "a"
    cache.remember(URI, "c", "", "3")
    assert cache.lookup(URI, "b", "") is None  # least recently used went first
    assert cache.lookup(URI, "a", "") is not None


def test_forget_one_document_or_all():
    cache = SuggestionCache()
    cache.remember(URI, "x = ", "", "1")
    cache.remember("file:///b.py", "y = ", "", "2")
    cache.forget(URI)
    assert cache.lookup(URI, "x = ", "") is None and cache.lookup("file:///b.py", "y = ", "") is not None
    cache.forget()
    assert cache.lookup("file:///b.py", "y = ", "") is None
    cache.remember(URI, "z = ", "", "")  # empty suggestions are not remembered
    assert cache.lookup(URI, "z = ", "") is None
