"""The VS Code extension's settings (editor-client/package.json) match the server's settings schema.

Fails when a server setting is added or changed without running
`node editor-client/scripts/sync-settings.mjs`. The conversion below mirrors that script
(keep them in step): every schema property P becomes "codegenLsp.P"; anyOf [{type: X, ...bounds},
{type: "null"}] becomes type [X, "null"] plus the bounds; kept keys are type, default, enum,
minimum, maximum, exclusiveMinimum, exclusiveMaximum, items, and description (as
markdownDescription); everything else (title, ...) is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codegen_lsp.settings import settings_json_schema

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "editor-client" / "package.json"
PREFIX = "codegenLsp."
CLIENT_PREFIX = "codegenLsp.client."
KEPT_KEYS = ("type", "default", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "items")
# VS Code scopes the schema has no notion of (SCOPES in sync-settings.mjs): settings that hold a key.
SCOPES = {"codegenLsp.remoteApiKey": "machine"}
CLIENT_SETTINGS = {
    "codegenLsp.client.serverCommand": ("array", []),
    "codegenLsp.client.pythonPath": ("string", ""),
    "codegenLsp.client.completionFallback": ("boolean", False),
    "codegenLsp.client.maxRestarts": ("integer", 3),
}


def convert(prop: dict[str, Any]) -> dict[str, Any]:
    source = prop
    if "anyOf" in prop:
        non_null = [s for s in prop["anyOf"] if s.get("type") != "null"]
        assert len(non_null) == 1, f"unsupported anyOf: {prop['anyOf']}"
        source = {**non_null[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
        has_null = len(non_null) < len(prop["anyOf"])
        source["type"] = [non_null[0]["type"], "null"] if has_null else non_null[0]["type"]
    out = {k: source[k] for k in KEPT_KEYS if k in source}
    if isinstance(source.get("description"), str):
        out["markdownDescription"] = source["description"]
    return out


@pytest.fixture(scope="module")
def contributed() -> dict[str, Any]:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    return package["contributes"]["configuration"]["properties"]


def test_server_settings_match_the_schema(contributed: dict[str, Any]) -> None:
    expected = {PREFIX + name: convert(prop) | ({"scope": SCOPES[PREFIX + name]} if PREFIX + name in SCOPES else {})
                for name, prop in settings_json_schema()["properties"].items()}
    actual = {k: v for k, v in contributed.items() if not k.startswith(CLIENT_PREFIX)}
    assert sorted(actual) == sorted(expected), "run `node editor-client/scripts/sync-settings.mjs`"
    for key, want in expected.items():
        got = actual[key]
        # Compared field by field for a readable failure; JSON numbers compare equal across int/float.
        for field in (*KEPT_KEYS, "markdownDescription", "scope"):
            assert got.get(field) == want.get(field), (
                f"{key}.{field}: package.json has {got.get(field)!r}, the schema says {want.get(field)!r}"
            )
        assert set(got) == set(want), f"{key}: keys differ: {sorted(got)} vs {sorted(want)}"


def test_client_settings_exist(contributed: dict[str, Any]) -> None:
    for key, (type_, default) in CLIENT_SETTINGS.items():
        assert key in contributed, key
        assert contributed[key]["type"] == type_
        assert contributed[key]["default"] == default
    assert contributed["codegenLsp.client.maxRestarts"]["minimum"] == 0
    assert contributed["codegenLsp.client.serverCommand"]["items"] == {"type": "string"}


def test_untrusted_workspaces_cannot_set_what_sends_code_or_runs_a_program(contributed: dict[str, Any]) -> None:
    """VS Code's workspace trust keeps these workspace-level values out until the folder is trusted: the ones
    the server asks about when they come from codegen-lsp.toml (trust.py), and the client's launch command."""
    from codegen_lsp.trust import EXCLUDE_KEY, GITIGNORE_KEY, MODEL_KEY, REMOTE_KEYS

    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    untrusted = package["capabilities"]["untrustedWorkspaces"]
    assert untrusted["supported"] == "limited"
    restricted = set(untrusted["restrictedConfigurations"])
    assert {PREFIX + key for key in (*REMOTE_KEYS, MODEL_KEY, EXCLUDE_KEY, GITIGNORE_KEY)} | {
        CLIENT_PREFIX + "serverCommand", CLIENT_PREFIX + "pythonPath"} <= restricted
    assert restricted <= set(contributed)  # each names a real setting
