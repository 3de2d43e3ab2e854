"""Files that never reach a model (issue 35), through the real server on the real model (SmolLM2-135M).

A workspace that is a git repository holds an `.env` with a secret, a build output git ignores (with
another secret) and the Python file being completed; both secret files are opened, edited, viewed and
focused beside it. What the model received is checked where it arrives: every message to the local
engine process (tests/support/engine_recorder.py wraps `codegen-lsp serve`), and every request to a
remote OpenAI-compatible recorder on loopback (`remoteUrl`). The secrets never appear there, while the
Python file's text does (the control); the secret files get no suggestion, their stats and the
`codegenLsp/exclusion` notice name the rule. A file that becomes excluded (settings changed; a rename)
leaves the prompts at once. Bad input: a malformed glob is refused by name with the defaults in force,
and a workspace without git says so once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from support.engine_recorder import RECORD_ENV, SCRIPT, recorded
from support.files import wait_until
from support.lsp import (SERVER, change_doc, code_actions_at, inline, open_doc, record_events, start, wait_for_logged,
                         wait_for_shown, wait_for_stats)
from support.loopback_http import Exchange, LoopbackServer, text_chunk

EXCLUSION = "codegenLsp/exclusion"
ENV_SECRET = "sk-live-env-4f9c2a7d1e"
BUILD_SECRET = "sk-live-build-8b3e6f0a2c"
LEGACY_SECRET = "sk-live-legacy-5d1a9e7b3f"
MORE_SECRET = "sk-live-typed-2c7e9b4a1d"
# The secret files share identifiers with the file being completed, so the ring would choose their chunks
# for its prompts if they were not excluded (the remote test's control shows a served one chosen).
ENV_TEXT = f"API_TOKEN={ENV_SECRET}\nSETTINGS_PATH=settings.toml\n"
BUILD_TEXT = f'# generated\nAPI_TOKEN = "{BUILD_SECRET}"\n\ndef load_settings(path):\n    return {{}}\n'
LEGACY_TEXT = f'API_TOKEN = "{LEGACY_SECRET}"\n\n\ndef load_settings(path):\n    return open(path).read()\n'
APP_TEXT = ("import os\n\n\ndef load_settings(path):\n    token = os.environ['API_TOKEN']\n"
            "    with open(path) as fh:\n        return fh.read(), token\n\n\ndef main():\n    settings = ")
APP_LINES = APP_TEXT.split("\n")
APP_END = (len(APP_LINES) - 1, len(APP_LINES[-1]))
APP_MARK = "def load_settings(path):\n    token = os.environ"  # what the control finds in what was sent


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


def repository(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    for name, text in ((".env", ENV_TEXT), ("build/generated.py", BUILD_TEXT), ("app.py", APP_TEXT),
                       ("legacy_config.py", LEGACY_TEXT)):
        (root / name).write_text(text)
    return root


def record_exclusions(client: LanguageClient) -> dict[str, list]:
    """uri → the reasons of its `codegenLsp/exclusion` notices, in order (None: served again)."""
    notices: dict[str, list] = {}

    @client.feature(EXCLUSION)
    def _notice(params):
        get = params.get if isinstance(params, dict) else (lambda key: getattr(params, key, None))
        notices.setdefault(get("uri"), []).append(get("reason"))

    return notices


async def session(command: list[str], root: Path, model: Path | None, env: dict | None = None,
                  **options) -> tuple[LanguageClient, dict[str, list]]:
    client = make_test_lsp_client()
    record_events(client)
    notices = record_exclusions(client)
    await client.start_io(*command, env=dict(os.environ, **(env or {})))
    await start(client, model, root, offerModelDownload=False, **options)
    return client, notices


def view(client: LanguageClient, uri: str, line: int = 0) -> None:
    client.protocol.notify("codegenLsp/didView", {"uri": uri, "line": line})


def focus(client: LanguageClient, uri: str, line: int = 0, character: int = 0) -> None:
    client.protocol.notify("codegenLsp/focus", {"textDocument": {"uri": uri},
                                                "position": {"line": line, "character": character}})


def requests_for(client: LanguageClient, uri: str) -> list:
    return [s for s in client.stats if s.uri == uri and s.kind == "request"]  # type: ignore[attr-defined]


async def work_in_the_secret_files(client: LanguageClient, root: Path, notices: dict[str, list]) -> None:
    """Open, edit, view, focus and ask in `.env` and the ignored build output; each gets nothing, with why."""
    env, build = (root / ".env").as_uri(), (root / "build" / "generated.py").as_uri()
    open_doc(client, env, ENV_TEXT, language="dotenv")
    open_doc(client, build, BUILD_TEXT)
    await wait_until(lambda: env in notices and build in notices, 10, "the exclusion notices")
    assert notices[env] == ["matches .env"] and notices[build] == ["ignored by git: build/ in .gitignore:1"]
    change_doc(client, env, 2, (2, 0), (2, 0), f"EXTRA_TOKEN={MORE_SECRET}\n")
    change_doc(client, build, 2, (5, 0), (5, 0), f"EXTRA = '{MORE_SECRET}'\n")
    for uri in (env, build):
        view(client, uri)
        focus(client, uri, 1, 3)
        assert await asyncio.wait_for(inline(client, uri, 1, 3), 30) == []
        assert await asyncio.wait_for(inline(client, uri, 1, 3, invoked=True), 30) == []
        assert await asyncio.wait_for(code_actions_at(client, uri, 1, 3), 30) == []
        listed = await asyncio.wait_for(client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=3))), 30)
        assert not getattr(listed, "items", listed)
        result = await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="codegen-lsp.synthesize", arguments=[{"uri": uri}])), 30)
        assert result["applied"] is False and result["stopped"] == f"excluded ({notices[uri][0]})", result
        stats = requests_for(client, uri)
        assert len(stats) == 3 and {(s.source, s.reason) for s in stats} == {("none", f"excluded ({notices[uri][0]})")}


async def test_secret_files_never_reach_the_local_engine(smollm2, tmp_path: Path):
    root = repository(tmp_path / "repo")
    record = tmp_path / "engine-messages.bin"
    client, notices = await session([sys.executable, str(SCRIPT), "serve", "--log-level", "info"], root, smollm2,
                                    env={RECORD_ENV: str(record)}, maxTokens=8, warmAfterMs=100)
    app = (root / "app.py").as_uri()
    try:
        await work_in_the_secret_files(client, root, notices)
        open_doc(client, app, APP_TEXT)
        focus(client, app, *APP_END)
        for n in range(3):  # completed beside them: asked for, typed into, warmed, speculated on
            await asyncio.wait_for(inline(client, app, *APP_END), 120)
            await wait_until(lambda: len(requests_for(client, app)) > n, 30, "the app.py request's stats")
            change_doc(client, app, n + 2, APP_END, APP_END, "")
        await asyncio.wait_for(inline(client, app, *APP_END, invoked=True), 120)
        await asyncio.sleep(1.0)  # warm-ups and speculation after the last answer
        assert {s.source for s in requests_for(client, app)} & {"model", "typed-through cache",
                                                                "recent-context cache"}, client.stats
    finally:
        await client.shutdown_session()
    messages = recorded(record)
    assert any(APP_MARK.encode() in m for m in messages), "the control: app.py's text reached the engine"
    for secret in (ENV_SECRET, BUILD_SECRET, MORE_SECRET):
        assert not any(secret.encode() in m for m in messages), secret
        assert not any(secret in m.message for m in client.log_messages), secret
    assert app not in notices


def recording_server() -> LoopbackServer:
    def answer(exchange: Exchange) -> None:
        exchange.sse_start()
        exchange.event(text_chunk("load_settings('settings.toml')", "stop"))
        exchange.event("[DONE]")

    return LoopbackServer({"/v1/completions": answer})


def sent(recorder: LoopbackServer, since: int = 0) -> list[bytes]:
    """The bodies of the completion requests the recorder got (from request number `since` on)."""
    return [e.body for e in recorder.requests[since:] if e.method == "POST"]


def prompt_of(body: bytes) -> str:
    prompt = json.loads(body).get("prompt", "")
    return "".join(prompt) if isinstance(prompt, list) else str(prompt)


async def test_secret_files_never_reach_a_remote_server_and_a_file_that_becomes_excluded_leaves_at_once(
        smollm2, tmp_path: Path):
    root = repository(tmp_path / "repo")
    with recording_server() as recorder:
        client, notices = await session(SERVER, root, smollm2, remoteUrl=recorder.url, maxTokens=8,
                                        speculativeSuggestions=False, warmAfterMs=0)
        app, legacy = (root / "app.py").as_uri(), (root / "legacy_config.py").as_uri()
        try:
            await work_in_the_secret_files(client, root, notices)
            assert sent(recorder) == []
            open_doc(client, legacy, LEGACY_TEXT)
            open_doc(client, app, APP_TEXT)
            await asyncio.wait_for(inline(client, app, *APP_END), 60)
            before = sent(recorder)
            assert any(APP_MARK in prompt_of(body) for body in before), "the control: app.py's text was sent"
            assert any(LEGACY_SECRET.encode() in body for body in before), "the control: a served file's chunk was"

            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                settings={"codegenLsp": {"exclude": ["legacy_config.py"]}}))
            await wait_until(lambda: legacy in notices, 10, "the notice for the file excluded now")
            assert notices[legacy] == ["matches legacy_config.py"]
            count = len(recorder.requests)
            change_doc(client, app, 2, APP_END, APP_END, "load")
            await asyncio.wait_for(inline(client, app, APP_END[0], APP_END[1] + 4), 60)
            assert await asyncio.wait_for(inline(client, legacy, 1, 0), 30) == []
            await wait_until(lambda: len(sent(recorder, count)) >= 1, 10, "a request after the change")
            after = sent(recorder, count)

            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                settings={"codegenLsp": {"exclude": []}}))
            await wait_until(lambda: notices[legacy] == ["matches legacy_config.py", None], 10, "served again")
        finally:
            await client.shutdown_session()
        assert after and all(LEGACY_SECRET.encode() not in body for body in after), "left the prompts at once"
        for secret in (ENV_SECRET, BUILD_SECRET, MORE_SECRET):
            assert not any(secret.encode() in body for body in sent(recorder)), secret


async def test_a_malformed_glob_is_refused_by_name_the_defaults_stay_and_no_git_is_said_once(
        client: LanguageClient, tiny_codegen1, tmp_path: Path):
    notices = record_exclusions(client)
    root = tmp_path / "plain"  # not a git repository
    root.mkdir()
    await start(client, tiny_codegen1.gguf_path, root, offerModelDownload=False, exclude=["*.tmp", "a\\"])
    shown = await wait_for_shown(client, "setting 'exclude'")
    assert "'a\\\\'" in shown and "keeping the previous" in shown, shown
    env, config = (root / ".env").as_uri(), (root / "config.py").as_uri()
    open_doc(client, env, ENV_TEXT, language="dotenv")
    open_doc(client, config, "TOKEN = 'x'\n")
    await wait_until(lambda: env in notices, 10, "the .env notice")
    assert notices[env] == ["matches .env"] and config not in notices
    logged = await wait_for_logged(client, "respectGitignore:")
    assert "is not in a git repository" in logged
    # A rename is a close and an open under the new name: the new name's rule applies at once.
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=config)))
    secrets = (root / "secrets.py").as_uri()
    open_doc(client, secrets, "TOKEN = 'x'\n")
    await wait_until(lambda: secrets in notices, 10, "the renamed file's notice")
    assert notices[secrets] == ["matches secrets.*"]
    assert await asyncio.wait_for(inline(client, secrets, 0, 5), 30) == []
    await wait_for_stats(client, lambda s: s.uri == secrets and s.reason == "excluded (matches secrets.*)")
    assert sum("respectGitignore:" in m.message for m in client.log_messages) == 1


def test_the_headless_cli_says_why_an_excluded_file_gets_nothing(tiny_codegen1, tmp_path: Path):
    root = repository(tmp_path / "repo")
    for name, line, character in ((".env", 0, 9), ("build/generated.py", 2, 0)):
        run = subprocess.run([sys.executable, "-m", "codegen_lsp", "complete", str(root / name), "--line", str(line),
                              "--character", str(character), "--model", str(tiny_codegen1.gguf_path)],
                             capture_output=True, text=True, timeout=120, cwd=root)
        assert run.returncode == 0 and run.stdout == "\n", run
        rule = "matches .env" if name == ".env" else "ignored by git: build/ in .gitignore:1"
        assert f"{root / name}: off for this file ({rule}); nothing of it was sent to the model" in run.stderr, \
            run.stderr
    served = subprocess.run([sys.executable, "-m", "codegen_lsp", "complete", str(root / "app.py"), "--line",
                             str(APP_END[0]), "--character", str(APP_END[1]), "--model", str(tiny_codegen1.gguf_path)],
                            capture_output=True, text=True, timeout=120, cwd=root)
    assert served.returncode == 0 and "off for this file" not in served.stderr, served
