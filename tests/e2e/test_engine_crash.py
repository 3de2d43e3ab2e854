"""The engine process dies (a signal, during generation or load): the language server lives on, answers what
was in flight, says why once, restarts the engine and serves again with nothing else lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from codegen_lsp_devtools.bench import engine as bench_engine
from support.files import shown
from support.lsp import SERVER, inline, open_doc, record_status, start

SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
EXPECTED = "return fh.read()"  # what memorizing_codegen1 writes at (5, 8)


def server_pid(client: LanguageClient) -> int:
    return client._server.pid  # pygls' client keeps the subprocess it started


def engine_pids(client: LanguageClient) -> list[int]:
    return bench_engine.engine_pids(server_pid(client))


async def wait_for_engine(client: LanguageClient, timeout: float = 20, poll: float = 0.02) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pids := engine_pids(client):
            return pids[0]
        await asyncio.sleep(poll)
    raise AssertionError("no engine process appeared")


def crash(pid: int, sig: signal.Signals) -> None:
    """Deliver `sig` to a stopped engine: it dies holding whatever it was given."""
    os.kill(pid, sig)
    if sig != signal.SIGKILL:
        os.kill(pid, signal.SIGCONT)


async def wait_for_state(seen: list[dict], state: str, after: int = 0, timeout: float = 20) -> int:
    """The index of the first `state` notification at or after index `after` (the list grows meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index in range(after, len(seen)):
            if seen[index]["state"] == state:
                return index
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {state!r} status after #{after}: {seen}")


def alive(client: LanguageClient) -> bool:
    return client._server.returncode is None


WORDS = {signal.SIGSEGV: "SIGSEGV", signal.SIGILL: "CPU instruction this machine refuses",
         signal.SIGKILL: "SIGKILL"}


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGILL, signal.SIGKILL], ids=lambda s: s.name)
async def test_engine_killed_during_a_request_is_answered_reported_once_and_restarted(
        client: LanguageClient, memorizing_codegen1, tmp_path: Path, sig: signal.Signals):
    seen = record_status(client)
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=24)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    assert [item.insert_text for item in await inline(client, uri, 5, 8)] == [EXPECTED]
    engine = await wait_for_engine(client)

    os.kill(engine, signal.SIGSTOP)  # the request below is then surely in flight when the signal lands
    before = len(seen)
    request = asyncio.ensure_future(inline(client, uri, 5, 7))  # another cursor: no cache answers it
    await wait_for_state(seen, "generating", before, timeout=10)
    crash(engine, sig)
    assert await asyncio.wait_for(request, 10) == []  # answered, empty, not left hanging

    error = await wait_for_state(seen, "error", before, timeout=10)
    assert WORDS[sig] in seen[error]["detail"], seen[error]
    assert alive(client)
    await wait_for_state(seen, "ready", error, timeout=30)
    assert engine not in engine_pids(client)

    # The document, settings and model came through: the same cursor gets the same suggestion.
    assert [item.insert_text for item in await inline(client, uri, 5, 8)] == [EXPECTED]
    crashes = [m for m in shown(client) if WORDS[sig] in m]
    assert len(crashes) == 1 and len(shown(client)) == 1, shown(client)


async def test_engine_killed_while_loading_is_restarted_and_serves(client: LanguageClient, memorizing_codegen1,
                                                                   tmp_path: Path):
    seen = record_status(client)
    await start(client, memorizing_codegen1.gguf_path, tmp_path, wait_ready=False, maxTokens=24)
    engine = await wait_for_engine(client, poll=0.005)
    os.kill(engine, signal.SIGSTOP)
    assert not [s for s in seen if s["state"] == "ready"], "the model loaded before the engine could be stopped"
    crash(engine, signal.SIGSEGV)

    error = await wait_for_state(seen, "error", timeout=10)
    assert "SIGSEGV" in seen[error]["detail"], seen[error]
    await wait_for_state(seen, "ready", error, timeout=30)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    assert [item.insert_text for item in await inline(client, uri, 5, 8)] == [EXPECTED]
    assert alive(client) and len(shown(client)) == 1, shown(client)


async def test_shutdown_while_generating_leaves_no_process_behind(slow_model, tmp_path: Path):
    client = make_test_lsp_client()  # its own: the test shuts the server down itself
    await client.start_io(*SERVER)
    await start(client, slow_model.gguf_path, tmp_path, maxTokens=1000, contextTokens=2048, repetitionFilter=False)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def f(x):\n    ")
    engine = await wait_for_engine(client)
    server = server_pid(client)
    request = asyncio.ensure_future(inline(client, uri, 1, 4))
    await asyncio.sleep(0.5)  # decoding 1000 tokens of the slow model takes seconds
    assert not request.done()
    await asyncio.wait_for(client.shutdown_async(None), 10)
    client.exit(None)
    await asyncio.wait_for(client._server.wait(), 10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{engine}").exists(), "the engine process outlived the server (or is a zombie)"
    assert not Path(f"/proc/{server}").exists()


def native_libraries(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {Path(line.split()[-1]).name for line in maps.splitlines() if "libllama" in line or "libggml" in line}


async def test_only_the_engine_process_loads_llama_cpp(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    await start(client, memorizing_codegen1.gguf_path, tmp_path, maxTokens=24)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    assert [item.insert_text for item in await inline(client, uri, 5, 8)] == [EXPECTED]
    assert native_libraries(await wait_for_engine(client))  # the check sees the libraries where they are
    assert not native_libraries(server_pid(client))
