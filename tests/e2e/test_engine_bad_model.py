"""A GGUF that passes our inspection but makes llama.cpp abort (a GGML_ASSERT): the engine process dies with
SIGABRT, the language server does not. Requests are answered (empty), the user is told once, the supervisor
gives up after RestartPolicy.max_crashes crashes instead of looping, and a good model then serves the same
open document (issue 13 part 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from codegen_lsp.engine.process import RestartPolicy
from codegen_lsp.gguf.inspect import inspect_model_file

from support import lsp
from support.bad_gguf import abort_at_first_eval, abort_at_load
from support.files import logs, shown
from support.lsp import inline, open_doc, record_status, start

SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
EXPECTED = "return fh.read()"  # what memorizing_codegen1 writes at (5, 8) with maxTokens=24
MAX_CRASHES = 3  # RestartPolicy().max_crashes: the supervisor gives up at this many crashes within its window
# Longer than a further restart would wait: no engine starts again after giving up.
AFTER_GIVING_UP_S = RestartPolicy().backoff(MAX_CRASHES) + 1.5
ANSWER_S = 5  # an inline request is answered within this, crash or not


async def wait_for_status(seen: list[dict], state: str, after: int = 0, needle: str = "",
                          timeout: float = 30) -> int:
    """The index of the first `state` status at or after index `after` whose detail contains `needle`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index in range(after, len(seen)):
            if seen[index]["state"] == state and needle in seen[index]["detail"]:
                return index
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {state!r} status containing {needle!r} after #{after}: {seen}")


def alive(client: LanguageClient) -> bool:
    return client._server.returncode is None  # pygls' client keeps the subprocess it started


def abort_reports(client: LanguageClient) -> list[int]:
    """One `codegenLsp/status` error per engine crash (its detail names the signal): the crash counts."""
    return [s["crashes"] for s in record_status(client) if s["state"] == "error" and s["crashes"]]


def restarts(client: LanguageClient) -> int:
    return lsp.restarts(client)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def is_engine(pid: int) -> bool:
    try:
        return b"codegen_lsp.engine.child" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def engine_processes(client: LanguageClient) -> list[int]:
    """The server's live engine processes (children running codegen_lsp.engine.child)."""
    return [pid for pid in children(client._server.pid) if is_engine(pid)]


def backtrace_forks(client: LanguageClient) -> list[int]:
    """Forks of an engine process that never exec'd: ggml_print_backtrace's, before it runs gdb. When two
    threads abort at once, each fork inherits the other's handshake pipe and both wait forever."""
    return [pid for engine in engine_processes(client) for pid in children(engine) if is_engine(pid)]


async def answer(client: LanguageClient, uri: str, line: int = 5, character: int = 8) -> list:
    """An inline request that must be answered within ANSWER_S (shielded: a late answer is not an error)."""
    request = asyncio.ensure_future(inline(client, uri, line, character))
    try:
        return await asyncio.wait_for(asyncio.shield(request), ANSWER_S)
    except asyncio.TimeoutError:
        request.add_done_callback(lambda done: done.cancelled() or done.exception())  # a late outcome is fine
        stuck = backtrace_forks(client)
        for pid in stuck:  # or they outlive the server holding its stderr open, and the teardown hangs
            os.kill(pid, signal.SIGKILL)
        hint = (f"; the engine is stuck in ggml_print_backtrace (forks {stuck} deadlocked): the engine process "
                f"needs GGML_NO_BACKTRACE=1 in its environment" if stuck else "")
        raise AssertionError(f"no answer within {ANSWER_S} s{hint}") from None


async def test_model_that_aborts_at_its_first_evaluation(client: LanguageClient, memorizing_codegen1,
                                                         tmp_path: Path):
    """llama.cpp loads it, but its first evaluation aborts. The engine evaluates a small prompt at load (it
    pages the weights in and measures the prompt speed: LlamaRunner._measure_speed), so the abort comes while
    loading: reported like a model that aborts in llama.cpp's loader, never "ready", requests still answered,
    and a good model then serves the document opened before the crashes."""
    bad = abort_at_first_eval(memorizing_codegen1.gguf_path, tmp_path / "odd-rope.gguf")
    assert inspect_model_file(bad).architecture == "phi2"  # our own inspection lets it through
    seen = record_status(client)
    await start(client, bad, tmp_path, wait_ready=False, maxTokens=24, threads=1)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    first = await wait_for_status(seen, "error", needle="SIGABRT")
    assert alive(client)
    gave_up = await wait_for_status(seen, "error", first, needle="gave up")
    assert "SIGABRT" in seen[gave_up]["detail"], seen[gave_up]
    assert not [s for s in seen if s["state"] == "ready"], seen
    assert await answer(client, uri) == []  # answered, never left hanging

    await asyncio.sleep(AFTER_GIVING_UP_S)  # no busy loop: no engine starts again after giving up
    assert len(abort_reports(client)) == MAX_CRASHES, seen
    assert engine_processes(client) == []
    messages = shown(client)
    assert len(messages) == 1 and "SIGABRT" in messages[0], messages  # one showMessage for the whole streak

    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"model": str(memorizing_codegen1.gguf_path)}}))
    await wait_for_status(seen, "ready", gave_up)
    assert lsp.loads(client)[-1]["path"] == str(memorizing_codegen1.gguf_path), seen[gave_up:]
    items = await asyncio.wait_for(inline(client, uri, 5, 8), 20)
    assert [item.insert_text for item in items] == [EXPECTED], logs(client)
    assert len(shown(client)) == 1, shown(client)
    assert alive(client)


async def test_model_that_aborts_while_loading(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    bad = abort_at_load(memorizing_codegen1.gguf_path, tmp_path / "bogus-rope-scaling.gguf")
    assert inspect_model_file(bad).architecture == "phi2"
    seen = record_status(client)
    # No "model ready" or "cannot load" ever comes: the engine dies inside llama.cpp's loader.
    await start(client, bad, tmp_path, wait_ready=False, maxTokens=24, threads=1)
    first = await wait_for_status(seen, "error", needle="SIGABRT")
    assert alive(client)
    gave_up = await wait_for_status(seen, "error", first, needle="gave up")
    assert "SIGABRT" in seen[gave_up]["detail"], seen[gave_up]
    assert not [s for s in seen if s["state"] == "ready"], seen

    await asyncio.sleep(AFTER_GIVING_UP_S)  # no busy loop: no engine starts again after giving up
    assert len(abort_reports(client)) == MAX_CRASHES, seen
    assert restarts(client) == 0 and engine_processes(client) == []
    assert not [s for s in seen[gave_up + 1:] if s["state"] != "error"], seen[gave_up + 1:]
    messages = shown(client)
    assert len(messages) == 1 and "SIGABRT" in messages[0], messages

    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, SOURCE)
    assert await answer(client, uri) == []
    assert alive(client) and len(shown(client)) == 1, shown(client)


async def test_what_the_engine_prints_natively_reaches_the_server_log(memorizing_codegen1, tmp_path: Path):
    """The engine process's own stdout/stderr (here llama.cpp's GGML_ASSERT text before the abort) is a pipe
    into the server's log, not the server's stderr: a client that never reads that could block the engine."""
    from codegen_lsp.headless import start_session, stop_session

    bad = abort_at_first_eval(memorizing_codegen1.gguf_path, tmp_path / "odd-rope.gguf")
    log_file = tmp_path / "server.log"
    # The abort comes at the load's warm evaluation (LlamaRunner._measure_speed), before any request.
    client = await start_session(tmp_path, {"model": str(bad), "maxTokens": 8, "threads": 1}, log_file=log_file,
                                 show_messages=False)
    try:
        await wait_for_status(client.statuses, "error", needle="SIGABRT", timeout=ANSWER_S)
    finally:
        await stop_session(client)
    lines = log_file.read_text().splitlines()
    forwarded = [line for line in lines if " codegen_lsp.engine.process: engine " in line and "GGML_ASSERT" in line]
    assert forwarded and all(" WARNING " in line for line in forwarded), lines[-20:]
    assert not any("GGML_ASSERT" in line for line in client.server_stderr), list(client.server_stderr)
