"""One suggestion for a cursor (or a selection to replace): prompt → engine → post-processing.

Shared by inline completion, the completion fallback and "Complete here". Takes and returns plain
values (no LSP types), so features stay thin.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from .context.prompt import PromptFormatError, build_segments
from .documents.store import Document
from .engine.jobs import GenerationJob, GenerationResult
from .modelmeta import PromptFormat
from .postprocess.pipeline import CompletionContext, postprocess

if TYPE_CHECKING:
    from .server import CodegenLanguageServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    text: str
    reason: str  # "ok", or why there is no text
    version: int
    result: GenerationResult | None = None


def _report_cancelled(ls: "CodegenLanguageServer", loop: asyncio.AbstractEventLoop, future) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    loop.call_soon_threadsafe(ls.log_to_client, f"generation cancelled after {result.generated_tokens} tokens "
                                                   f"({result.finish_reason})")


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
        ls.log_to_client(f"suggestion for {doc.uri} v{doc.version}: from the {hit[1]} cache, no model call",
                         types.MessageType.Log)
        return Suggestion(hit[0], "ok", doc.version)

    previous = ls.inflight.get(job_cancel_key)
    if previous is not None:
        previous.set()  # newest request for a document wins
    job = GenerationJob(segments=[], max_tokens=settings.max_tokens, temperature=settings.temperature,
                        top_p=settings.top_p, stop_strings=tuple(settings.stop), prefix_share=settings.prefix_share)
    ls.inflight[job_cancel_key] = job.cancel
    try:
        if settings.debounce_ms:
            await asyncio.sleep(settings.debounce_ms / 1000)
        await ls.model.ready.wait()
        info = ls.engine.info
        if ls.model.status != "ready" or info is None:
            return Suggestion("", f"no model available ({ls.model.detail or ls.model.status})", doc.version)
        if job.cancel.is_set():
            return Suggestion("", "superseded by a newer request", doc.version)
        fmt = info.prompt_format if settings.prompt_format == "auto" else PromptFormat(settings.prompt_format)
        try:
            job.segments = build_segments(fmt, prefix, suffix, info.token_ids)
        except PromptFormatError as exc:
            return Suggestion("", str(exc), doc.version)
        future = ls.engine.submit(job)
        try:
            with ls.generating_status():
                result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            job.cancel.set()  # $/cancelRequest: stop decoding at the next token
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda f: _report_cancelled(ls, loop, f))
            raise
    finally:
        if ls.inflight.get(job_cancel_key) is job.cancel:
            del ls.inflight[job_cancel_key]

    if result.cancelled:
        return Suggestion("", "superseded by a newer request", doc.version, result)
    current = ls.store.get(doc.uri) if doc.uri in ls.store else None
    if current is None or current.version != doc.version:
        return Suggestion("", f"document changed during generation (version {doc.version})", doc.version, result)
    tree = doc.tree if start == end else None  # the tree parses prefix+suffix only when nothing is replaced
    processed = postprocess(CompletionContext(language=doc.language, prefix=prefix, suffix=suffix, tree=tree),
                            result.text)
    ls.log_to_client(f"suggestion for {doc.uri} v{doc.version}: {result.prompt_tokens} prompt tokens "
                     f"({result.evaluated_prompt_tokens} evaluated), {result.generated_tokens} generated, "
                     f"{result.prompt_seconds * 1000:.0f}+{result.generate_seconds * 1000:.0f} ms, {processed.reason}",
                     types.MessageType.Log)
    if start == end:
        ls.suggestion_cache.remember(doc.uri, prefix, suffix, processed.text)
    return Suggestion(processed.text, processed.reason if not processed.text else "ok", doc.version, result)
