"""The server over real LSP with a real tiny model: capabilities, inline, completion, code action."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from support.files import model_answers, requests
from support.lsp import capabilities, change_doc, code_actions_at, inline, open_doc, start

SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"


async def test_initialize_capabilities(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    result = await start(client, tiny_codegen1.gguf_path, tmp_path)
    caps = result.capabilities
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.code_action_provider.resolve_provider is True
    assert caps.hover_provider is None and caps.definition_provider is None  # only what is implemented


async def test_utf8_negotiated_when_offered(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    result = await start(client, tiny_codegen1.gguf_path, tmp_path, caps=capabilities(encodings=("utf-16", "utf-8")))
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8


async def test_inline_completion_end_to_end(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=24)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    items = await inline(client, uri, 5, 8)
    assert len(items) == 1
    item = items[0]
    assert item.range.start == item.range.end == types.Position(line=5, character=8)
    assert item.insert_text == "return fh.read()"


async def test_inline_completion_after_incremental_edits(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=24)
    uri = (tmp_path / "e.py").as_uri()
    open_doc(client, uri, "x = 1\n")
    change_doc(client, uri, 2, (0, 0), (1, 0), "def add(a, b):\n")
    change_doc(client, uri, 3, (1, 0), (1, 0), "    ")
    items = await inline(client, uri, 1, 4)
    assert [i.insert_text for i in items] == ["return a + b"]


async def test_codegen2_infill_format_uses_the_suffix(client: LanguageClient, memorizing_codegen2, tmp_path: Path):
    await start(client, memorizing_codegen2.gguf_path, tmp_path, maxTokens=24)
    uri = (tmp_path / "f.py").as_uri()
    open_doc(client, uri, "def square(x):\n    return x * x\n\n\n")
    items = await inline(client, uri, 4, 0)
    assert [i.insert_text for i in items] == ["print(square(3))"]


async def test_completion_fallback_is_one_text_edit(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, caps=capabilities(inline=False), maxTokens=16)
    uri = (tmp_path / "b.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    return a\n")
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=12)))
    assert isinstance(result, types.CompletionList) and len(result.items) == 1
    edit = result.items[0].text_edit
    assert edit.range.start == types.Position(line=1, character=11)  # starts at the word being typed
    assert edit.range.end == types.Position(line=1, character=12)
    assert edit.new_text == "a + b"


async def test_complete_here_code_action_resolves_to_versioned_edit(client: LanguageClient, memorizing_codegen2,
                                                                     tmp_path: Path):
    await start(client, memorizing_codegen2.gguf_path, tmp_path, maxTokens=16)
    uri = (tmp_path / "c.py").as_uri()
    open_doc(client, uri, "def square(x):\n    \n\n\nprint(square(3))\n", version=7)
    here = types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=4))
    actions = await code_actions_at(client, uri, 1, 4)
    assert [a.title for a in actions] == ["Complete here (codegen-lsp)"]
    assert actions[0].edit is None  # listing is instant; the edit comes from resolve
    resolved = await client.code_action_resolve_async(actions[0])
    change = resolved.edit.document_changes[0]
    assert change.text_document.uri == uri and change.text_document.version == 7
    assert change.edits[0].range == here
    assert change.edits[0].new_text == "return x * x"


async def test_complete_here_refuses_a_changed_document(client: LanguageClient, memorizing_codegen2, tmp_path: Path):
    await start(client, memorizing_codegen2.gguf_path, tmp_path, maxTokens=16)
    uri = (tmp_path / "d.py").as_uri()
    open_doc(client, uri, "def square(x):\n    \n", version=1)
    actions = await code_actions_at(client, uri, 1, 4)
    change_doc(client, uri, 2, (0, 0), (0, 0), "# edited\n")
    resolved = await client.code_action_resolve_async(actions[0])
    assert resolved.edit is None
    assert any("document changed" in m.message for m in client.messages)


async def test_typed_through_suggestion_is_answered_without_the_model(client: LanguageClient, memorizing_codegen1,
                                                                      tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=16)
    uri = (tmp_path / "typed.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    \n")
    first = await inline(client, uri, 1, 4)
    assert [i.insert_text for i in first] == ["return a + b"]
    model_calls = len(model_answers(client, uri))
    assert model_calls == 1, requests(client, uri)
    change_doc(client, uri, 2, (1, 4), (1, 4), "ret")  # the user types what the suggestion begins with
    typed = await inline(client, uri, 1, 7)
    assert [i.insert_text for i in typed] == ["urn a + b"]
    cached = requests(client, uri)[-1]
    assert (cached.version, cached.source, cached.finish) == (2, "typed-through cache", None), cached
    assert len(model_answers(client, uri)) == model_calls
    change_doc(client, uri, 3, (1, 7), (1, 7), "x")  # typed something else: the model is asked again
    await inline(client, uri, 1, 8)
    assert len(model_answers(client, uri)) == model_calls + 1
    assert requests(client, uri)[-1].version == 3
