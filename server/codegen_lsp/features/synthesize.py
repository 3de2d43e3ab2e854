"""Synthesize from comments: a code action (edit computed in codeAction/resolve) and the command
`codegen-lsp.synthesize` (progress per turn, cancellable, applied with workspace/applyEdit).

Both refuse an edit for a document that changed while the turns were generated.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from ..documents.store import Document
from ..events import excluded
from ..synthesis.run import Synthesis, SynthesisOptions, SynthesisResult
from ..synthesis.turns import SynthesisPlan, plan_turns
from .common import document_or_error, lsp_position, offset_or_error

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer

SYNTHESIZE = "Synthesize from comments (codegen-lsp)"
REGENERATE = "Regenerate code under comments (codegen-lsp)"
SYNTHESIZE_KIND = "refactor.rewrite.codegen.synthesize"
SYNTHESIZE_COMMAND = "codegen-lsp.synthesize"


def plan_for(doc: Document, start: int, end: int) -> SynthesisPlan:
    """`start`/`end` are code-point offsets of the request's range; the plan is in code points too."""
    return plan_turns(doc.tree, doc.source_bytes, doc.language, start, end)


class _CurrentEngine:
    """The server's engine at each call: a settings change may replace `ls.engine` while a synthesis
    waits for the model, and its turns must go to the new one (as completions do)."""

    def __init__(self, ls: "CodegenLanguageServer") -> None:
        self._ls = ls

    @property
    def info(self):
        return self._ls.engine.info

    def load(self, config, progress=None):
        return self._ls.engine.load(config, progress)

    def submit(self, job):
        return self._ls.engine.submit(job)

    def close(self) -> None:
        self._ls.engine.close()


def _synthesis(ls: "CodegenLanguageServer", doc: Document, plan: SynthesisPlan, options: SynthesisOptions) -> Synthesis:
    """The core takes plain values: the engine, a document-unchanged check and a log sink. A document that
    became excluded meanwhile (settings, a .gitignore) counts as changed: no further turn is sent."""
    def is_current() -> bool:
        return doc.uri in ls.store and ls.store.get(doc.uri).version == doc.version \
            and ls.excluded(doc.uri, doc.language_id) is None

    return Synthesis(doc, plan, options, None, _CurrentEngine(ls), is_current,
                     lambda text: ls.log_to_client(text, types.MessageType.Log))


def offered_actions(ls: "CodegenLanguageServer", doc: Document, rng: types.Range, resolves: bool) -> list[types.CodeAction]:
    """Listing is instant: only the plan (tree queries), never the model."""
    start, end = offset_or_error(ls, doc, rng.start), offset_or_error(ls, doc, rng.end)
    plan = plan_for(doc, start, end)
    wanted = []
    if plan.pending:
        wanted.append((SYNTHESIZE, False))
    if start != end and any(not t.pending for t in plan.turns):
        wanted.append((REGENERATE, True))
    actions = []
    for title, regenerate in wanted:
        args = {"uri": doc.uri, "version": doc.version, "regenerate": regenerate,
                "range": {"start": {"line": rng.start.line, "character": rng.start.character},
                          "end": {"line": rng.end.line, "character": rng.end.character}}}
        if resolves:
            actions.append(types.CodeAction(title=title, kind=SYNTHESIZE_KIND, data={"action": "synthesize", **args}))
        else:  # a client that cannot resolve runs the command (with progress) instead
            actions.append(types.CodeAction(title=title, kind=SYNTHESIZE_KIND,
                                            command=types.Command(title=title, command=SYNTHESIZE_COMMAND, arguments=[args])))
    return actions


def _request(ls: "CodegenLanguageServer", args: Any) -> tuple[Document, SynthesisPlan, SynthesisOptions, int | None]:
    """Validate the action's data / the command's argument: {uri, version?, range?, regenerate?}."""
    if not isinstance(args, dict) or not isinstance(args.get("uri"), str):
        raise JsonRpcInvalidParams(f"{SYNTHESIZE_COMMAND} takes one object argument with a \"uri\"")
    doc = document_or_error(ls, args["uri"])
    version = args.get("version")
    if version is not None and not isinstance(version, int):
        raise JsonRpcInvalidParams("\"version\" must be an integer")
    try:
        rng = args.get("range")
        start = offset_or_error(ls, doc, types.Position(**rng["start"])) if rng else 0
        end = offset_or_error(ls, doc, types.Position(**rng["end"])) if rng else len(doc.text)
    except (TypeError, KeyError) as exc:
        raise JsonRpcInvalidParams(f"\"range\" must be an LSP range ({exc})") from None
    settings = ls.settings
    options = SynthesisOptions(max_tokens=settings.synthesis_max_tokens, temperature=settings.synthesis_temperature,
                               top_p=settings.top_p, turn_timeout_s=settings.synthesis_turn_timeout_ms / 1000,
                               regenerate=bool(args.get("regenerate", False)), heal=settings.token_healing,
                               stop_on_loop=settings.repetition_filter, prompt_lookup=settings.prompt_lookup,
                               context_tokens=settings.context_tokens)
    return doc, plan_for(doc, start, end), options, version


def _refusal(ls: "CodegenLanguageServer", doc: Document, plan: SynthesisPlan, options: SynthesisOptions,
             version: int | None) -> str | None:
    """Why this request cannot run (told to the user), or None."""
    if (rule := ls.excluded(doc.uri, doc.language_id)) is not None:
        reason = excluded(rule)
    elif version is not None and version != doc.version:
        reason = f"the document changed since the action was offered (version {version}, now {doc.version}); try again"
    elif not plan.turns or not (plan.pending or options.regenerate):
        reason = "no comment without code in the range: write one comment per step, then synthesize"
    elif ls.model.status != "ready" and ls.model.ready.is_set():
        reason = f"no model available ({ls.model.detail or ls.model.status})"
    else:
        return None
    ls.tell_user(f"{SYNTHESIZE}: {reason}", types.MessageType.Warning)
    return reason


def _workspace_edit(ls: "CodegenLanguageServer", doc: Document, result: SynthesisResult) -> types.WorkspaceEdit:
    edits = [types.TextEdit(range=types.Range(start=lsp_position(doc, i.start, ls), end=lsp_position(doc, i.end, ls)),
                            new_text=i.text) for i in result.insertions]
    change = types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=result.version), edits=edits)
    return types.WorkspaceEdit(document_changes=[change])


def _stale(ls: "CodegenLanguageServer", doc: Document, result: SynthesisResult) -> bool:
    current = ls.store.get(doc.uri) if doc.uri in ls.store else None
    if current is not None and current.version == result.version:
        return False
    ls.tell_user(f"{SYNTHESIZE}: the document changed during synthesis; nothing was applied, try again",
                 types.MessageType.Warning)
    return True


async def _run(ls: "CodegenLanguageServer", synthesis: Synthesis, on_turn=None) -> SynthesisResult:
    """Newest synthesis per document wins; waits for a loading model."""
    key = f"{synthesis.doc.uri}#synthesis"
    previous = ls.inflight.get(key)
    if previous is not None:
        previous.set()
    ls.inflight[key] = synthesis.cancel
    try:
        await ls.model.ready.wait()
        if ls.model.status != "ready":
            synthesis.result.stopped = f"no model available ({ls.model.detail or ls.model.status})"
            ls.tell_user(f"{SYNTHESIZE}: {synthesis.result.stopped}")
            return synthesis.result
        with ls.generating_status():
            return await synthesis.run(on_turn)
    finally:
        if ls.inflight.get(key) is synthesis.cancel:
            del ls.inflight[key]


def _report(result: SynthesisResult, applied: bool) -> dict[str, Any]:
    return {"applied": applied, "stopped": result.stopped, "summary": result.summary(),
            "turns": [{"title": t.title, "status": t.status, "detail": t.detail,
                       "generatedTokens": t.generated_tokens} for t in result.turns]}


async def resolve_synthesis(ls: "CodegenLanguageServer", action: types.CodeAction) -> types.CodeAction:
    doc, plan, options, version = _request(ls, action.data)
    if _refusal(ls, doc, plan, options, version):
        return action
    result = await _run(ls, _synthesis(ls, doc, plan, options))
    if _stale(ls, doc, result):
        return action
    if not result.insertions:
        ls.tell_user(f"{SYNTHESIZE}: nothing to insert ({result.summary()})", types.MessageType.Info)
        return action
    action.edit = _workspace_edit(ls, doc, result)
    return action


async def _apply(ls: "CodegenLanguageServer", doc: Document, result: SynthesisResult) -> bool:
    if _stale(ls, doc, result) or not result.insertions:
        return False
    try:
        response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
            edit=_workspace_edit(ls, doc, result), label="Synthesize from comments"))
    except JsonRpcException as exc:  # e.g. a client without workspace/applyEdit
        ls.tell_user(f"{SYNTHESIZE}: the editor could not apply the edit ({exc})", types.MessageType.Warning)
        return False
    if not response.applied:
        ls.tell_user(f"{SYNTHESIZE}: the editor did not apply the edit ({response.failure_reason or 'no reason given'})",
                     types.MessageType.Warning)
    return bool(response.applied)


async def synthesize_command(ls: "CodegenLanguageServer", args: Any) -> dict[str, Any]:
    doc, plan, options, version = _request(ls, args)
    if reason := _refusal(ls, doc, plan, options, version):
        return {"applied": False, "stopped": reason, "summary": reason, "turns": []}
    synthesis = _synthesis(ls, doc, plan, options)
    total = len(synthesis.todo())
    async with ls.work_done("Synthesize from comments", f"{total} turns", cancellable=True, percentage=0) as progress:
        if progress is not None:  # the client's cancel button (window/workDoneProgress/cancel)
            progress.cancelled.add_done_callback(lambda _: synthesis.cancel.set())

        def turn(number: int, total: int, step) -> None:
            if progress is not None:
                progress.report(int(100 * (number - 1) / total), f"turn {number}/{total}: {step.title}")

        try:
            # $/cancelRequest stops the turn being decoded; the finished turns are still applied below.
            with ls.protocol.on_cancel_request(synthesis.cancel.set):
                result = await _run(ls, synthesis, turn)
        except asyncio.CancelledError:  # the task itself was cancelled (shutdown): same rule
            synthesis.cancel.set()
            synthesis.result.stopped = "cancelled"
            if progress is not None:
                progress.end_message = f"cancelled; {synthesis.result.summary()}"
            ls.spawn(_apply(ls, doc, synthesis.result))
            raise
        applied = await _apply(ls, doc, result)
        if progress is not None:
            progress.end_message = result.summary()
    if not result.insertions and result.stopped != "document changed":
        ls.tell_user(f"{SYNTHESIZE}: nothing to insert ({result.summary()})", types.MessageType.Info)
    return _report(result, applied)


def register(server: "CodegenLanguageServer") -> None:
    @server.command(SYNTHESIZE_COMMAND)
    async def synthesize(ls, *args):  # no annotations: pygls evaluates them to structure the arguments
        if len(args) != 1:
            raise JsonRpcInvalidParams(f"{SYNTHESIZE_COMMAND} takes exactly one argument, got {len(args)}")
        return await synthesize_command(ls, args[0])
