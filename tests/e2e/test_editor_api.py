"""What editor clients build on: `codegenLsp/status` notifications for status bars, the listModels command
for "Pick model", and the `client` settings key that editors send along with the section."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from codegen_lsp.models.resolve import default_model_path
from support.files import generated_counts, logs, shown, token_budgets, wait_until
from support.lsp import capabilities, inline, loads, open_doc, record_status, start, wait_for_status


async def wait_for_state(seen: list[dict], state: str, timeout: float = 20) -> dict:
    async def poll() -> dict:
        while True:
            for entry in seen:
                if entry["state"] == state:
                    return entry
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), timeout)


async def test_status_goes_loading_ready_generating_ready(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    seen = record_status(client)
    await start(client, memorizing_codegen1.gguf_path, tmp_path)
    ready = await wait_for_state(seen, "ready")
    assert [s["state"] for s in seen][:2] == ["loading", "ready"], seen
    assert ready["model"] == memorizing_codegen1.gguf_path.name
    assert ready["path"] == str(memorizing_codegen1.gguf_path) and ready["remote"] is None
    before = len(seen)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n")
    items = await inline(client, uri, 1, 0)
    assert items, logs(client)
    await asyncio.sleep(0.2)  # the closing "ready" is sent as the call returns
    assert [s["state"] for s in seen[before:]] == ["generating", "ready"], seen[before:]


async def test_status_reports_a_model_that_fails_to_load_with_the_reason(client: LanguageClient, tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all" * 10)
    seen = record_status(client)
    await start(client, bad, tmp_path)
    error = await wait_for_state(seen, "error")
    assert error["model"] == "bad.gguf"
    assert error["detail"]
    # The showMessage follows the status: a person is told the same reason.
    await wait_until(lambda: any(error["detail"] in m for m in shown(client)), 5, f"a showMessage with {error}")


async def test_list_models_offers_default_workspace_and_registry(client: LanguageClient, tiny_codegen1,
                                                                tmp_path: Path):
    (tmp_path / "models").mkdir()
    local = tmp_path / "models" / "mine.gguf"
    local.write_bytes(tiny_codegen1.gguf_path.read_bytes())
    await start(client, tiny_codegen1.gguf_path, tmp_path)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="codegen-lsp.listModels"))
    assert result["current"] == str(tiny_codegen1.gguf_path) and result["status"] == "ready"
    by_value = {m["value"]: m for m in result["models"]}
    assert str(local) in by_value and by_value[str(local)]["label"] == "mine.gguf"
    if default_model_path() is not None:
        assert by_value[""]["label"].startswith("embedded default")
    assert "codegen-350M-mono" in by_value
    assert "models pull codegen-350M-mono" in by_value["codegen-350M-mono"]["description"]  # nothing pulled here

    with pytest.raises(JsonRpcInvalidParams):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="codegen-lsp.listModels", arguments=["extra"]))


async def test_client_settings_sent_with_the_section_are_ignored_not_rejected(client: LanguageClient, tiny_codegen1,
                                                                             tmp_path: Path):
    await start(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=3)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"client": {"maxRestarts": 1}, "maxTokens": 2}}))
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n")
    await inline(client, uri, 5, 8)
    await wait_until(lambda: generated_counts(client), 5, "a generation")
    assert token_budgets(client) == [2]  # the rest of the section applied (the babbling model never stops early)
    assert not shown(client), shown(client)


async def test_settings_sent_while_initialized_fetches_them_load_the_model_once(client: LanguageClient, tiny_codegen1,
                                                                               tmp_path: Path):
    """VS Code answers workspace/configuration and also pushes didChangeConfiguration at startup: one load."""
    section = {"model": str(tiny_codegen1.gguf_path), "maxTokens": 4}

    client.set_configuration(section, section="codegenLsp")
    # The push below is in the server's input before the answer to its workspace/configuration request.
    await start(client, None, tmp_path, wait_ready=False, caps=capabilities(configuration=True))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"codegenLsp": section}))
    await wait_for_status(client, ("ready",))
    await asyncio.sleep(1.0)
    assert len(loads(client)) == 1 and not loads(client, "error"), record_status(client)
    assert [s["state"] for s in record_status(client)] == ["loading", "ready"], record_status(client)
