"""Loading the tree-sitter query files under grammars/<language>/<kind>.scm."""

from __future__ import annotations

import importlib.resources
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tree_sitter import Query

from .languages import get_language

QueryKind = Literal["comments", "scopes"]
QUERY_KINDS: tuple[QueryKind, ...] = ("comments", "scopes")


class QueryNotFound(FileNotFoundError):
    """No query file of this kind exists for the language."""


def grammars_dir() -> Path:
    """Directory holding the .scm files.

    An installed package may ship them as `codegen_lsp/grammars`; in a source
    checkout they live at the repository root (server/codegen_lsp/syntax/ ->
    parents[3]).
    """
    try:
        packaged = importlib.resources.files("codegen_lsp") / "grammars"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parents[3] / "grammars"


def query_path(language_name: str, kind: QueryKind) -> Path:
    return grammars_dir() / language_name / f"{kind}.scm"


@lru_cache(maxsize=None)
def load_query(language_name: str, kind: QueryKind) -> Query:
    """Compiled query (immutable, so cached and shared)."""
    path = query_path(language_name, kind)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryNotFound(f"no {kind} query for {language_name!r}: {path} does not exist") from None
    return Query(get_language(language_name), source)
