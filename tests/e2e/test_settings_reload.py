"""Settings from every source over real LSP, applied live or by reloading the model; the model file watched."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from support.files import copy_model, generated_counts, replace_atomically, shown, token_budgets, wait_until
from support.lsp import inline, loads, open_doc, record_status, start

# The babbling tiny model never ends this prompt early, so "N generated" is exactly maxTokens.
SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
MEMORIZED = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        "


async def boot(client: LanguageClient, model, root: Path, **options):
    """start() with one llama.cpp thread: on a busy 2-core machine two spinning threads crawl."""
    return await start(client, model, root, **{"threads": 1, **options})


async def suggest_once(client: LanguageClient, root: Path, name: str, text: str = SOURCE) -> list:
    """Open `name` with `text`, ask for a suggestion at the end of its last non-empty line, and wait for the
    server's `codegenLsp/stats` of the model's answer."""
    uri = (root / name).as_uri()
    open_doc(client, uri, text)
    lines = text.rstrip("\n").split("\n")
    before = len(generated_counts(client))
    items = await asyncio.wait_for(inline(client, uri, len(lines) - 1, len(lines[-1])), 20)
    await wait_until(lambda: len(generated_counts(client)) > before, 5, f"a generation for {name}")
    return items


def configure(client: LanguageClient, **section) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"codegenLsp": section}))


def model_ready_count(client: LanguageClient) -> int:
    return len(loads(client))


def ready_path(client: LanguageClient) -> str | None:
    """The model file of the last load that succeeded."""
    ready = loads(client)
    return ready[-1]["path"] if ready else None


async def test_bad_initialization_option_is_named_and_the_rest_applies(client: LanguageClient, tiny_codegen1,
                                                                       tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=-5, debounceMs=0)
    assert any("'maxTokens'" in m and "greater than or equal to 1" in m and "-5" in m for m in shown(client)), \
        shown(client)
    # The valid options of the same source still apply: the model loads, maxTokens keeps its default (64).
    assert ready_path(client) == str(tiny_codegen1.gguf_path), record_status(client)
    await suggest_once(client, tmp_path, "a.py")
    assert token_budgets(client) == [64]


async def test_did_change_configuration_applies_live_and_rejects_bad_values(client: LanguageClient, tiny_codegen1,
                                                                            tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=12)
    first = await suggest_once(client, tmp_path, "a.py")
    configure(client, maxTokens=2)
    second = await suggest_once(client, tmp_path, "b.py")
    assert token_budgets(client) == [12, 2]
    if first and second:
        assert len(second[0].insert_text) < len(first[0].insert_text)
    assert model_ready_count(client) == 1  # applied without a reload

    configure(client, temperature="hot")
    await wait_until(lambda: any("'temperature'" in m for m in shown(client)), 5, "showMessage naming temperature")
    assert any("'temperature'" in m and "hot" in m and "keeping the previous" in m for m in shown(client))
    third = await suggest_once(client, tmp_path, "c.py")
    assert token_budgets(client) == [12, 2, 2]  # the last good maxTokens stays
    assert [i.insert_text for i in third] == [i.insert_text for i in second]  # still greedy (temperature 0)
    assert model_ready_count(client) == 1


async def test_changing_the_model_setting_reloads(client: LanguageClient, tiny_codegen1, memorizing_codegen1,
                                                  tmp_path: Path):
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=8)
    configure(client, model=str(memorizing_codegen1.gguf_path))
    await wait_until(lambda: model_ready_count(client) == 2, 20, "a second load")
    assert ready_path(client) == str(memorizing_codegen1.gguf_path), record_status(client)
    items = await suggest_once(client, tmp_path, "m.py", MEMORIZED)
    assert [i.insert_text for i in items] == ["return fh.read()"]  # the memorizing model answers now


async def test_workspace_file_is_read_and_configuration_changes_override_it(client: LanguageClient, tiny_codegen1,
                                                                            tmp_path: Path):
    model = copy_model(tiny_codegen1.gguf_path, tmp_path / "tiny.gguf")  # in the workspace: no consent needed
    (tmp_path / "codegen-lsp.toml").write_text('[codegenLsp]\nmaxTokens = 3\nmodel = "tiny.gguf"\n')
    await boot(client, None, tmp_path, debounceMs=0)  # the model comes from the file
    assert ready_path(client) == str(model), record_status(client)
    await suggest_once(client, tmp_path, "a.py")
    configure(client, maxTokens=5)
    await suggest_once(client, tmp_path, "b.py")
    assert token_budgets(client) == [3, 5]


async def test_initialization_options_override_the_workspace_file(client: LanguageClient, tiny_codegen1,
                                                                  tmp_path: Path):
    (tmp_path / "codegen-lsp.toml").write_text("maxTokens = 3\ntopP = 0.5\n")
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=7)
    await suggest_once(client, tmp_path, "a.py")
    assert token_budgets(client) == [7]


async def test_broken_workspace_file_is_named(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    path = tmp_path / "codegen-lsp.toml"
    path.write_text("maxTokens = = 3\n")
    await boot(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=4)
    assert any(str(path) in m for m in shown(client)), shown(client)
    await suggest_once(client, tmp_path, "a.py")
    assert token_budgets(client) == [4]


async def test_model_file_replaced_reloads_and_deleted_is_reported(client: LanguageClient, tiny_codegen1,
                                                                   memorizing_codegen1, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    path = copy_model(tiny_codegen1.gguf_path, models / "model.gguf")
    await boot(client, path, tmp_path, maxTokens=8)
    assert model_ready_count(client) == 1
    await asyncio.sleep(0.5)  # the watcher starts right after the "ready" status; let it set up its inotify watch

    replace_atomically(memorizing_codegen1.gguf_path, path)
    await wait_until(lambda: [s["state"] for s in record_status(client)].count("loading") == 2, 10,
                     "the reload (a second 'loading' status)")
    await wait_until(lambda: model_ready_count(client) == 2, 20, "a second 'ready' after loading")
    assert ready_path(client) == str(path), record_status(client)
    items = await suggest_once(client, tmp_path, "m.py", MEMORIZED)
    assert [i.insert_text for i in items] == ["return fh.read()"]  # the new weights are in use

    path.unlink()
    await wait_until(lambda: any("model file was deleted" in m and str(path) in m for m in shown(client)), 10,
                     "showMessage about the deleted model file")
    assert model_ready_count(client) == 2
    items = await suggest_once(client, tmp_path, "n.py", MEMORIZED)  # the loaded copy keeps serving
    assert [i.insert_text for i in items] == ["return fh.read()"]
