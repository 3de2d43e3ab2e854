"""The completion service's orchestration rules, in-process, with a scripted engine (no model, no LSP).

The engine implements the `Engine` protocol: every job it is given is recorded with its `CancelFlag` and
held until the test answers it, unless a canned answer was queued (`engine.auto`). A held job whose
flag is set finishes as "cancelled" at once, as the real engines do at their next token. Nothing here
sleeps: the tests wait on the engine's asyncio events (bounded, so a broken rule fails instead of hanging).
The real-model e2e tests (tests/e2e/test_speculation.py, test_cancellation.py) cover the same rules
through the server; these pin them down without one.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace


from codegen_lsp.completion import CompletionPorts, CompletionService
from codegen_lsp.documents.positions import PositionEncoding
from codegen_lsp.documents.store import DocumentStore, TextChange
from codegen_lsp.engine.jobs import GenerationJob, GenerationResult
from codegen_lsp.events import SuggestionStats
from codegen_lsp.gguf.meta import PromptFormat
from codegen_lsp.settings import Settings
from support.imports import lsp_modules_loaded_by

URI = "file:///calc.py"
WAIT_S = 5  # a bound on waiting for an event that a working service produces at once


async def bounded(awaitable):
    return await asyncio.wait_for(awaitable, WAIT_S)


@dataclass
class Submitted:
    job: GenerationJob
    future: Future

    @property
    def prompt(self) -> str:
        return "".join(getattr(s, "text", "") for s in self.job.segments)

    def answer(self, text: str, finish: str = "end") -> None:
        if not self.future.done():
            self.future.set_result(GenerationResult(text, finish, prompt_tokens=len(self.prompt),
                                                    evaluated_prompt_tokens=1, generated_tokens=len(text)))


class ScriptedEngine:
    """An `Engine`: records each job, answers from `auto` when it has an answer queued, else holds it."""

    def __init__(self) -> None:
        self.info = SimpleNamespace(prompt_format=PromptFormat.LEFT_TO_RIGHT, token_ids={})
        self.jobs: list[Submitted] = []
        self.auto: list[str] = []
        self._arrived = asyncio.Event()

    def load(self, config, progress=None):  # pragma: no cover - the service never loads
        raise NotImplementedError

    def submit(self, job: GenerationJob) -> Future:
        submitted = Submitted(job, Future())
        self.jobs.append(submitted)
        job.cancel.add_hook(lambda: submitted.answer("", "cancelled"))  # stops at its "next token"
        if self.auto:
            submitted.answer(self.auto.pop(0))
        self._arrived.set()
        return submitted.future

    def close(self) -> None:
        pass

    async def job(self, index: int) -> Submitted:
        """The `index`-th job submitted (0-based), once it is."""
        async def arrived() -> Submitted:
            while len(self.jobs) <= index:
                self._arrived.clear()
                await self._arrived.wait()
            return self.jobs[index]
        return await asyncio.wait_for(arrived(), WAIT_S)


class Harness:
    def __init__(self, **settings) -> None:
        self.settings = Settings(**{"debounceMs": 0, "warmAfterMs": 0, "speculativeSuggestions": False, **settings})
        self.engine = ScriptedEngine()
        self.store = DocumentStore(PositionEncoding.UTF16)
        self.stats: list[SuggestionStats] = []
        self._stats_arrived = asyncio.Event()
        self.logs: list[str] = []
        self.tasks: list[asyncio.Task] = []
        self.excluded: dict[str, str] = {}  # uri → the exclusion rule the service is told (exclusion.py)
        self.generating = 0
        ready = asyncio.Event()
        ready.set()

        @contextlib.contextmanager
        def generating():
            self.generating += 1
            try:
                yield
            finally:
                self.generating -= 1

        def spawn(coro):
            task = asyncio.get_running_loop().create_task(coro)
            self.tasks.append(task)
            return task

        self.service = CompletionService(CompletionPorts(
            settings=lambda: self.settings, engine=lambda: self.engine, model_ready=ready.wait,
            model_status=lambda: ("ready", "scripted"), publish_stats=self._publish, log=self.logs.append,
            generating=generating, spawn=spawn,
            is_current=lambda uri, version: uri in self.store and self.store.get(uri).version == version,
            excluded=lambda uri, language: self.excluded.get(uri)))

    def _publish(self, stats: SuggestionStats) -> None:
        self.stats.append(stats)
        self._stats_arrived.set()

    async def stats_of(self, kind: str) -> list[SuggestionStats]:
        """The stats of `kind`, once there is one (some are published from the engine's callback)."""
        async def arrived() -> list[SuggestionStats]:
            while not any(s.kind == kind for s in self.stats):
                self._stats_arrived.clear()
                await self._stats_arrived.wait()
            return [s for s in self.stats if s.kind == kind]
        return await asyncio.wait_for(arrived(), WAIT_S)

    def open(self, text: str):
        return self.store.open(URI, "python", 1, text)

    def type(self, version: int, text: str):
        """Append `text` at the end of the document, as the user would type it."""
        doc = self.store.get(URI)
        index = doc.index
        end = index.codepoint_to_position(len(doc.text), PositionEncoding.UTF16)
        return self.store.apply_changes(URI, version, [TextChange.replace((end.line, end.character),
                                                                          (end.line, end.character), text)])

    def suggest_at_end(self, doc) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self.service.suggest(doc, len(doc.text), len(doc.text)))

    async def suggestion_at_end(self, doc):
        return await bounded(self.service.suggest(doc, len(doc.text), len(doc.text)))

    def requests(self) -> list[SuggestionStats]:
        return [s for s in self.stats if s.kind == "request"]


async def test_the_newest_request_for_a_document_wins():
    h = Harness()
    doc = h.open("total = ")
    older = h.suggest_at_end(doc)
    first = await h.engine.job(0)
    newer = h.suggest_at_end(doc)
    second = await h.engine.job(1)
    assert first.job.cancel.is_set() and not second.job.cancel.is_set()
    second.answer("price * count")
    old_answer, new_answer = await bounded(older), await bounded(newer)
    assert old_answer.text == "" and old_answer.reason.startswith("superseded"), old_answer
    assert (new_answer.text, new_answer.reason) == ("price * count", "ok")
    assert [(s.reason, s.finish) for s in h.requests()] == [("superseded by a newer request", "cancelled"),
                                                             ("ok", "end")]
    assert h.service.inflight == {}


async def test_typing_through_a_suggestion_is_answered_without_the_engine():
    h = Harness()
    doc = h.open("total = ")
    h.engine.auto = ["price * count"]
    assert (await h.suggestion_at_end(doc)).text == "price * count"
    h.engine.auto = ["WRONG: the model was asked again"]
    doc = h.type(2, "pri")
    answer = await h.suggestion_at_end(doc)
    assert (answer.text, answer.reason) == ("ce * count", "ok")
    assert len(h.engine.jobs) == 1
    assert (h.requests()[-1].source, h.requests()[-1].version) == ("typed-through cache", 2)


async def test_a_request_cancels_a_pending_warm_up():
    h = Harness(warmAfterMs=60000)
    h.open("total = ")
    doc = h.type(2, "1")
    h.service.schedule_warm_up(doc, len(doc.text))
    warm_up = h.service.warming[URI]
    h.engine.auto = ["+ 2"]
    answer = await h.suggestion_at_end(doc)
    assert answer.text == "+ 2"
    await asyncio.wait([warm_up], timeout=WAIT_S)
    assert warm_up.cancelled()
    assert len(h.engine.jobs) == 1 and URI not in h.service.warming


async def test_a_request_cancels_a_generating_warm_up():
    h = Harness(warmAfterMs=1)
    h.open("total = ")
    doc = h.type(2, "1")
    h.service.schedule_warm_up(doc, len(doc.text))
    warm_up = h.service.warming[URI]
    warm_job = await h.engine.job(0)
    request = h.suggest_at_end(doc)
    (await h.engine.job(1)).answer("+ 2")
    assert (await bounded(request)).text == "+ 2"
    assert warm_job.job.cancel.is_set()
    await asyncio.wait([warm_up], timeout=WAIT_S)
    assert warm_up.cancelled()
    warm = await h.stats_of("warm")
    assert [(s.reason, s.finish) for s in warm] == [("superseded by a newer request", "cancelled")], warm


async def test_speculation_after_an_answer_answers_the_accepted_continuation():
    h = Harness(speculativeSuggestions=True)
    doc = h.open("total = ")
    h.engine.auto = ["price * count"]
    assert (await h.suggestion_at_end(doc)).text == "price * count"
    speculation = await h.engine.job(1)
    assert speculation.prompt == "total = price * count"  # as if the suggestion was accepted
    speculation.answer(" + tax")
    await bounded(asyncio.gather(*h.tasks))
    assert [(s.kind, s.reason) for s in h.stats if s.kind == "speculative"] == [("speculative", "ok")]
    doc = h.type(2, "price * count")  # the user accepts it
    answer = await h.suggestion_at_end(doc)
    assert (answer.text, answer.reason) == (" + tax", "ok")
    assert len(h.engine.jobs) == 2
    assert h.requests()[-1].source == "recent-context cache"


async def test_a_document_changed_during_generation_gets_no_text():
    h = Harness()
    doc = h.open("total = ")
    request = h.suggest_at_end(doc)
    job = await h.engine.job(0)
    job.answer("price * count")
    h.service.edited(URI, 0.0)  # the edit lands before the answer is taken up (too late to cancel it)
    h.type(2, "0")
    answer = await bounded(request)
    assert answer.text == "" and answer.reason == "document changed during generation (version 1)", answer
    assert h.requests()[-1].reason == answer.reason


def test_the_service_knows_nothing_of_lsp():
    """completion.py is the core behind the LSP handlers: importing it loads no pygls, lsprotocol or server."""
    loaded = lsp_modules_loaded_by("codegen_lsp.completion")
    assert loaded == ([], False), loaded
