"""The first-run offer's decisions (first_run.py) and the pull child's plumbing (models/pull_process.py),
without a server."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace

import pytest

from codegen_lsp.workspace_memory import WorkspaceMemory
from codegen_lsp.first_run import (ACTION_TITLES, Answer, OfferContext, answer_of, memory_of,
                                   offer_memory, overall_percent, why_not_offer)
from codegen_lsp.models.pull_process import PullCancelled, PullFailed, pull_in_child

ASK = OfferContext(enabled=True, builtin=True, ready=True, client_can_ask=True, asked_this_session=False,
                   remembered=None)


def test_offer_only_on_the_ready_demo_model_once_when_the_client_can_ask():
    assert why_not_offer(ASK) is None
    assert why_not_offer(replace(ASK, enabled=False)) == "offerModelDownload is off"
    assert why_not_offer(replace(ASK, builtin=False)) == "a model is configured"
    assert why_not_offer(replace(ASK, ready=False)) is not None
    assert why_not_offer(replace(ASK, asked_this_session=True)) is not None
    assert why_not_offer(replace(ASK, remembered="dismissed")) == "answered before in this workspace (dismissed)"
    assert why_not_offer(replace(ASK, client_can_ask=False)) is not None


def test_answers_and_what_each_remembers():
    assert {answer_of(title) for title in ACTION_TITLES.values()} == {Answer.DOWNLOAD, Answer.KEEP, Answer.CHOOSE}
    assert answer_of(None) is Answer.DISMISSED and answer_of("something else") is Answer.DISMISSED
    assert [memory_of(a) for a in (Answer.KEEP, Answer.DISMISSED, Answer.CHOOSE)] == ["keep", "dismissed", "choose"]
    assert memory_of(Answer.DOWNLOAD, "ok") == "downloaded"
    assert memory_of(Answer.DOWNLOAD, "cancelled") == "cancelled"
    assert memory_of(Answer.DOWNLOAD, "failed") is None  # offline: offered again next session


def test_memory_is_per_workspace_and_survives_a_broken_file(tmp_path):
    memory = offer_memory(tmp_path / "cache")
    a, b = tmp_path / "a", tmp_path / "b"
    assert memory.recall(a) is None
    memory.remember(a, "keep")
    memory.remember(None, "dismissed")
    fresh = WorkspaceMemory(memory.path)
    assert (fresh.recall(a), fresh.recall(b), fresh.recall(None)) == ("keep", None, "dismissed")
    assert [p.name for p in memory.path.parent.iterdir()] == [memory.path.name]  # no temporary file left
    memory.path.write_text("{not json")
    assert fresh.recall(a) is None
    fresh.remember(b, "choose")
    assert fresh.recall(b) == "choose"


def test_one_percentage_across_the_phases():
    assert overall_percent("download", 0.0) == 0 and overall_percent("download", 0.5) == 40
    assert overall_percent("convert", None) == 80 and overall_percent("check", None) == 95
    assert overall_percent("check", 1.0) == 100 and overall_percent("download", 7.0) == 80


def child(script: str) -> list[str]:
    return [sys.executable, "-c", script]


async def test_the_child_reports_progress_and_its_result():
    seen: list[tuple[str, float | None]] = []
    script = ('import json\nfor p, f in (("download", 0.5), ("convert", None)):\n'
              '    print(json.dumps({"phase": p, "fraction": f}), flush=True)\n'
              'print("noise")\nprint(json.dumps({"done": "/x/m.gguf"}))')
    path = await pull_in_child("m", lambda p, f: seen.append((p, f)), asyncio.Event(), command=child(script))
    assert str(path) == "/x/m.gguf" and seen == [("download", 0.5), ("convert", None)]


async def test_the_childs_error_line_is_the_failure():
    script = ("import sys\nprint('traceback noise', file=sys.stderr)\n"
              "print('codegen-lsp: error: cannot download x from y: refused', file=sys.stderr)\n"
              "print('a warning at exit', file=sys.stderr)\nsys.exit(1)")
    with pytest.raises(PullFailed, match="^cannot download x from y: refused$"):
        await pull_in_child("m", lambda *_: None, asyncio.Event(), command=child(script))
    with pytest.raises(PullFailed, match="exit status 3"):
        await pull_in_child("m", lambda *_: None, asyncio.Event(), command=child("raise SystemExit(3)"))


async def test_cancel_stops_a_child_that_ignores_sigint():
    cancel = asyncio.Event()
    script = ("import json, os, signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
              "print(json.dumps({'phase': str(os.getpid())}), flush=True)\ntime.sleep(60)")
    pids: list[int] = []
    started = asyncio.Event()

    def report(phase, fraction):
        pids.append(int(phase))
        started.set()

    task = asyncio.ensure_future(pull_in_child("m", report, cancel, command=child(script)))
    await asyncio.wait_for(started.wait(), 10)
    cancel.set()
    with pytest.raises(PullCancelled):
        await asyncio.wait_for(task, 10)  # SIGINT ignored: SIGKILL after the grace period
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # gone, and reaped
