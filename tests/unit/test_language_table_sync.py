"""The editor clients' language lists match the server's one language table.

Fails when `server/codegen_lsp/syntax/language_table.py` changes without running
`node editor-client/scripts/sync-languages.mjs` (or a generated file is edited by hand):
the VS Code extension's LANGUAGES (src/languages.ts: its documentSelector) and
package.json activationEvents, and the Neovim client's filetypes
(neovim/lua/codegen_lsp/languages.lua).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from codegen_lsp.headless import LANGUAGE_BY_SUFFIX
from codegen_lsp.syntax.language_table import LANGUAGE_IDS, LANGUAGE_TABLE, NEOVIM_FILETYPES
from codegen_lsp.syntax.languages import SUPPORTED_LANGUAGES, language_name_for

CLIENT = Path(__file__).resolve().parents[2] / "editor-client"
FIX = "run `node editor-client/scripts/sync-languages.mjs`"


def quoted_items(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def test_vscode_document_selector_matches_the_table() -> None:
    text = (CLIENT / "src" / "languages.ts").read_text(encoding="utf-8")
    body = text[text.index("LANGUAGES"):]
    assert quoted_items(body) == list(LANGUAGE_IDS), FIX


def test_vscode_activation_events_match_the_table() -> None:
    package = json.loads((CLIENT / "package.json").read_text(encoding="utf-8"))
    assert package["activationEvents"] == [f"onLanguage:{i}" for i in LANGUAGE_IDS], FIX


def test_neovim_filetypes_match_the_table() -> None:
    text = (CLIENT / "neovim" / "lua" / "codegen_lsp" / "languages.lua").read_text(encoding="utf-8")
    body = text[text.index("filetypes"):]
    assert quoted_items(body) == list(NEOVIM_FILETYPES), FIX


def test_the_vscode_extension_uses_the_generated_list() -> None:
    extension = (CLIENT / "src" / "extension.ts").read_text(encoding="utf-8")
    assert "from './languages'" in extension
    assert "documentSelector: LANGUAGES" in extension
    lua = (CLIENT / "neovim" / "lua" / "codegen_lsp.lua").read_text(encoding="utf-8")
    assert "require('codegen_lsp.languages').filetypes" in lua


def test_every_table_entry_has_a_grammar_and_resolves() -> None:
    for entry in LANGUAGE_TABLE:
        assert entry.grammar in SUPPORTED_LANGUAGES, entry
        assert language_name_for(entry.language_id) == entry.grammar, entry
        if entry.neovim_filetype:
            assert language_name_for(entry.neovim_filetype) == entry.grammar, entry
        for suffix in entry.suffixes:
            assert LANGUAGE_BY_SUFFIX[suffix] == entry.language_id
    assert {e.grammar for e in LANGUAGE_TABLE} == set(SUPPORTED_LANGUAGES)
    assert len(set(LANGUAGE_IDS)) == len(LANGUAGE_IDS)
