"""The reply of the `codegen-lsp.synthesize` command, captured from the real server for the VS Code
extension's unit test (editor-client/test/settings.test.ts reads editor-client/test/fixtures/
synthesize-reply.json), and a check that the committed copy still has the shape the server sends.

The fixture is written when it is missing or when CODEGEN_LSP_UPDATE_FIXTURES=1; otherwise a reply
whose keys or value types differ from the committed one fails here, so the extension is never tested
against a reply the server no longer sends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from support import REPO_ROOT
from support.lsp import open_doc, start
from support.snippets import EMPTY_TURN_PROGRAM, MTPB_STYLE_PROGRAM, comments_only

FIXTURE = REPO_ROOT / "editor-client" / "test" / "fixtures" / "synthesize-reply.json"
COMMAND = "codegen-lsp.synthesize"
UPDATE = os.environ.get("CODEGEN_LSP_UPDATE_FIXTURES") == "1"


def shape(value: Any) -> Any:
    """Keys and value types, recursively; a list is the list of its items' shapes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


async def captured_replies(client: LanguageClient, model, tmp_path: Path) -> dict[str, Any]:
    """One reply per outcome the extension tells apart: every turn inserted, a turn that wrote
    nothing, and a refusal (nothing to synthesize, applied: false)."""
    await start(client, model.gguf_path, tmp_path)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        return types.ApplyWorkspaceEditResult(applied=True)

    replies = {}
    for name, text in (("allInserted", comments_only(MTPB_STYLE_PROGRAM)),
                       ("oneTurnEmpty", comments_only(EMPTY_TURN_PROGRAM)),
                       ("nothingToSynthesize", MTPB_STYLE_PROGRAM)):
        uri = (tmp_path / f"{name}.py").as_uri()
        open_doc(client, uri, text)
        replies[name] = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=COMMAND, arguments=[{"uri": uri, "version": 1}]))
    return replies


async def test_committed_reply_fixture_matches_the_server(client: LanguageClient, synthesizing_codegen1,
                                                          tmp_path: Path):
    replies = await captured_replies(client, synthesizing_codegen1, tmp_path)
    # The three outcomes really are the three the fixture names (else the extension's test proves nothing).
    assert replies["allInserted"]["applied"] is True
    assert {t["status"] for t in replies["allInserted"]["turns"]} == {"inserted"}
    assert replies["oneTurnEmpty"]["applied"] is True
    assert [t["status"] for t in replies["oneTurnEmpty"]["turns"]] == ["empty", "inserted"]
    assert replies["nothingToSynthesize"]["applied"] is False and replies["nothingToSynthesize"]["turns"] == []
    captured = {"capturedBy": "tests/e2e/test_synthesis_reply.py", "replies": replies}
    if UPDATE or not FIXTURE.exists():
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(captured, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    committed = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert shape(committed) == shape(captured), (
        f"{FIXTURE.relative_to(REPO_ROOT)} no longer has the shape of the server's reply; check "
        "synthesisMessage (editor-client/src/requests.ts), then rewrite the fixture with "
        "CODEGEN_LSP_UPDATE_FIXTURES=1 and commit it.\n"
        f"committed: {json.dumps(committed['replies'])}\nserver:    {json.dumps(replies)}")


def test_shape_tells_keys_and_types_apart():
    reply = {"applied": True, "stopped": None, "summary": "3 inserted",
             "turns": [{"title": "a", "status": "inserted", "detail": "", "generatedTokens": 4}]}
    assert shape(reply) == shape(json.loads(json.dumps(reply)))
    assert shape(reply) == shape({**reply, "summary": "2 inserted, 1 empty"})  # values may differ
    assert shape(reply) != shape({**reply, "message": "x"})
    assert shape(reply) != shape({key: value for key, value in reply.items() if key != "summary"})
    assert shape(reply) != shape({**reply, "applied": 1})
    assert shape(reply) != shape({**reply, "stopped": "cancelled"})
    assert shape(reply) != shape({**reply, "turns": [{**reply["turns"][0], "generatedTokens": "4"}]})
    assert shape(reply) != shape({**reply, "turns": []})
