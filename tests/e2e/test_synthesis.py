"""Synthesize from comments through the real server: exact programs from a model that memorized them,
progress, cancellation that keeps whole turns, and refusals."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from codegen_lsp.headless import apply_text_edits, whole_lines
from support.lsp import change_doc, code_actions_at, open_doc, start, wait_for_shown
from support.snippets import (BROKEN_TURN_PROGRAM, DOCSTRING_PROGRAM, EMPTY_TURN_PROGRAM, JAVASCRIPT_PROGRAM,
                              MTPB_STYLE_PROGRAM, comments_only)

SYNTHESIZE = "Synthesize from comments (codegen-lsp)"
COMMAND = "codegen-lsp.synthesize"


async def open_steps(client: LanguageClient, model, path: Path, program: str) -> tuple[str, str]:
    """Start the server on `model` and open `program` with its code removed; (uri, text)."""
    await start(client, model.gguf_path, path.parent)
    uri, text = path.as_uri(), comments_only(program)
    open_doc(client, uri, text)
    return uri, text


async def synthesize_action(client: LanguageClient, uri: str, selection: types.Range) -> types.CodeAction:
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=selection,
        context=types.CodeActionContext(diagnostics=[])))
    matching = [a for a in actions if a.title == SYNTHESIZE]
    assert len(matching) == 1, [a.title for a in actions]
    return matching[0]


def record_applied_edits(client: LanguageClient) -> list[types.WorkspaceEdit]:
    applied: list[types.WorkspaceEdit] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        applied.append(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    return applied


def command(uri: str, **extra) -> types.ExecuteCommandParams:
    return types.ExecuteCommandParams(command=COMMAND, arguments=[{"uri": uri, **extra}])


async def test_mtpb_style_program_is_synthesized_exactly(client: LanguageClient, synthesizing_codegen1, tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    uri = (tmp_path / "a.py").as_uri()
    text = comments_only(MTPB_STYLE_PROGRAM)
    assert text != MTPB_STYLE_PROGRAM and "print" not in text
    open_doc(client, uri, text, version=3)
    action = await synthesize_action(client, uri, whole_lines(text))
    assert action.edit is None  # listing is instant; resolve computes the edit
    resolved = await client.code_action_resolve_async(action)
    change = resolved.edit.document_changes[0]
    assert change.text_document.version == 3
    assert len(change.edits) == 3  # one insert per turn without code ("Import libraries." has its code)
    assert all(e.range.start == e.range.end for e in change.edits)
    assert apply_text_edits(text, list(change.edits)) == MTPB_STYLE_PROGRAM


async def test_docstring_turn_in_the_function_at_the_cursor(client: LanguageClient, synthesizing_codegen1,
                                                            tmp_path: Path):
    uri, text = await open_steps(client, synthesizing_codegen1, tmp_path / "b.py", DOCSTRING_PROGRAM)
    cursor = types.Position(line=1, character=10)  # inside the docstring: the enclosing function is the region
    resolved = await client.code_action_resolve_async(
        await synthesize_action(client, uri, types.Range(start=cursor, end=cursor)))
    assert apply_text_edits(text, list(resolved.edit.document_changes[0].edits)) == DOCSTRING_PROGRAM


async def test_javascript_line_comment_turn(client: LanguageClient, synthesizing_codegen1, tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    uri = (tmp_path / "c.js").as_uri()
    text = comments_only(JAVASCRIPT_PROGRAM, "//")
    open_doc(client, uri, text, language="javascript")
    resolved = await client.code_action_resolve_async(await synthesize_action(client, uri, whole_lines(text)))
    assert apply_text_edits(text, list(resolved.edit.document_changes[0].edits)) == JAVASCRIPT_PROGRAM


async def test_command_reports_progress_per_turn_and_applies_one_edit(client: LanguageClient, synthesizing_codegen1,
                                                                       tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    applied = record_applied_edits(client)
    uri = (tmp_path / "d.py").as_uri()
    text = comments_only(MTPB_STYLE_PROGRAM)
    open_doc(client, uri, text, version=5)
    result = await client.workspace_execute_command_async(command(uri, version=5))
    assert result["applied"] is True and [t["status"] for t in result["turns"]] == ["inserted"] * 3
    assert len(applied) == 1
    change = applied[0].document_changes[0]
    assert change.text_document.version == 5
    assert apply_text_edits(text, list(change.edits)) == MTPB_STYLE_PROGRAM
    reports = client.progress_reports[synthesis_token(client)]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    turns = [r.message for r in reports if isinstance(r, types.WorkDoneProgressReport)]
    assert [m.split(":")[0] for m in turns] == ["turn 1/3", "turn 2/3", "turn 3/3"]
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)


async def test_empty_turn_is_reported_and_later_turns_still_run(client: LanguageClient, synthesizing_codegen1,
                                                                tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    applied = record_applied_edits(client)
    uri = (tmp_path / "e.py").as_uri()
    text = comments_only(EMPTY_TURN_PROGRAM)
    open_doc(client, uri, text)
    result = await client.workspace_execute_command_async(command(uri))
    assert [t["status"] for t in result["turns"]] == ["empty", "inserted"]
    assert apply_text_edits(text, list(applied[0].document_changes[0].edits)) == EMPTY_TURN_PROGRAM
    assert result["turns"][0]["title"] == "Nothing to do here.", result["turns"]  # the empty turn is named


async def test_turn_that_breaks_the_parse_is_not_inserted(client: LanguageClient, synthesizing_codegen1, tmp_path: Path):
    uri, text = await open_steps(client, synthesizing_codegen1, tmp_path / "f.py", BROKEN_TURN_PROGRAM)
    resolved = await client.code_action_resolve_async(await synthesize_action(client, uri, whole_lines(text)))
    assert resolved.edit is None
    await wait_for_shown(client, "nothing to insert (1 parse-error)")


async def test_not_offered_without_a_comment_lacking_code(client: LanguageClient, synthesizing_codegen1, tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    applied = record_applied_edits(client)
    uri = (tmp_path / "g.py").as_uri()
    open_doc(client, uri, MTPB_STYLE_PROGRAM)  # every comment already has its code
    actions = await code_actions_at(client, uri, 0, 0)
    assert SYNTHESIZE not in [a.title for a in actions]
    result = await client.workspace_execute_command_async(command(uri))
    assert result["applied"] is False and "no comment without code" in result["summary"]
    await wait_for_shown(client, "no comment without code in the range")
    assert applied == []


async def test_bad_command_arguments_are_invalid_params(client: LanguageClient, synthesizing_codegen1, tmp_path: Path):
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    uri = (tmp_path / "h.py").as_uri()
    open_doc(client, uri, "# Print one.\n")
    for arguments in ([], [42], [{"uri": uri, "range": {"start": {"line": 99, "character": 0}}}],
                      [{"uri": "file:///not/open.py"}], [{"uri": uri, "version": "x"}]):
        with pytest.raises(JsonRpcInvalidParams):
            await client.workspace_execute_command_async(types.ExecuteCommandParams(command=COMMAND, arguments=arguments))


async def test_action_refused_when_the_document_changed_after_listing(client: LanguageClient, synthesizing_codegen1,
                                                                      tmp_path: Path):
    uri, text = await open_steps(client, synthesizing_codegen1, tmp_path / "i.py", MTPB_STYLE_PROGRAM)
    action = await synthesize_action(client, uri, whole_lines(text))
    change_doc(client, uri, 2, (0, 0), (0, 0), "# edited\n")
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is None
    await wait_for_shown(client, "the document changed since the action was offered")


async def test_edit_refused_when_the_document_changes_during_synthesis(client: LanguageClient, slow_model,
                                                                       tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, synthesisMaxTokens=400, threads=1, repetitionFilter=False)
    applied = record_applied_edits(client)
    uri = (tmp_path / "j.py").as_uri()
    open_doc(client, uri, "# Step one.\n\n# Step two.\n")
    running = asyncio.ensure_future(client.workspace_execute_command_async(command(uri)))
    await asyncio.sleep(0.5)
    assert not running.done()
    change_doc(client, uri, 2, (0, 0), (0, 0), "# edited\n")
    result = await asyncio.wait_for(running, 60)
    assert result["applied"] is False
    assert applied == []
    await wait_for_shown(client, "the document changed during synthesis; nothing was applied")


def synthesis_token(client: LanguageClient) -> types.ProgressToken:
    """The progress token of the synthesis (model loading has its own)."""
    return next(token for token, reports in client.progress_reports.items()
                if reports and isinstance(reports[0], types.WorkDoneProgressBegin)
                and reports[0].title == "Synthesize from comments")


def turn_reports(client: LanguageClient) -> list[str]:
    return [r.message for reports in client.progress_reports.values() for r in reports
            if isinstance(r, types.WorkDoneProgressReport)]


async def wait_for_turn(client: LanguageClient, prefix: str) -> None:
    while not any(m.startswith(prefix) for m in turn_reports(client)):
        await asyncio.sleep(0.001)


THREE_TURNS = comments_only(MTPB_STYLE_PROGRAM)


async def full_run_inserts(client: LanguageClient, uri: str) -> list[str]:
    """What an uncancelled run inserts (greedy, so a cancelled run must insert a prefix of it)."""
    resolved = await client.code_action_resolve_async(await synthesize_action(client, uri, whole_lines(THREE_TURNS)))
    return [e.new_text for e in resolved.edit.document_changes[0].edits]


async def test_progress_cancel_applies_only_finished_turns(client: LanguageClient, slow_synthesizing_codegen1,
                                                           tmp_path: Path):
    await start(client, slow_synthesizing_codegen1.gguf_path, tmp_path)
    applied = record_applied_edits(client)
    uri = (tmp_path / "k.py").as_uri()
    open_doc(client, uri, THREE_TURNS)
    full = await full_run_inserts(client, uri)
    assert len(full) == 3
    running = asyncio.ensure_future(client.workspace_execute_command_async(command(uri)))
    await asyncio.wait_for(wait_for_turn(client, "turn 2/3"), 30)
    token = synthesis_token(client)
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(running, 30)
    assert result["stopped"] == "cancelled" and result["applied"] is True
    inserts = [e.new_text for e in applied[0].document_changes[0].edits]
    assert 1 <= len(inserts) < len(full)
    assert inserts == full[:len(inserts)]  # whole turns only, each exactly as an uncancelled run writes it


async def test_cancel_request_stops_decoding_and_applies_finished_turns(client: LanguageClient,
                                                                        slow_synthesizing_codegen1, tmp_path: Path):
    await start(client, slow_synthesizing_codegen1.gguf_path, tmp_path)
    applied = record_applied_edits(client)
    uri = (tmp_path / "l.py").as_uri()
    open_doc(client, uri, THREE_TURNS)
    full = await full_run_inserts(client, uri)
    running = asyncio.ensure_future(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, command(uri), msg_id="synth-1"))
    await asyncio.wait_for(wait_for_turn(client, "turn 2/3"), 30)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="synth-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(running, 30)
    deadline = time.monotonic() + 10
    while not applied and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    inserts = [e.new_text for e in applied[0].document_changes[0].edits]
    assert 1 <= len(inserts) < len(full) and inserts == full[:len(inserts)]


async def test_cancel_mid_turn_inserts_nothing_of_that_turn(client: LanguageClient, slow_model, tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, synthesisMaxTokens=1000, threads=1, repetitionFilter=False)
    applied = record_applied_edits(client)
    uri = (tmp_path / "m.py").as_uri()
    open_doc(client, uri, "# Step one.\n")
    running = asyncio.ensure_future(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, command(uri), msg_id="synth-2"))
    await asyncio.sleep(0.5)  # well into decoding the only turn
    assert not running.done()
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="synth-2"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(running, 5)
    assert time.perf_counter() - cancelled_at < 0.5
    await asyncio.sleep(0.3)
    assert applied == []  # half a turn is never applied


async def test_turn_past_its_timeout_inserts_nothing_and_is_reported(client: LanguageClient, slow_model,
                                                                     tmp_path: Path):
    await start(client, slow_model.gguf_path, tmp_path, synthesisMaxTokens=1000, synthesisTurnTimeoutMs=300, repetitionFilter=False,
                threads=1)
    applied = record_applied_edits(client)
    uri = (tmp_path / "n.py").as_uri()
    open_doc(client, uri, "# Step one.\n")
    started = time.perf_counter()
    result = await asyncio.wait_for(client.workspace_execute_command_async(command(uri)), 30)
    assert time.perf_counter() - started < 10  # stopped at the timeout, not after 1000 tokens
    assert [t["status"] for t in result["turns"]] == ["timeout"] and result["applied"] is False
    assert applied == []
    await wait_for_shown(client, "nothing to insert (1 timeout)")


async def test_sampled_code_that_breaks_the_parse_is_retried_once_greedily(client: LanguageClient,
                                                                           synthesizing_codegen1, tmp_path: Path):
    uri = (tmp_path / "o.py").as_uri()
    text = comments_only(BROKEN_TURN_PROGRAM)
    await start(client, synthesizing_codegen1.gguf_path, tmp_path)
    open_doc(client, uri, text)
    greedy = await client.workspace_execute_command_async(command(uri))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"synthesisTemperature": 0.2}}))
    sampled = await client.workspace_execute_command_async(command(uri))
    assert greedy["turns"][0]["status"] == sampled["turns"][0]["status"] == "parse-error"
    # The sampled attempt (the memorized, broken line) and then one greedy retry: twice the tokens.
    assert sampled["turns"][0]["generatedTokens"] == 2 * greedy["turns"][0]["generatedTokens"] > 0
