"""Multi-turn synthesis, as in the CodeGen paper: turn i is generated from everything before it.

The prompt for a turn is the document up to the end of its comment's line, with the code of the
earlier turns (existing or just generated) in place. The
completion is cut by `truncate_turn` and inserted under the comment. A turn that ends empty, runs
out of time or breaks the parse inserts nothing and is reported; cancelling keeps finished turns.

A turn's engine call has the turn timeout as its deadline (the engine cancels the job then); should the
engine not answer, the turn stops waiting CANCEL_WAIT_S after cancelling it and is reported as timed out,
and the next turn goes on, so no engine can hold a synthesis longer than (timeout + CANCEL_WAIT_S) per
turn. The prompt's text is clipped to what the context window can use before it is sent.

Everything here is in code points of the document's text (the plan's turns come in code points);
no LSP types and no server: the caller passes the engine, an `is_current()` check (False once the
document changed) and a `report(text)` sink for the per-turn log lines.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

from ..completion import no_answer
from ..context.prompt import Text, clip_segments
from ..documents.store import Document
from ..engine.jobs import CancelFlag, Engine, GenerationJob, GenerationResult
from ..engine.process import EngineCrashed
from ..postprocess.errors import introduces_parse_error
from .truncate import stop_strings, truncate_turn
from .turns import SynthesisPlan, Turn

TurnStatus = str  # inserted | kept | empty | parse-error | timeout | cancelled
CANCEL_WAIT_S = 1.0  # after a turn's timeout: how long the cancelled job may take to answer


@dataclass(frozen=True)
class SynthesisOptions:
    max_tokens: int = 128  # per turn
    temperature: float = 0.0
    top_p: float = 0.95
    turn_timeout_s: float = 60.0
    regenerate: bool = False  # replace code that already stands under a comment
    heal: bool = True  # token healing at the end of each turn's prompt (engine/healing.py)
    stop_on_loop: bool = True  # stop decoding a turn once it repeats itself (postprocess/repetition.py)
    prompt_lookup: bool = False  # draft tokens from the context while decoding (engine/speculation.py)
    context_tokens: int | None = None  # the window prompts are clipped for (None: the model's training length)


@dataclass(frozen=True)
class TurnReport:
    title: str
    status: TurnStatus
    detail: str = ""
    generated_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Insertion:
    """Replace [start, end) of the original document (code points) with `text`."""

    start: int
    end: int
    text: str


@dataclass
class SynthesisResult:
    version: int
    insertions: list[Insertion] = field(default_factory=list)
    turns: list[TurnReport] = field(default_factory=list)
    stopped: str | None = None  # why it ended early: "cancelled" | "document changed"

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for turn in self.turns:
            counts[turn.status] = counts.get(turn.status, 0) + 1
        text = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no turns"
        return f"{text}; stopped: {self.stopped}" if self.stopped else text


ProgressCallback = Callable[[int, int, Turn], None]


class Synthesis:
    """One run over a plan. `result` holds the finished turns at every moment, so a caller whose
    task is cancelled mid-turn can still apply what is done."""

    def __init__(self, doc: Document, plan: SynthesisPlan, options: SynthesisOptions, cancel: CancelFlag | None,
                 engine: Engine, is_current: Callable[[], bool], report: Callable[[str], None]) -> None:
        self.doc, self.plan, self.options = doc, plan, options
        self.cancel = cancel or CancelFlag()
        self.engine, self.is_current, self.report = engine, is_current, report
        self.result = SynthesisResult(doc.version)
        self._working = doc.text  # the document with the insertions so far
        self._shift = 0  # how far insertions moved text after the last one

    def todo(self) -> list[Turn]:
        return [t for t in self.plan.turns if t.pending or self.options.regenerate]

    async def run(self, on_turn: ProgressCallback | None = None) -> SynthesisResult:
        todo = self.todo()
        for number, turn in enumerate(todo, 1):
            if self.cancel.is_set():
                self.result.stopped = "cancelled"
                break
            if not self.is_current():
                self.result.stopped = "document changed"
                break
            if on_turn is not None:
                on_turn(number, len(todo), turn)
            try:
                report = await self._turn(turn)
            except EngineCrashed as exc:  # finished turns are kept, as for a cancel
                self.result.stopped = f"the model engine stopped ({exc.reason})"
                break
            if report.status == "cancelled":
                self.result.stopped = "cancelled"
                break
            self.result.turns.append(report)
            self.report(f"synthesis turn {number}/{len(todo)} \u201c{turn.title}\u201d: {report.status}"
                        f"{' (' + report.detail + ')' if report.detail else ''}, "
                        f"{report.generated_tokens} tokens, {report.seconds * 1000:.0f} ms")
        return self.result

    async def _turn(self, turn: Turn) -> TurnReport:
        started = time.perf_counter()
        start = turn.code_start
        end = turn.code_end if (self.options.regenerate and not turn.pending) else start
        at = start + self._shift
        lead = "" if at == 0 or self._working[at - 1] == "\n" else "\n"  # a comment on the last line
        prompt = self._working[:at] + lead
        suffix = self._working[end + self._shift:]
        language = self.doc.language

        temperature, tokens, code, why = self.options.temperature, 0, "", ""
        for attempt in range(2):
            generated = await self._generate(prompt, turn.indent, temperature)
            if isinstance(generated, str):  # "cancelled" | "timeout"
                detail = no_answer(self.options.turn_timeout_s) if generated == "timeout" else ""
                return TurnReport(turn.title, generated, detail, tokens, time.perf_counter() - started)
            tokens += generated.generated_tokens
            cut = truncate_turn(generated.text, turn.indent, language, generated.finish_reason)
            code, why = cut.text, cut.reason
            if not code.strip():
                return TurnReport(turn.title, "empty", f"no code before the {why}", tokens,
                                  time.perf_counter() - started)
            inserted = lead + code + ("\n" if end == start else "")
            if not introduces_parse_error(language, self._working[:at], inserted, suffix):
                break
            if temperature == 0.0 or attempt == 1:  # a greedy retry would repeat itself
                return TurnReport(turn.title, "parse-error", "the code does not parse here", tokens,
                                  time.perf_counter() - started)
            temperature = 0.0  # retry once, greedily
        self.result.insertions.append(Insertion(start, end, inserted))
        self._working = self._working[:at] + inserted + suffix
        self._shift += len(inserted) - (end - start)
        return TurnReport(turn.title, "inserted", why, tokens, time.perf_counter() - started)

    def _window(self) -> int | None:
        """The most tokens a prompt can have: the setting, capped at what the model was trained for."""
        info = getattr(self.engine, "info", None)
        limits = [n for n in (self.options.context_tokens, getattr(info, "context_length", None)) if n]
        return max(64, min(limits)) if limits else None

    async def _generate(self, prompt: str, indent: str, temperature: float) -> GenerationResult | str:
        options, cancel = self.options, CancelFlag.linked(self.cancel)
        window = self._window()
        segments = [Text(prompt)]
        job = GenerationJob(segments=clip_segments(segments, window) if window else segments,
                            max_tokens=options.max_tokens, temperature=temperature,
                            top_p=options.top_p, stop_strings=stop_strings(indent, self.doc.language),
                            prefix_share=0.75, heal=options.heal, stop_on_loop=options.stop_on_loop,
                            prompt_lookup=options.prompt_lookup, cancel=cancel)
        job.timeout_s = options.turn_timeout_s  # the engine cancels the job then (GenerationJob.timeout_s)
        started = time.monotonic()
        answer = asyncio.wrap_future(self.engine.submit(job))
        try:
            async with asyncio.timeout(options.turn_timeout_s):
                result = await asyncio.shield(answer)
        except TimeoutError:
            cancel.set()
            try:  # the engine stops at its next token; a stuck one is not waited for
                async with asyncio.timeout(CANCEL_WAIT_S):
                    await answer
            except TimeoutError:
                self.report(f"synthesis: the engine did not answer {CANCEL_WAIT_S:.0f} s after a turn's timeout "
                            f"cancelled it; going on without it")
            return "timeout"
        except asyncio.CancelledError:
            cancel.set()  # the request was cancelled: stop decoding now, keep the finished turns
            answer.cancel()
            raise
        late = time.monotonic() - started >= options.turn_timeout_s
        if result.cancelled:
            # the run's cancel, or a reload's; one nobody asked for at the deadline is the engine's timeout
            return "timeout" if late and not self.cancel.is_set() else "cancelled"
        if result.finish_reason == "error" and late:
            return "timeout"  # the engine's own deadline answered before ours
        return result
