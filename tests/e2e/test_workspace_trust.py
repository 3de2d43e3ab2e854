"""Workspace trust through the real server: a cloned repository's codegen-lsp.toml that sets remoteUrl
(a loopback recorder here) or a model outside the workspace gets nothing until the person says yes.

Each test has its own cache (CODEGEN_LSP_CACHE), where the answers are remembered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from codegen_lsp.trust import ALLOW_TITLE, DENY_TITLE
from support.files import wait_until
from support.lsp import SERVER, capabilities, inline, loads, open_doc, record_events, start, wait_for_shown
from support.loopback_http import Exchange, LoopbackServer, text_chunk

SECRET = "sk-live-7f3a9c0e51d24b6b"
SOURCE = (f'API_SECRET = "{SECRET}"  # must never leave this machine\n\n\n'
          "def load_items(path):\n    items = []\n    with open(path) as fh:\n        for line in fh:\n"
          "            items.append(line.strip())\n    return items\n\n\n"
          "# Read the numbers from a file.\n# Print their sum.\n")
LINES = SOURCE.split("\n")
# Ten cursors: the ends of the lines of code and comments, then two at the start of blank lines.
CURSORS = [(n, len(LINES[n])) for n in (0, 3, 4, 5, 6, 7, 8, 12)] + [(1, 0), (13, 0)]


def recording_server() -> LoopbackServer:
    """A loopback OpenAI-compatible server that answers every completion and keeps every request it gets."""
    def answer(exchange: Exchange) -> None:
        exchange.sse_start()
        exchange.event(text_chunk("recorded_answer()", "stop"))
        exchange.event("[DONE]")

    return LoopbackServer({"/v1/completions": answer})


def bodies(recorder: LoopbackServer) -> list[str]:
    return [e.body.decode("utf-8", "replace") for e in recorder.requests]


def answered(client: LanguageClient) -> int:
    return sum(s.kind == "request" for s in client.stats)  # type: ignore[attr-defined]


def asking_caps() -> types.ClientCapabilities:
    caps = capabilities()
    caps.window.show_message = types.ShowMessageRequestClientCapabilities()  # type: ignore[union-attr]
    return caps


def repository(root: Path, url: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / "codegen-lsp.toml").write_text(f'remoteUrl = "{url}"\nremoteApiKey = "stolen"\nmaxTokens = 12\n')
    return root


async def session(cache: Path, root: Path, answer: str | None, model: Path | None,
                  caps: types.ClientCapabilities | None = None, **options) -> tuple[LanguageClient, list]:
    """A server whose client answers every showMessageRequest with `answer`; (client, questions asked)."""
    client = make_test_lsp_client()
    record_events(client)
    questions: list[types.ShowMessageRequestParams] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def _request(params: types.ShowMessageRequestParams):
        questions.append(params)
        return types.MessageActionItem(title=answer) if answer else None

    await client.start_io(*SERVER, env=dict(os.environ, CODEGEN_LSP_CACHE=str(cache)))
    await start(client, model, root, caps=asking_caps() if caps is None else caps,
                offerModelDownload=False, **options)
    return client, questions


async def test_declined_repository_sends_nothing_across_ten_suggestions_and_a_synthesis(smollm2, tmp_path: Path):
    with recording_server() as recorder:
        root = repository(tmp_path / "cloned", recorder.url)
        client, questions = await session(tmp_path / "cache", root, DENY_TITLE, smollm2, synthesisMaxTokens=16)
        try:
            await wait_until(lambda: len(questions) == 1, 30, "the trust question")
            assert len(questions) == 1
            port = recorder.url.rsplit(":", 1)[1]
            assert f"127.0.0.1:{port}" in questions[0].message and "codegen-lsp.toml" in questions[0].message
            uri = (root / "billing.py").as_uri()  # not secrets.py: the built-in exclude globs keep that from any model
            open_doc(client, uri, SOURCE)
            for n, (line, character) in enumerate(CURSORS):
                await asyncio.wait_for(inline(client, uri, line, character), 60)
                await wait_until(lambda: answered(client) > n, 30, f"an answer at {line}:{character}")
            result = await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="codegen-lsp.synthesize", arguments=[{"uri": uri, "range": {"start": {"line": 11, "character": 0},
                                                                   "end": {"line": 13, "character": 0}}}])), 120)
            assert [t["status"] for t in result["turns"]]  # the synthesis ran its turns (on the local model)
            assert loads(client)[-1]["path"] == str(smollm2)  # still the user's own model
        finally:
            await client.shutdown_session()
        assert recorder.connections == 0
        assert len(questions) == 1  # declined once, not nagged per request


async def test_allowed_repository_is_remembered_and_a_changed_url_asks_again(tiny_codegen1, tmp_path: Path):
    cache = tmp_path / "cache"
    with recording_server() as recorder:
        root = repository(tmp_path / "cloned", recorder.url)
        client, questions = await session(cache, root, ALLOW_TITLE, tiny_codegen1.gguf_path)
        try:
            await wait_until(lambda: len(loads(client)) == 2, 30, "the reload onto the allowed remoteUrl")
            uri = (root / "a.py").as_uri()
            open_doc(client, uri, SOURCE)
            await asyncio.wait_for(inline(client, uri, 3, len(LINES[3])), 30)
            await wait_until(lambda: any(e.method == "POST" for e in recorder.requests), 10, "a completion request")
            assert len(questions) == 1
            assert any(SECRET in body for body in bodies(recorder))  # the control: allowed, the buffer is sent
        finally:
            await client.shutdown_session()

        sent = len(recorder.requests)
        client, questions = await session(cache, root, None, tiny_codegen1.gguf_path)
        try:  # the next session: remembered, applied before the first load, no question
            assert len(loads(client)) == 1 and loads(client)[0]["remote"] == recorder.url
            assert questions == []
            assert len(recorder.requests) > sent
        finally:
            await client.shutdown_session()

    with recording_server() as elsewhere:
        repository(root, elsewhere.url)
        client, questions = await session(cache, root, DENY_TITLE, tiny_codegen1.gguf_path)
        try:
            await wait_until(lambda: len(questions) == 1, 30, "the trust question, again")
            assert len(questions) == 1 and elsewhere.url.rsplit("/", 1)[1] in questions[0].message
        finally:
            await client.shutdown_session()
        assert elsewhere.connections == 0


async def test_a_client_that_cannot_ask_runs_without_the_values(client: LanguageClient, tiny_codegen1, tmp_path: Path):
    """The `client` fixture declares no showMessageRequest support: nothing is asked, the values are ignored
    with one warning line, and a model path outside the workspace is one of them."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with recording_server() as recorder:
        root = repository(tmp_path / "cloned", recorder.url)
        with (root / "codegen-lsp.toml").open("a") as toml:
            toml.write(f'model = "{tiny_codegen1.gguf_path}"\n')
        await start(client, None, root, offerModelDownload=False)
        await wait_for_shown(client, "ignoring model, remoteApiKey, remoteUrl from this workspace's codegen-lsp.toml "
                                      "(this editor cannot ask")
        assert loads(client)[-1]["path"] != str(tiny_codegen1.gguf_path)
        assert loads(client)[-1]["remote"] is None
        uri = (root / "a.py").as_uri()
        open_doc(client, uri, SOURCE)
        await asyncio.wait_for(inline(client, uri, 3, len(LINES[3])), 30)
        assert recorder.connections == 0


@pytest.mark.parametrize("where", ["workspace", "cache"])
async def test_a_model_in_the_workspace_or_the_cache_needs_no_question(client: LanguageClient, tiny_codegen1,
                                                                       tmp_path: Path, where: str):
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    if where == "workspace":
        model = root / "models" / "tiny.gguf"
        model.write_bytes(tiny_codegen1.gguf_path.read_bytes())
        (root / "codegen-lsp.toml").write_text('model = "models/tiny.gguf"\n')  # relative to the workspace
    else:
        from codegen_lsp.resources import cache_dir

        model = cache_dir() / "trust-test" / f"{tmp_path.name}.gguf"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(tiny_codegen1.gguf_path.read_bytes())
        (root / "codegen-lsp.toml").write_text(f'model = "{model}"\n')
    try:
        await start(client, None, root, offerModelDownload=False)
        assert loads(client)[-1]["path"] == str(model)
    finally:
        if where == "cache":
            model.unlink()


def test_the_headless_cli_says_what_it_ignored_and_sends_nothing(tiny_codegen1, tmp_path: Path):
    with recording_server() as recorder:
        root = repository(tmp_path / "cloned", recorder.url)
        (root / "a.py").write_text(SOURCE)
        run = subprocess.run([sys.executable, "-m", "codegen_lsp", "complete", str(root / "a.py"), "--line", "3",
                              "--character", str(len(LINES[3])), "--model", str(tiny_codegen1.gguf_path)],
                             capture_output=True, text=True, timeout=120, cwd=root)
        assert run.returncode == 0, run.stderr
        assert "ignoring remoteApiKey, remoteUrl from this workspace's codegen-lsp.toml" in run.stderr
        assert recorder.connections == 0
