"""A hung engine through the real server on the real SmolLM2 model (issue 30): the engine process is
stopped (SIGSTOP) in the middle of a suggestion. The request is answered at its deadline, the engine is
replaced, a 2 MB document opened meanwhile is taken, the next suggestion comes from the new engine, and
`shutdown` is answered in time. The supervisor's own tests are in test_engine_hang.py."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp.client import make_test_lsp_client

from support.files import wait_until
from support.lsp import SERVER, inline, loads, open_doc, record_events, record_status, start

DEADLINE_MS = 3000
# A long left-to-right answer: SmolLM2 keeps counting for hundreds of tokens with the loop filter off.
SOURCE = "# The numbers from 1 to 400, one per line.\nNUMBERS = [\n    1,\n    2,\n    3,\n"


def engine_pids(server_pid: int) -> list[int]:
    """The server's engine processes (children running codegen_lsp.engine.child)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and b"codegen_lsp.engine.child" in cmdline:
            pids.append(int(entry.name))
    return pids


def requests_answered(client) -> list:
    return [s for s in client.stats if s.kind == "request"]  # type: ignore[attr-defined]


async def test_an_engine_stopped_mid_suggestion_is_answered_for_replaced_and_shutdown_is_prompt(smollm2,
                                                                                              tmp_path: Path):
    client = make_test_lsp_client()
    record_events(client)
    await client.start_io(*SERVER)
    server_pid = client._server.pid  # type: ignore[attr-defined]
    stopped: int | None = None
    try:
        await start(client, smollm2, tmp_path, requestTimeoutMs=DEADLINE_MS, maxTokens=1000, repetitionFilter=False,
                    speculativeSuggestions=False, warmAfterMs=0, offerModelDownload=False)
        (first_engine,) = engine_pids(server_pid)
        uri = (tmp_path / "numbers.py").as_uri()
        open_doc(client, uri, SOURCE)
        statuses = record_status(client)
        since = len(statuses)
        asked = time.monotonic()
        pending = asyncio.ensure_future(inline(client, uri, 5, 0))
        await wait_until(lambda: any(s["state"] == "generating" for s in statuses[since:]), 10, "generating")
        await asyncio.sleep(0.3)  # well into the answer's 1000 tokens
        os.kill(first_engine, signal.SIGSTOP)
        stopped = first_engine

        items = await asyncio.wait_for(pending, DEADLINE_MS / 1000 + 10)
        answered_after = time.monotonic() - asked
        assert items == [] or all(not i.insert_text for i in items)
        timed_out = requests_answered(client)[-1]
        assert "did not answer within" in timed_out.reason, timed_out
        assert answered_after < DEADLINE_MS / 1000 + 1 + 2, answered_after  # deadline + 1 s, with slack for CI

        # A 2 MB document opened while the engine is replaced; other requests keep being answered.
        big = (tmp_path / "big.py").as_uri()
        open_doc(client, big, "x = 1\n" * (2 * 2**20 // 6))
        listed = await asyncio.wait_for(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codegen-lsp.listModels")), 5)
        assert listed["status"] in ("ready", "error", "loading")

        await wait_until(lambda: not os.path.exists(f"/proc/{first_engine}"), 30, "the stopped engine killed")
        stopped = None
        await wait_until(lambda: [s["state"] for s in statuses[since:]][-1:] == ["ready"]
                         and any(s["state"] == "error" for s in statuses[since:]), 60, "the engine replaced")
        error = next(s for s in statuses[since:] if s["state"] == "error")
        assert "no progress" in error["detail"] or "hung" in error["detail"], error
        (second_engine,) = engine_pids(server_pid)
        assert second_engine != first_engine

        before = len(requests_answered(client))
        await asyncio.wait_for(inline(client, uri, 4, 6), 30)
        await wait_until(lambda: len(requests_answered(client)) > before, 10, "the next suggestion's stats")
        latest = requests_answered(client)[-1]
        assert latest.source == "model" and latest.finish != "error", latest  # the new engine answered
        assert loads(client)[0]["path"] == str(smollm2)

        os.kill(second_engine, signal.SIGSTOP)  # and shutdown is answered in time even so
        stopped = second_engine
        started = time.monotonic()
        await asyncio.wait_for(client.shutdown_async(None), 10)
        assert time.monotonic() - started < 5 + 1, "shutdown took longer than 5 s"
        client.exit(None)
    finally:
        if stopped is not None and os.path.exists(f"/proc/{stopped}"):
            os.kill(stopped, signal.SIGKILL)
        server = client._server  # type: ignore[attr-defined]
        try:  # after a failure no `exit` was sent: the server would wait for it forever
            await asyncio.wait_for(server.wait(), 5)
        except asyncio.TimeoutError:
            server.kill()
        await client.stop()
