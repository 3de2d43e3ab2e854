"""The completion service: one suggestion for a cursor (or a selection to replace), and the state behind it.

`CompletionService` owns what decides when and whether the model runs for completions: the in-flight
cancel flag of each document's newest request ("newest request for a document wins"), the suggestion
cache (typed-through and recent contexts), the typing rhythm (adaptive debounce), the warm-ups after an
edit settles and the speculative next suggestion. Its path: cache → newest wins → debounce → the
one-line-or-block decision → prompt → engine → version check → post-processing. The prompt's text is
clipped to what the context window can use before it goes to the engine (context/prompt.clip_segments),
and every engine call has a deadline (`requestTimeoutMs`): past it the request answers empty, with the
reason in its stats. A document the exclusion rules keep from every model (`CompletionPorts.excluded`,
exclusion.py) is checked at each entry point (`_refused`: seen, focused, schedule_warm_up, warm_up,
suggest, speculate_next, and the ring chunks other_files may choose) before any prompt is built: it gets
no suggestion, and nothing of it is kept (ring, caches) or sent; one that becomes excluded is purged.

It takes plain values (a `Document`, code-point offsets, `Settings`, an `Engine`) and tells the outside
world through `CompletionPorts`: it imports nothing of pygls, lsprotocol or the server, so tests drive it
in-process with a scripted engine (tests/unit/test_completion_service.py). The features (inline,
completion, "Complete here", sync, lifecycle) are thin adapters around the one instance the server holds
(`CodegenLanguageServer.completions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, ContextManager, Coroutine

from .context.prompt import OtherFiles, PromptFormatError, build_segments, clip_segments
from .context.ring import (CHARS_PER_TOKEN, CHUNK_LINES, MAX_CHUNK_CHARS, SELECTION_BLOCK_LINES, Chunk, ChunkRing,
                           cursor_window, display_path, region_start, usable)
from .context.suffix_fit import SUFFIX_FIT_CANDIDATES, suffix_fit_text
from .context.suggestion_cache import SuggestionCache
from .documents.store import Document
from .engine.jobs import CancelFlag, Engine, GenerationJob, GenerationResult
from .engine.process import EngineCrashed
from .events import Kind, SuggestionStats, excluded
from .gguf.meta import PromptFormat
from .postprocess.pipeline import CompletionContext, postprocess, suggestion_mode
from .scheduling import TypingRhythm
from .settings import Settings

log = logging.getLogger(__name__)

SUPERSEDED = "superseded by a newer request"
WARMED = "warmed"  # a warm-up's reason: the prompt at the cursor is in the model's cache
# A focus or an open waits this long before its warm-up is sent: flipping through tabs, or a project restore
# that opens 50 files, warms only the last one.
FOCUS_SETTLE_S = 0.1
# Without a cursor (a didOpen only), the warm-up evaluates the file's start up to about this many characters
# per token of the window: what the prompt of any cursor in that stretch starts with.
TOP_CHARS_PER_TOKEN = 3
# A warm-up a request pre-empted (or that ran past requestTimeoutMs) is sent again after this long, at most
# WARM_RETRIES times; what it had evaluated stays in the cache, so it goes on where it stopped.
WARM_RETRY_S = 1.0
WARM_RETRIES = 2
# The engine gives up on a job at its deadline (GenerationJob.timeout_s) and answers within 0.5 s; we wait
# this much longer ourselves, so an engine that never answers cannot hold a request.
DEADLINE_GRACE_S = 1.0


def no_answer(timeout_s: float) -> str:
    """The one wording for a model call past its deadline: ours, the engine's, the stats' reason."""
    return f"the model did not answer within {timeout_s * 1000:.0f} ms"


@dataclass(frozen=True)
class Suggestion:
    text: str
    reason: str  # "ok", or why there is no text
    version: int
    result: GenerationResult | None = None
    alternatives: tuple[str, ...] = ()  # more candidates, distinct from `text` and each other, best first


@dataclass(frozen=True)
class CompletionPorts:
    """What the service reads from and tells the outside world; plain callables, no LSP types.

    settings / engine: the current ones (both change while serving). model_ready: waits until no model
    load is under way; model_status: (status, detail) of the model then ("ready" or why not).
    publish_stats: one `codegenLsp/stats` per suggestion computed. log: a line for people (the client's
    log). generating: a context manager around each model call someone asked for (status "generating").
    spawn: fire-and-forget work whose failures get logged. is_current(uri, version): whether that
    version of the document is still the open one. excluded(uri, languageId): the rule that keeps that
    document from any model (exclusion.py), or None."""

    settings: Callable[[], Settings]
    engine: Callable[[], Engine]
    model_ready: Callable[[], Awaitable[Any]]
    model_status: Callable[[], tuple[str, str]]
    publish_stats: Callable[[SuggestionStats], None]
    log: Callable[[str], None]
    generating: Callable[[], ContextManager[Any]]
    spawn: Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
    is_current: Callable[[str, int], bool]
    excluded: Callable[[str, str], str | None]


def _stats(uri: str, version: int, kind: Kind, reason: str, result: GenerationResult | None = None,
           job: GenerationJob | None = None, source: str | None = None) -> SuggestionStats:
    """The `codegenLsp/stats` payload of one suggestion: from the cache (`source`), the model (`result`),
    or nothing that could run (neither)."""
    if result is None:
        return SuggestionStats(uri, version, kind, source or "none", reason)  # type: ignore[arg-type]
    return SuggestionStats(uri, version, kind, "model", reason, result.finish_reason, result.prompt_tokens,
                           result.evaluated_prompt_tokens, result.generated_tokens,
                           job.max_tokens if job is not None else 0, round(result.prompt_seconds * 1000, 1),
                           round(result.generate_seconds * 1000, 1), result.drafted_tokens, result.accepted_tokens,
                           result.window)


def _reason(result: GenerationResult, processed) -> str:
    """Why there is no suggestion ("ok" when there is one)."""
    if processed.text:
        return "ok"
    if result.finish_reason == "loop" and not result.text.strip():
        return "completion only repeats itself (decoding stopped where it began to loop)"
    return result.error or processed.reason


def completion_context(settings: Settings, doc: Document, prefix: str, suffix: str,
                       tree=None) -> CompletionContext:
    """`tree` parses prefix+suffix (only when nothing is replaced). Documents too big to parse are
    post-processed as plain text: parsing megabytes on the event loop would stall every request."""
    too_big = len(prefix) + len(suffix) > settings.max_document_bytes
    return CompletionContext(language=None if too_big else doc.language, prefix=prefix, suffix=suffix, tree=tree)


def stop_strings(extra: list[str], mode: str) -> tuple[str, ...]:
    """A single-line suggestion is cut at its first newline anyway: stop decoding there."""
    return tuple(extra) + (("\n",) if mode == "single-line" else ())


def _job(settings: Settings, mode: str) -> GenerationJob:
    return GenerationJob(segments=[], max_tokens=settings.max_tokens, temperature=settings.temperature,
                         top_p=settings.top_p, stop_strings=stop_strings(settings.stop, mode),
                         prefix_share=settings.prefix_share, heal=settings.token_healing,
                         stop_on_loop=settings.repetition_filter, prompt_lookup=settings.prompt_lookup,
                         prompt_budget_s=settings.first_suggestion_ms / 1000)


class CompletionService:
    def __init__(self, ports: CompletionPorts) -> None:
        self.ports = ports
        self.inflight: dict[str, CancelFlag] = {}  # uri → cancel flag of its newest suggestion job
        self.cache = SuggestionCache()
        self.rhythm = TypingRhythm()
        self.warming: dict[str, asyncio.Task] = {}  # uri → pending warm-up after its last edit
        self.ring = ChunkRing()  # chunks of the files worked in, for the other files' prompts
        self._chosen: dict[str, tuple[tuple, list[Chunk]]] = {}  # uri → (why chosen, the ring chunks chosen)
        # The one pending warm-up of a prompt (open, focus, the full window after a short answer): a new one
        # replaces it, so warm-ups never queue behind each other; the engine pre-empts its job for any request.
        self._warm_up: tuple[str, asyncio.Task] | None = None

    # -- what the document and model lifecycle tell the service ----------------------------------

    def edited(self, uri: str, now: float) -> None:
        """An edit arrived (before it is applied): a suggestion for the old text is worthless now."""
        if (flag := self.inflight.get(uri)) is not None:
            flag.set()
        self.rhythm.edited(uri, now)

    def seen(self, doc: Document, line: int) -> None:
        """A document was opened, edited at `line`, or shown there: its region goes into the ring. Per
        keystroke, so the chunk is sliced through the document's line table, not by splitting the text."""
        if self._refused(doc.uri, doc.language_id) or len(doc.text) > self.ports.settings().max_document_bytes:
            return
        start = region_start(line)
        body = doc.index.lines_text(start, start + CHUNK_LINES - 1)[:MAX_CHUNK_CHARS]
        if usable(body, MAX_CHUNK_CHARS) and self.ring.add_region(doc.uri, display_path(doc.uri), start, body,
                                                                  doc.language_id):
            self.cache.forget_others(doc.uri)  # their answers were computed with the old chunks

    def closed(self, uri: str) -> None:
        if (flag := self.inflight.pop(uri, None)) is not None:
            flag.set()
        self.cache.forget(uri)
        self.rhythm.forget(uri)
        self._chosen.pop(uri, None)  # its chunks stay in the ring: other files may still want them
        if (pending := self.warming.pop(uri, None)) is not None:
            pending.cancel()
        if self._warm_up is not None and self._warm_up[0] == uri:
            self._warm_up[1].cancel()
            self._warm_up = None

    def _refused(self, uri: str, language: str) -> str | None:
        """The one check before anything of a document is kept or sent to a model (the ring, the caches,
        warm-ups, speculation, a request): the rule that excludes it (`excluded`), or None. What is held
        of an excluded document goes at once (`purge`)."""
        rule = self.ports.excluded(uri, language)
        if rule is not None:
            self.purge(uri)
        return rule

    def purge(self, uri: str) -> None:
        """`uri` must not reach a model (any more): its job in flight and pending warm-ups stop, its ring
        chunks and cached answers go, and so does every cached answer computed with its chunks in the prompt."""
        if (flag := self.inflight.pop(uri, None)) is not None:
            flag.set()
        if (pending := self.warming.pop(uri, None)) is not None:
            pending.cancel()
        if self._warm_up is not None and self._warm_up[0] == uri:
            self._warm_up[1].cancel()
            self._warm_up = None
        if self.ring.forget(uri):
            self.cache.forget()  # other documents' answers were computed with its chunks
            self._chosen.clear()
        else:
            self.cache.forget(uri)
            self._chosen.pop(uri, None)

    def recheck(self, documents: dict[str, str]) -> None:
        """The exclusion rules changed: check again every document something is held of (`documents`, the open
        ones: uri → languageId; and those with chunks in the ring), purging the ones excluded now."""
        held = dict(documents)
        for chunk in self.ring.chunks:
            held.setdefault(chunk.uri, chunk.language)
        for uri, language in held.items():
            self._refused(uri, language)

    def forget_cache(self) -> None:
        """Settings or the model changed: cached answers no longer hold."""
        self.cache.forget()

    def cancel_all(self) -> None:
        """Shutdown: every job in flight stops at its next token."""
        for flag in self.inflight.values():
            flag.set()

    def schedule_warm_up(self, doc: Document, offset: int | None) -> None:
        """After an edit (`doc` is the edited document): drop the pending warm-up, and with `offset` (the
        edit's end, where the cursor most likely is) precompute the suggestion there once typing settles."""
        if (pending := self.warming.pop(doc.uri, None)) is not None:
            pending.cancel()
        if not self.ports.settings().warm_after_ms or offset is None or self._refused(doc.uri, doc.language_id):
            return
        task = self.ports.spawn(self.warm_after_edit(doc, offset))
        self.warming[doc.uri] = task
        task.add_done_callback(lambda t: self.warming.pop(doc.uri, None) if self.warming.get(doc.uri) is t else None)

    def focused(self, doc: Document, offset: int | None) -> None:
        """`doc` was opened or became the one the person works in, the cursor at `offset` (None: unknown):
        once it settles (FOCUS_SETTLE_S), compute the suggestion there in the background and keep it for the
        request to come (`speculate_next`, kind "warm": from the short window when the full one would take
        longer, the full window built after it). Without a cursor, evaluate the file's start, decoding
        nothing: what the prompt of any cursor near the top starts with."""
        if self._refused(doc.uri, doc.language_id):
            return
        if offset is not None:
            offset = min(offset, len(doc.text))
            self._replace_warm_up(doc.uri, self._suggest_ahead(doc, doc.text[:offset], doc.text[offset:]))
            return
        window = self.ports.settings().context_tokens * TOP_CHARS_PER_TOKEN
        end = doc.text.find("\n", min(len(doc.text), window))
        offset = len(doc.text) if end < 0 else end + 1
        self._replace_warm_up(doc.uri, self.warm_up(doc, doc.text[:offset], doc.text[offset:], FOCUS_SETTLE_S))

    async def _suggest_ahead(self, doc: Document, prefix: str, suffix: str) -> None:
        """A pre-empted one is sent again after WARM_RETRY_S (WARM_RETRIES times at most), like a warm-up."""
        for attempt in range(WARM_RETRIES + 1):
            await asyncio.sleep(FOCUS_SETTLE_S if attempt == 0 else WARM_RETRY_S)
            if not self.ports.is_current(doc.uri, doc.version) or \
                    await self.speculate_next(doc, prefix, suffix, kind="warm") != SUPERSEDED:
                return

    def _replace_warm_up(self, uri: str, work: Coroutine[Any, Any, None]) -> None:
        if self._warm_up is not None and self._warm_up[1] is not asyncio.current_task():
            self._warm_up[1].cancel()
        task = self.ports.spawn(work)
        self._warm_up = (uri, task)
        task.add_done_callback(lambda t: setattr(self, "_warm_up", None) if self._warm_up and self._warm_up[1] is t
                               else None)

    async def warm_up(self, doc: Document, prefix: str, suffix: str, delay: float = 0.0,
                      then_suggest: bool = False) -> None:
        """Evaluate the prompt at the end of `prefix` into the model's cache, decoding nothing: a background
        job (any request pre-empts it), with the short window first when the full one would take longer
        than firstSuggestionMs (engine/background.py). One `codegenLsp/stats` of kind "warm" says how far it got.
        `then_suggest`: a suggestion there came from the short window; once the full one is built, compute
        the full window's suggestion and keep it instead (the document unchanged)."""
        for attempt in range(WARM_RETRIES + 1):
            if wait := (delay if attempt == 0 else WARM_RETRY_S):
                await asyncio.sleep(wait)
            if not self.ports.is_current(doc.uri, doc.version) or self._refused(doc.uri, doc.language_id):
                return
            # max_tokens as a request's: the prompt is fitted to the same room, so it is the request's prompt
            job = replace(_job(self.ports.settings(), "block"), background=True, warm_only=True)
            result = await self._generate(job, prefix, suffix, doc.uri, doc.version, "warm",
                                          self.other_files(doc, prefix, suffix))
            if isinstance(result, Suggestion):
                self.ports.publish_stats(_stats(doc.uri, doc.version, "warm", result.reason))
                return
            reason = WARMED if result.finish_reason == "warm" else (
                SUPERSEDED if result.cancelled else result.error or result.finish_reason)
            self.ports.publish_stats(_stats(doc.uri, doc.version, "warm", reason, result, job))
            self.ports.log(f"warm-up for {doc.uri}: {result.evaluated_prompt_tokens} of {result.prompt_tokens} "
                           f"prompt tokens evaluated in {result.prompt_seconds * 1000:.0f} ms, {result.window} "
                           f"window ({reason})")
            if reason == WARMED and result.window == "full" and then_suggest and \
                    self.ports.is_current(doc.uri, doc.version):
                await self.speculate_next(doc, prefix, suffix, kind="warm", refresh=True)
            if reason == WARMED or not (result.cancelled or result.finish_reason == "error"):
                return  # done; else pre-empted or past its deadline: what it evaluated stays, go on later

    def _extend_after(self, doc: Document, prefix: str, suffix: str, result: GenerationResult) -> None:
        """A short window answered: build the full one in the background, for the keystrokes to come."""
        if result.window == "short":
            self._replace_warm_up(doc.uri, self.warm_up(doc, prefix, suffix, then_suggest=True))

    # -- suggestions --------------------------------------------------------------------------------

    async def suggest(self, doc: Document, start: int, end: int, candidates: int = 1) -> Suggestion:
        """`start`/`end` are code-point offsets; a non-empty range is the selection the text replaces.
        `candidates` > 1 (someone asked explicitly): that many decoded together, the distinct ones kept."""
        ports, settings = self.ports, self.ports.settings()
        if (rule := self._refused(doc.uri, doc.language_id)) is not None:
            ports.publish_stats(_stats(doc.uri, doc.version, "request", excluded(rule)))
            return Suggestion("", excluded(rule), doc.version)
        text = doc.text
        prefix, suffix = text[:start], text[end:]
        if start == end and candidates == 1 and (hit := self.cache.lookup(doc.uri, prefix, suffix)) is not None:
            previous = self.inflight.get(doc.uri)
            if previous is not None:
                previous.set()  # this answer supersedes a request still generating
            self.cache.remember(doc.uri, prefix, suffix, hit[0])  # shown now: typing through it works too
            ports.publish_stats(_stats(doc.uri, doc.version, "request", "ok",
                                       source=f"{hit[1].replace(' ', '-')} cache"))
            ports.log(f"suggestion for {doc.uri} v{doc.version}: from the {hit[1]} cache, no model call")
            return Suggestion(hit[0], "ok", doc.version)

        previous = self.inflight.get(doc.uri)
        if previous is not None:
            previous.set()  # newest request for a document wins
        if (warming := self.warming.pop(doc.uri, None)) is not None:
            warming.cancel()  # the request itself warms the cache
        context = completion_context(settings, doc, prefix, suffix, doc.tree if start == end else None)
        mode = suggestion_mode(context)
        job = _job(settings, mode)
        job.candidates = candidates
        self.inflight[doc.uri] = job.cancel
        try:
            floor = settings.debounce_ms / 1000
            delay = (self.rhythm.delay(doc.uri, floor, settings.debounce_max_ms / 1000)
                     if settings.adaptive_debounce else floor)
            if delay:
                await asyncio.sleep(delay)
            asked = time.monotonic()
            result = await self._generate(job, prefix, suffix, doc.uri, doc.version,
                                          other=self.other_files(doc, prefix, suffix))
            if isinstance(result, Suggestion):
                ports.publish_stats(_stats(doc.uri, doc.version, "request", result.reason))
                return result
        finally:
            if self.inflight.get(doc.uri) is job.cancel:
                del self.inflight[doc.uri]

        if result.cancelled:
            ports.publish_stats(_stats(doc.uri, doc.version, "request", SUPERSEDED, result, job))
            return Suggestion("", SUPERSEDED, doc.version, result)
        # An error (a deadline, a remote failure) has no engine timings: the wait is what the user saw.
        self.rhythm.answered(time.monotonic() - asked if result.finish_reason == "error"
                             else result.prompt_seconds + result.generate_seconds)
        if not ports.is_current(doc.uri, doc.version):
            reason = f"document changed during generation (version {doc.version})"
            ports.publish_stats(_stats(doc.uri, doc.version, "request", reason, result, job))
            return Suggestion("", reason, doc.version, result)
        processed = postprocess(context, result.text, mode, settings.repetition_filter)
        # Each candidate goes through the same post-processing (cut, parse check); then duplicates go.
        kept = list(dict.fromkeys(t for t in [processed.text, *(
            postprocess(context, alt, mode, settings.repetition_filter).text for alt in result.alternatives)] if t))
        reason = "ok" if kept else _reason(result, processed)
        ports.publish_stats(_stats(doc.uri, doc.version, "request", reason, result, job))
        ports.log(f"suggestion for {doc.uri} v{doc.version}: {result.prompt_tokens} prompt tokens "
                  f"({result.evaluated_prompt_tokens} evaluated), {result.generated_tokens} generated, "
                  f"{result.prompt_seconds * 1000:.0f}+{result.generate_seconds * 1000:.0f} ms, {reason}")
        best = kept[0] if kept else ""
        self._extend_after(doc, prefix, suffix, result)
        if start == end:
            self.cache.remember(doc.uri, prefix, suffix, best)
            if best and settings.speculative_suggestions:
                ports.spawn(self.speculate_next(doc, prefix + best, suffix))
        # suffixFit decodes more candidates than were asked for: the person cycles through `candidates` only
        return Suggestion(best, reason, doc.version, result, tuple(kept[1:candidates]))

    def other_files(self, doc: Document, prefix: str, suffix: str) -> OtherFiles | None:
        """The ring chunks for a prompt at the end of `prefix`: chosen again only when the other files'
        chunks change or the cursor enters another block of lines, so the prompt's start stays put."""
        budget = self.ports.settings().cross_file_tokens
        if budget <= 0:
            return None
        # A rule that changed under another document's chunks (its .gitignore) purges them before they are chosen.
        for uri, language in {c.uri: c.language for c in self.ring.chunks if c.uri != doc.uri}.items():
            self._refused(uri, language)
        key = (self.ring.others(doc.uri), prefix.count("\n") // SELECTION_BLOCK_LINES, budget)
        chosen = self._chosen.get(doc.uri)
        if chosen is None or chosen[0] != key:
            window = cursor_window(prefix + suffix, len(prefix))
            chosen = self._chosen[doc.uri] = (key, self.ring.select(doc.uri, window, budget * CHARS_PER_TOKEN))
        if not chosen[1]:
            return None
        return OtherFiles(tuple((c.path, c.text) for c in chosen[1]), display_path(doc.uri), doc.language, budget)

    async def _generate(self, job: GenerationJob, prefix: str, suffix: str, uri: str, version: int,
                        kind: Kind = "request", other: OtherFiles | None = None) -> GenerationResult | Suggestion:
        """Prompt the engine with the loaded model's format; a Suggestion when there is nothing to run.
        Only generations someone asked for (`kind` "request") show as "generating" in the status.

        Every call has the deadline `requestTimeoutMs`: the engine cancels the job then and answers (an
        "error" result saying so); should it not, we stop waiting DEADLINE_GRACE_S later, cancel the job
        and answer the same ourselves."""
        ports = self.ports
        await ports.model_ready()
        engine = ports.engine()
        info = engine.info
        status, detail = ports.model_status()
        if status != "ready" or info is None:
            return Suggestion("", f"no model available ({detail or status})", version)
        if job.cancel.is_set():
            return Suggestion("", SUPERSEDED, version)
        settings = ports.settings()
        fmt = info.prompt_format if settings.prompt_format == "auto" else PromptFormat(settings.prompt_format)
        try:
            segments = build_segments(fmt, prefix, suffix, info.token_ids, other)
        except PromptFormatError as exc:
            return Suggestion("", str(exc), version)
        # Only the text a prompt of this window can use travels to the engine (pickled on this loop).
        trained = getattr(info, "context_length", 0) or settings.context_tokens
        job.segments = clip_segments(segments, max(64, min(settings.context_tokens, trained)))
        if fmt is PromptFormat.LEFT_TO_RIGHT and settings.suffix_fit:
            job.suffix_fit = suffix_fit_text(prefix, suffix)  # the model cannot see the suffix: score against it
            if job.suffix_fit:
                job.candidates = max(job.candidates, SUFFIX_FIT_CANDIDATES)
        timeout_s = settings.request_timeout_ms / 1000
        job.timeout_s = timeout_s  # the engine cancels the job then (GenerationJob.timeout_s)
        started = time.monotonic()
        cancelled_at: list[float] = []  # when the job's flag was set (a newer request, an edit, $/cancelRequest)
        job.cancel.add_hook(lambda: cancelled_at.append(time.monotonic()))
        future = engine.submit(job)
        try:
            with ports.generating() if kind == "request" else contextlib.nullcontext():
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races the answer
                async with asyncio.timeout(timeout_s + DEADLINE_GRACE_S):
                    result = await asyncio.wrap_future(future)
        except TimeoutError:  # not even the engine's own deadline answered: stop waiting for it
            job.cancel.set()
            ports.log(f"{kind} suggestion for {uri} v{version}: no answer from the engine "
                      f"{DEADLINE_GRACE_S:.0f} s past its deadline; job cancelled")
            return GenerationResult("", "error", error=no_answer(timeout_s))
        except EngineCrashed as exc:  # the supervisor reports the crash itself, once
            return Suggestion("", f"no model available ({exc.reason})", version)
        except asyncio.CancelledError:
            job.cancel.set()  # $/cancelRequest: stop decoding at the next token
            loop = asyncio.get_running_loop()
            # $/cancelRequest for a request; a newer request or an edit for a warm-up (its task is cancelled)
            why = "request cancelled" if kind == "request" else SUPERSEDED
            future.add_done_callback(lambda f: self._report_cancelled(
                loop, f, lambda result: _stats(uri, version, kind, why, result, job)))
            raise
        if result.cancelled and time.monotonic() - started >= timeout_s and \
                not (cancelled_at and cancelled_at[0] - started < timeout_s):
            # Nobody cancelled it before its deadline: the engine did, at the deadline.
            return replace(result, text="", finish_reason="error", error=no_answer(timeout_s), alternatives=())
        return result

    def _report_cancelled(self, loop: asyncio.AbstractEventLoop, future, stats) -> None:
        """The engine's result arrives (in the engine's thread) after the awaiting task was cancelled."""
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        loop.call_soon_threadsafe(self.ports.publish_stats, stats(result))
        loop.call_soon_threadsafe(self.ports.log, f"generation cancelled after {result.generated_tokens} tokens "
                                                  f"({result.finish_reason})")

    async def speculate_next(self, doc: Document, prefix: str, suffix: str, kind: Kind = "speculative",
                             refresh: bool = False) -> str | None:
        """Compute a suggestion nobody asked for yet while the engine is idle and keep it in the
        recent-context cache: the one after a suggestion just given (as if accepted, like llama.vim), or
        the one at an edit that settled without a request (which also warms the KV cache). Any request
        for the document cancels this (newest wins), so it never delays one. Returns the stats' reason
        (None when nothing ran: the document has a job in flight, or the answer is cached and not `refresh`)."""
        if self._refused(doc.uri, doc.language_id) or doc.uri in self.inflight \
                or (not refresh and self.cache.lookup(doc.uri, prefix, suffix) is not None):
            return None
        ports, settings = self.ports, self.ports.settings()
        context = completion_context(settings, doc, prefix, suffix)
        mode = suggestion_mode(context)
        job = replace(_job(settings, mode), background=True)  # any request pre-empts it at the engine
        self.inflight[doc.uri] = job.cancel
        try:
            result = await self._generate(job, prefix, suffix, doc.uri, doc.version, kind,
                                          self.other_files(doc, prefix, suffix))
        finally:
            if self.inflight.get(doc.uri) is job.cancel:
                del self.inflight[doc.uri]
        if isinstance(result, Suggestion):
            ports.publish_stats(_stats(doc.uri, doc.version, kind, result.reason))
            return result.reason
        if result.cancelled:
            ports.publish_stats(_stats(doc.uri, doc.version, kind, SUPERSEDED, result, job))
            return SUPERSEDED
        processed = postprocess(context, result.text, mode, settings.repetition_filter)
        self.cache.remember_context(doc.uri, prefix, suffix, processed.text)
        self._extend_after(doc, prefix, suffix, result)
        reason = _reason(result, processed)
        ports.publish_stats(_stats(doc.uri, doc.version, kind, reason, result, job))
        why = "speculative next suggestion" if kind == "speculative" else "warmed suggestion"
        ports.log(f"{why} for {doc.uri} ready ({result.evaluated_prompt_tokens} evaluated, "
                  f"{result.generated_tokens} decoded, {processed.reason})")
        return reason

    async def warm_after_edit(self, doc: Document, offset: int) -> None:
        """When an edit settles and no request came for it, precompute the suggestion at the edit's end."""
        await asyncio.sleep(self.ports.settings().warm_after_ms / 1000)
        if not self.ports.is_current(doc.uri, doc.version) or offset > len(doc.text):
            return
        await self.speculate_next(doc, doc.text[:offset], doc.text[offset:], kind="warm")
