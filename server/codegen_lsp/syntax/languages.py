"""LSP languageId -> tree-sitter grammar (the languages themselves: `language_table.py`)."""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import MappingProxyType

from tree_sitter import Language, Parser

from .language_table import LANGUAGE_TABLE

# Grammar name -> (python module, function returning the language pointer).
_GRAMMARS = MappingProxyType(
    {
        "python": ("tree_sitter_python", "language"),
        "javascript": ("tree_sitter_javascript", "language"),
        "typescript": ("tree_sitter_typescript", "language_typescript"),
        "tsx": ("tree_sitter_typescript", "language_tsx"),
        "go": ("tree_sitter_go", "language"),
        "rust": ("tree_sitter_rust", "language"),
        "java": ("tree_sitter_java", "language"),
        "c": ("tree_sitter_c", "language"),
        "cpp": ("tree_sitter_cpp", "language"),
    }
)

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)

# LSP languageIds that are not grammar names themselves: the table's, and a few other spellings
# that clients send (Neovim sends its filetype, e.g. "cuda").
_ALIASES = MappingProxyType(
    {
        **{e.language_id: e.grammar for e in LANGUAGE_TABLE if e.language_id != e.grammar},
        **{e.neovim_filetype: e.grammar for e in LANGUAGE_TABLE
           if e.neovim_filetype and e.neovim_filetype != e.grammar},
        "jsx": "javascript",
        "c++": "cpp",
        "golang": "go",
        "python3": "python",
    }
)


class UnknownLanguage(KeyError):
    """No grammar is bundled for this language name."""


def language_name_for(language_id: str) -> str | None:
    """Grammar name for an LSP languageId, or None if we have no grammar."""
    key = language_id.strip().lower()
    if key in _GRAMMARS:
        return key
    return _ALIASES.get(key)


@lru_cache(maxsize=None)
def get_language(language_name: str) -> Language:
    """The (immutable, shared) tree-sitter Language for a grammar name."""
    try:
        module_name, function = _GRAMMARS[language_name]
    except KeyError:
        raise UnknownLanguage(f"no tree-sitter grammar for {language_name!r}") from None
    module = importlib.import_module(module_name)
    return Language(getattr(module, function)())


def make_parser(language_name: str) -> Parser:
    """A fresh parser; parsers are stateful, so callers own theirs."""
    return Parser(get_language(language_name))
