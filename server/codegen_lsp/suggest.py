"""One suggestion for a cursor (or a selection to replace): prompt → engine → post-processing.

Shared by inline completion, the completion fallback and "Complete here". Takes and returns plain
values (no LSP types), so features stay thin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from .context.prompt import PromptFormatError, build_segments
from .documents.store import Document
from .engine.jobs import GenerationJob, GenerationResult
from .engine.process import EngineCrashed
from .events import Kind, SuggestionStats
from .modelmeta import PromptFormat
from .postprocess.pipeline import CompletionContext, postprocess, suggestion_mode

if TYPE_CHECKING:
    from .server import CodegenLanguageServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    text: str
    reason: str  # "ok", or why there is no text
    version: int
    result: GenerationResult | None = None


def _stats(uri: str, version: int, kind: Kind, reason: str, result: GenerationResult | None = None,
           job: GenerationJob | None = None, source: str | None = None) -> SuggestionStats:
    """The `codegenLsp/stats` payload of one suggestion: from the cache (`source`), the model (`result`),
    or nothing that could run (neither)."""
    if result is None:
        return SuggestionStats(uri, version, kind, source or "none", reason)  # type: ignore[arg-type]
    return SuggestionStats(uri, version, kind, "model", reason, result.finish_reason, result.prompt_tokens,
                           result.evaluated_prompt_tokens, result.generated_tokens,
                           job.max_tokens if job is not None else 0, round(result.prompt_seconds * 1000, 1),
                           round(result.generate_seconds * 1000, 1))


def _report_cancelled(ls: "CodegenLanguageServer", loop: asyncio.AbstractEventLoop, future, stats) -> None:
    """$/cancelRequest: the engine's result arrives after the handler was cancelled."""
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    loop.call_soon_threadsafe(ls.publish_stats, stats(result))
    loop.call_soon_threadsafe(ls.log_to_client, f"generation cancelled after {result.generated_tokens} tokens "
                                                   f"({result.finish_reason})", types.MessageType.Log)


async def suggest(ls: "CodegenLanguageServer", doc: Document, start: int, end: int) -> Suggestion:
    """`start`/`end` are code-point offsets; a non-empty range is the selection the text replaces."""
    settings = ls.settings
    job_cancel_key = doc.uri
    text = doc.text
    prefix, suffix = text[:start], text[end:]
    if start == end and (hit := ls.suggestion_cache.lookup(doc.uri, prefix, suffix)) is not None:
        previous = ls.inflight.get(job_cancel_key)
        if previous is not None:
            previous.set()  # this answer supersedes a request still generating
        ls.suggestion_cache.remember(doc.uri, prefix, suffix, hit[0])  # shown now: typing through it works too
        ls.publish_stats(_stats(doc.uri, doc.version, "request", "ok", source=f"{hit[1].replace(' ', '-')} cache"))
        ls.log_to_client(f"suggestion for {doc.uri} v{doc.version}: from the {hit[1]} cache, no model call",
                         types.MessageType.Log)
        return Suggestion(hit[0], "ok", doc.version)

    previous = ls.inflight.get(job_cancel_key)
    if previous is not None:
        previous.set()  # newest request for a document wins
    if (warming := ls.warming.pop(doc.uri, None)) is not None:
        warming.cancel()  # the request itself warms the cache
    context = completion_context(ls, doc, prefix, suffix, doc.tree if start == end else None)
    mode = suggestion_mode(context)
    job = GenerationJob(segments=[], max_tokens=settings.max_tokens, temperature=settings.temperature,
                        top_p=settings.top_p, stop_strings=stop_strings(settings.stop, mode),
                        prefix_share=settings.prefix_share)
    ls.inflight[job_cancel_key] = job.cancel
    try:
        floor = settings.debounce_ms / 1000
        delay = ls.rhythm.delay(doc.uri, floor, settings.debounce_max_ms / 1000) if settings.adaptive_debounce else floor
        if delay:
            await asyncio.sleep(delay)
        result = await _generate(ls, job, prefix, suffix, doc.uri, doc.version)
        if isinstance(result, Suggestion):
            ls.publish_stats(_stats(doc.uri, doc.version, "request", result.reason))
            return result
    finally:
        if ls.inflight.get(job_cancel_key) is job.cancel:
            del ls.inflight[job_cancel_key]

    if result.cancelled:
        ls.publish_stats(_stats(doc.uri, doc.version, "request", "superseded by a newer request", result, job))
        return Suggestion("", "superseded by a newer request", doc.version, result)
    ls.rhythm.answered(result.prompt_seconds + result.generate_seconds)
    current = ls.store.get(doc.uri) if doc.uri in ls.store else None
    if current is None or current.version != doc.version:
        reason = f"document changed during generation (version {doc.version})"
        ls.publish_stats(_stats(doc.uri, doc.version, "request", reason, result, job))
        return Suggestion("", reason, doc.version, result)
    processed = postprocess(context, result.text, mode)
    reason = result.error or processed.reason if not processed.text else "ok"
    ls.publish_stats(_stats(doc.uri, doc.version, "request", reason, result, job))
    ls.log_to_client(f"suggestion for {doc.uri} v{doc.version}: {result.prompt_tokens} prompt tokens "
                     f"({result.evaluated_prompt_tokens} evaluated), {result.generated_tokens} generated, "
                     f"{result.prompt_seconds * 1000:.0f}+{result.generate_seconds * 1000:.0f} ms, {processed.reason}",
                     types.MessageType.Log)
    if start == end:
        ls.suggestion_cache.remember(doc.uri, prefix, suffix, processed.text)
        if processed.text and settings.speculative_suggestions:
            ls.spawn(speculate_next(ls, doc, prefix + processed.text, suffix))
    return Suggestion(processed.text, reason, doc.version, result)


def completion_context(ls: "CodegenLanguageServer", doc: Document, prefix: str, suffix: str,
                       tree=None) -> CompletionContext:
    """`tree` parses prefix+suffix (only when nothing is replaced). Documents too big to parse are
    post-processed as plain text: parsing megabytes on the event loop would stall every request."""
    too_big = len(prefix) + len(suffix) > ls.settings.max_document_bytes
    return CompletionContext(language=None if too_big else doc.language, prefix=prefix, suffix=suffix, tree=tree)


def stop_strings(extra: list[str], mode: str) -> tuple[str, ...]:
    """A single-line suggestion is cut at its first newline anyway: stop decoding there."""
    return tuple(extra) + (("\n",) if mode == "single-line" else ())


async def _generate(ls: "CodegenLanguageServer", job: GenerationJob, prefix: str, suffix: str,
                    uri: str, version: int, kind: Kind = "request") -> GenerationResult | Suggestion:
    """Prompt the engine with the loaded model's format; a Suggestion when there is nothing to run.
    Only generations someone asked for (`kind` "request") show as "generating" in the editor's status bar."""
    await ls.model.ready.wait()
    info = ls.engine.info
    if ls.model.status != "ready" or info is None:
        return Suggestion("", f"no model available ({ls.model.detail or ls.model.status})", version)
    if job.cancel.is_set():
        return Suggestion("", "superseded by a newer request", version)
    setting = ls.settings.prompt_format
    fmt = info.prompt_format if setting == "auto" else PromptFormat(setting)
    try:
        job.segments = build_segments(fmt, prefix, suffix, info.token_ids)
    except PromptFormatError as exc:
        return Suggestion("", str(exc), version)
    future = ls.engine.submit(job)
    try:
        with ls.generating_status() if kind == "request" else contextlib.nullcontext():
            return await asyncio.wrap_future(future)
    except EngineCrashed as exc:  # the supervisor reports the crash itself, once
        return Suggestion("", f"no model available ({exc.reason})", version)
    except asyncio.CancelledError:
        job.cancel.set()  # $/cancelRequest: stop decoding at the next token
        loop = asyncio.get_running_loop()
        # $/cancelRequest for a request; a newer request or an edit for a warm-up (its task is cancelled)
        why = "request cancelled" if kind == "request" else "superseded by a newer request"
        future.add_done_callback(lambda f: _report_cancelled(
            ls, loop, f, lambda result: _stats(uri, version, kind, why, result, job)))
        raise


async def speculate_next(ls: "CodegenLanguageServer", doc: Document, prefix: str, suffix: str,
                         kind: Kind = "speculative") -> None:
    """Compute a suggestion nobody asked for yet while the engine is idle and keep it in the recent-context
    cache: the one after a suggestion just given (as if accepted, like llama.vim), or the one at an edit
    that settled without a request (which also warms the KV cache). Any request for the document cancels
    this (newest wins), so it never delays one."""
    if doc.uri in ls.inflight or ls.suggestion_cache.lookup(doc.uri, prefix, suffix) is not None:
        return
    settings = ls.settings
    context = completion_context(ls, doc, prefix, suffix)
    mode = suggestion_mode(context)
    job = GenerationJob(segments=[], max_tokens=settings.max_tokens, temperature=settings.temperature,
                        top_p=settings.top_p, stop_strings=stop_strings(settings.stop, mode),
                        prefix_share=settings.prefix_share)
    ls.inflight[doc.uri] = job.cancel
    try:
        result = await _generate(ls, job, prefix, suffix, doc.uri, doc.version, kind)
    finally:
        if ls.inflight.get(doc.uri) is job.cancel:
            del ls.inflight[doc.uri]
    if isinstance(result, Suggestion):
        ls.publish_stats(_stats(doc.uri, doc.version, kind, result.reason))
        return
    if result.cancelled:
        ls.publish_stats(_stats(doc.uri, doc.version, kind, "superseded by a newer request", result, job))
        return
    processed = postprocess(context, result.text, mode)
    ls.suggestion_cache.remember_context(doc.uri, prefix, suffix, processed.text)
    reason = result.error or processed.reason if not processed.text else "ok"
    ls.publish_stats(_stats(doc.uri, doc.version, kind, reason, result, job))
    why = "speculative next suggestion" if kind == "speculative" else "warmed suggestion"
    ls.log_to_client(f"{why} for {doc.uri} ready ({result.evaluated_prompt_tokens} evaluated, "
                     f"{result.generated_tokens} decoded, {processed.reason})", types.MessageType.Log)


async def warm_after_edit(ls: "CodegenLanguageServer", uri: str, version: int, offset: int) -> None:
    """When an edit settles and no request came for it, precompute the suggestion at the edit's end."""
    await asyncio.sleep(ls.settings.warm_after_ms / 1000)
    doc = ls.store.get(uri) if uri in ls.store else None
    if doc is None or doc.version != version or offset > len(doc.text):
        return
    await speculate_next(ls, doc, doc.text[:offset], doc.text[offset:], kind="warm")
