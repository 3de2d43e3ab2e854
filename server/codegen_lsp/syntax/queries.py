"""Loading the tree-sitter query files under grammars/<language>/<kind>.scm (found through resources.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from tree_sitter import Query

from ..resources import resource_path
from .languages import get_language

QueryKind = Literal["comments", "scopes"]
QUERY_KINDS: tuple[QueryKind, ...] = ("comments", "scopes")


class QueryNotFound(FileNotFoundError):
    """No query file of this kind exists for the language."""


def query_path(language_name: str, kind: QueryKind) -> Path:
    return resource_path("grammars", language_name, f"{kind}.scm")


@lru_cache(maxsize=None)
def load_query(language_name: str, kind: QueryKind) -> Query:
    """Compiled query (immutable, so cached and shared)."""
    path = query_path(language_name, kind)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryNotFound(f"no {kind} query for {language_name!r}: {path} does not exist") from None
    return Query(get_language(language_name), source)
