"""The one table of supported languages: LSP languageId, file suffixes, tree-sitter grammar, Neovim filetype.

Everything else derives from it: the grammar lookup (`languages.py`), the headless CLI's suffix map
(`headless.py`), and, through `codegen-lsp languages` and `editor-client/scripts/sync-languages.mjs`,
the VS Code extension's documentSelector and activationEvents and the Neovim client's filetypes
(`tests/unit/test_language_table_sync.py` fails when those drift). Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class LanguageEntry:
    language_id: str  # the LSP languageId VS Code sends
    grammar: str  # tree-sitter grammar name (a key of languages._GRAMMARS)
    suffixes: tuple[str, ...]  # file suffixes that mean this language (headless CLI)
    neovim_filetype: str | None  # Neovim's filetype (also the languageId Neovim sends); None: not attached


LANGUAGE_TABLE: tuple[LanguageEntry, ...] = (
    LanguageEntry("python", "python", (".py",), "python"),
    LanguageEntry("javascript", "javascript", (".js",), "javascript"),
    LanguageEntry("javascriptreact", "javascript", (".jsx",), "javascriptreact"),
    LanguageEntry("typescript", "typescript", (".ts",), "typescript"),
    LanguageEntry("typescriptreact", "tsx", (".tsx",), "typescriptreact"),
    LanguageEntry("go", "go", (".go",), "go"),
    LanguageEntry("rust", "rust", (".rs",), "rust"),
    LanguageEntry("java", "java", (".java",), "java"),
    LanguageEntry("c", "c", (".c", ".h"), "c"),
    LanguageEntry("cpp", "cpp", (".cc", ".cpp", ".hpp", ".cxx"), "cpp"),
    LanguageEntry("cuda-cpp", "cpp", (".cu", ".cuh"), "cuda"),
)

LANGUAGE_IDS: tuple[str, ...] = tuple(e.language_id for e in LANGUAGE_TABLE)

LANGUAGE_BY_SUFFIX = MappingProxyType({s: e.language_id for e in LANGUAGE_TABLE for s in e.suffixes})

NEOVIM_FILETYPES: tuple[str, ...] = tuple(e.neovim_filetype for e in LANGUAGE_TABLE if e.neovim_filetype)


def language_table_json() -> list[dict[str, object]]:
    """The table as `codegen-lsp languages` prints it (for the editor clients' sync script)."""
    return [
        {"languageId": e.language_id, "grammar": e.grammar, "suffixes": list(e.suffixes),
         "neovimFiletype": e.neovim_filetype}
        for e in LANGUAGE_TABLE
    ]
