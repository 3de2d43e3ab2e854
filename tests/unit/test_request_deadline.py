"""Deadlines on every engine call, with scripted engines (no model, no LSP): a completion job carries
`requestTimeoutMs` as `timeout_s`, and the service never waits for the engine longer than that plus
DEADLINE_GRACE_S; a synthesis turn carries its turn timeout and waits at most CANCEL_WAIT_S after
cancelling. The engines here never answer (a wedged engine) or answer "cancelled" at the deadline (what
the engine process does). The only timing assertions are generous upper bounds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

from codegen_lsp.completion import DEADLINE_GRACE_S, CompletionPorts, CompletionService, no_answer
from codegen_lsp.documents.positions import PositionEncoding
from codegen_lsp.documents.store import DocumentStore
from codegen_lsp.engine.jobs import GenerationJob, GenerationResult
from codegen_lsp.events import SuggestionStats
from codegen_lsp.gguf.meta import PromptFormat
from codegen_lsp.settings import Settings, SettingsError, parse_settings
from codegen_lsp.synthesis.run import CANCEL_WAIT_S, Synthesis, SynthesisOptions
from codegen_lsp.synthesis.turns import plan_turns

URI = "file:///calc.py"
SLACK_S = 3.0  # generous: a loaded CI machine


class Engine:
    """Records jobs. `wedged`: never answers, not even a cancel. Otherwise it answers "cancelled" once the
    job's flag is set or its `timeout_s` passes (as the engine process does), or at once from `auto`."""

    def __init__(self, wedged: bool) -> None:
        self.info = SimpleNamespace(prompt_format=PromptFormat.LEFT_TO_RIGHT, token_ids={}, context_length=2048)
        self.wedged, self.jobs, self.auto = wedged, [], []

    def submit(self, job: GenerationJob) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()  # sent: an asyncio cancel cannot take it back
        self.jobs.append(job)
        if self.auto:
            future.set_result(GenerationResult(self.auto.pop(0), "end", generated_tokens=2))
            return future
        if not self.wedged:
            def stop() -> None:
                if not future.done():
                    future.set_result(GenerationResult("", "cancelled", generated_tokens=5))
            job.cancel.add_hook(stop)
            asyncio.get_running_loop().call_later(job.timeout_s, stop)
        return future


def service(engine: Engine, **settings) -> tuple[CompletionService, list[SuggestionStats], list[str]]:
    stats: list[SuggestionStats] = []
    logs: list[str] = []
    chosen = Settings(**{"debounceMs": 0, "warmAfterMs": 0, "speculativeSuggestions": False, **settings})
    ready = asyncio.Event()
    ready.set()
    return CompletionService(CompletionPorts(
        settings=lambda: chosen, engine=lambda: engine, model_ready=ready.wait,
        model_status=lambda: ("ready", "scripted"), publish_stats=stats.append, log=logs.append,
        generating=contextlib.nullcontext, spawn=lambda coro: asyncio.get_running_loop().create_task(coro),
        is_current=lambda uri, version: True, excluded=lambda uri, language: None)), stats, logs


def document(text: str):
    return DocumentStore(PositionEncoding.UTF16).open(URI, "python", 1, text)


@pytest.mark.parametrize("wedged", [True, False], ids=["wedged-engine", "engine-deadline"])
async def test_a_request_past_its_deadline_answers_empty_with_the_reason(wedged: bool):
    engine = Engine(wedged)
    completions, stats, logs = service(engine, requestTimeoutMs=200)
    doc = document("total = ")
    started = time.perf_counter()
    answer = await asyncio.wait_for(completions.suggest(doc, len(doc.text), len(doc.text)),
                                    0.2 + DEADLINE_GRACE_S + SLACK_S)
    waited = time.perf_counter() - started
    (job,) = engine.jobs
    assert job.timeout_s == pytest.approx(0.2)  # the engine is told the deadline
    assert (answer.text, answer.reason) == ("", "the model did not answer within 200 ms") == ("", no_answer(0.2))
    assert [(s.kind, s.source, s.finish, s.reason) for s in stats] == [
        ("request", "model", "error", "the model did not answer within 200 ms")]
    assert job.cancel.is_set() or not wedged  # a wedged engine's job is cancelled by us
    assert waited < 0.2 + DEADLINE_GRACE_S + SLACK_S
    # The next request is served (nothing stuck in the service's bookkeeping).
    engine.auto = ["+ 1"]
    assert (await asyncio.wait_for(completions.suggest(doc, len(doc.text), len(doc.text)), SLACK_S)).text == "+ 1"
    assert completions.inflight == {}


async def test_a_newer_request_before_the_deadline_is_still_superseded():
    engine = Engine(wedged=False)
    completions, stats, _ = service(engine, requestTimeoutMs=5000)
    doc = document("total = ")
    first = asyncio.ensure_future(completions.suggest(doc, len(doc.text), len(doc.text)))
    while not engine.jobs:
        await asyncio.sleep(0.01)
    engine.auto = ["+ 2"]
    second = await asyncio.wait_for(completions.suggest(doc, len(doc.text), len(doc.text)), SLACK_S)
    older = await asyncio.wait_for(first, SLACK_S)
    assert (older.reason, second.text) == ("superseded by a newer request", "+ 2")


async def test_speculative_and_warm_jobs_have_the_deadline_too():
    engine = Engine(wedged=True)
    completions, stats, _ = service(engine, requestTimeoutMs=150)
    doc = document("total = 1\n")
    await asyncio.wait_for(completions.speculate_next(doc, "total = 1", "\n", kind="warm"),
                           0.15 + DEADLINE_GRACE_S + SLACK_S)
    (job,) = engine.jobs
    assert job.timeout_s == pytest.approx(0.15) and job.cancel.is_set()
    assert [(s.kind, s.reason) for s in stats] == [("warm", "the model did not answer within 150 ms")]
    assert completions.cache.lookup(URI, "total = 1", "\n") is None  # nothing cached from a timeout


@pytest.mark.parametrize("value", [0, -1, 99])
def test_the_setting_refuses_values_below_its_minimum_by_name(value: int):
    with pytest.raises(SettingsError) as refused:
        parse_settings(Settings(), {"requestTimeoutMs": value})
    assert "requestTimeoutMs" in str(refused.value) and refused.value.key == "requestTimeoutMs"
    assert parse_settings(Settings(), {"requestTimeoutMs": 100}).request_timeout_ms == 100


SYNTHESIS_TEXT = "# Step one.\n\n# Step two.\n"


@pytest.mark.parametrize("wedged", [True, False], ids=["wedged-engine", "engine-deadline"])
async def test_a_synthesis_turn_past_its_timeout_is_reported_and_the_next_goes_on(wedged: bool):
    doc = document(SYNTHESIS_TEXT)
    plan = plan_turns(doc.tree, doc.source_bytes, doc.language, 0, 0)
    engine, logs = Engine(wedged), []
    original = engine.submit

    def submit(job):
        if engine.jobs:  # the second turn's job is answered at once
            engine.auto = ["x = 2\n"]
        return original(job)

    engine.submit = submit  # type: ignore[method-assign]
    synthesis = Synthesis(doc, plan, SynthesisOptions(turn_timeout_s=0.2), None, engine, lambda: True, logs.append)
    started = time.perf_counter()
    result = await asyncio.wait_for(synthesis.run(), 2 * (0.2 + CANCEL_WAIT_S) + SLACK_S)
    assert time.perf_counter() - started < 0.2 + CANCEL_WAIT_S + SLACK_S  # not the engine's (never) answer
    first_job = engine.jobs[0]
    assert first_job.timeout_s == pytest.approx(0.2)  # the engine is told the turn's deadline
    assert first_job.cancel.is_set() or not wedged  # a wedged engine's job is cancelled by us
    assert [(t.status, t.detail) for t in result.turns][0] == ("timeout", "the model did not answer within 200 ms")
    assert [t.status for t in result.turns] == ["timeout", "inserted"], result.turns
    assert result.stopped is None and len(result.insertions) == 1


@pytest.mark.parametrize("answer", [GenerationResult("", "cancelled", generated_tokens=5),
                                    GenerationResult("", "error", error=no_answer(0.2))],
                         ids=["cancelled-at-the-deadline", "engine-gave-up"])
async def test_the_engines_own_deadline_answer_makes_the_turn_a_timeout(monkeypatch, answer: GenerationResult):
    """The engine's deadline can answer before our timer fires (its clock started first): a "cancelled" that
    nobody asked for, or its "error", once the turn's time is up, is that turn's timeout; the run goes on.
    The clock is moved on instead of sleeping."""
    import codegen_lsp.synthesis.run as run

    clock = {"offset": 0.0}
    monkeypatch.setattr(run, "time", SimpleNamespace(perf_counter=time.perf_counter,
                                                     monotonic=lambda: time.monotonic() + clock["offset"]))
    doc = document(SYNTHESIS_TEXT)
    plan = plan_turns(doc.tree, doc.source_bytes, doc.language, 0, 0)
    engine = Engine(wedged=True)
    answers = [answer, GenerationResult("x = 2\n", "end", generated_tokens=3)]

    def submit(job):
        engine.jobs.append(job)
        future: Future = Future()
        if len(engine.jobs) == 1:
            clock["offset"] += 0.2  # the turn's time is up when the engine answers
        future.set_result(answers.pop(0))
        return future

    engine.submit = submit  # type: ignore[method-assign]
    synthesis = Synthesis(doc, plan, SynthesisOptions(turn_timeout_s=0.2), None, engine, lambda: True, lambda _: None)
    result = await asyncio.wait_for(synthesis.run(), SLACK_S)
    assert [t.status for t in result.turns] == ["timeout", "inserted"] and result.stopped is None, result


async def test_a_cancel_before_the_deadline_is_still_a_cancel():
    """A "cancelled" before the turn's time is up (the engine was retired by a reload) ends the run as before."""
    doc = document(SYNTHESIS_TEXT)
    plan = plan_turns(doc.tree, doc.source_bytes, doc.language, 0, 0)
    engine = Engine(wedged=True)

    def submit(job):
        engine.jobs.append(job)
        future: Future = Future()
        future.set_result(GenerationResult("", "cancelled"))
        return future

    engine.submit = submit  # type: ignore[method-assign]
    synthesis = Synthesis(doc, plan, SynthesisOptions(turn_timeout_s=30), None, engine, lambda: True, lambda _: None)
    result = await asyncio.wait_for(synthesis.run(), SLACK_S)
    assert (result.turns, result.stopped, len(engine.jobs)) == ([], "cancelled", 1)
