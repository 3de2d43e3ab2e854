"""Workspace trust over LSP: the held-back values of a repository's codegen-lsp.toml (trust.py decides
which) apply only after the person says yes to one `window/showMessageRequest` per workspace.

A remembered answer for the same values settles it before the first load (no question, no wasted load).
Otherwise the server loads without them and asks after the first load, in the background: completions
run meanwhile on the user's own settings, and a dismissed or unanswerable question leaves the values
ignored (one warning line). A yes applies them and reloads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..resources import cache_dir
from ..trust import (ALLOW_TITLE, DENY_TITLE, Pending, ignored_line, question, recall, remember, trust_memory)
from .lifecycle import apply_settings, load_model

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def settle_remembered(ls: "CodegenLanguageServer") -> None:
    """Before the first load: apply or ignore held values the person already answered for."""
    pending = ls.trust_pending
    if not pending:
        return
    verdict = recall(trust_memory(cache_dir()), ls.workspace_root, pending)
    if verdict is True:
        ls.trust_pending = Pending({})
        ls.log_to_client(f"applying {', '.join(sorted(pending.values))} from this workspace's codegen-lsp.toml "
                         "(allowed earlier)", types.MessageType.Log)
        apply_settings(ls, pending.values)
    elif verdict is False:
        _ignore(ls, "not allowed earlier for this workspace")


async def ask_trust(ls: "CodegenLanguageServer") -> None:
    """After the first load: ask about values still held; never raises into the load."""
    pending = ls.trust_pending
    if not pending:
        return
    window = ls.client_capabilities.window
    if window is None or window.show_message is None:
        # Said as a message too: no one was asked, so a person (or the headless CLI's stderr) must hear it.
        _ignore(ls, "this editor cannot ask whether to allow them; set them in your editor's own settings",
                tell=True)
        return
    try:
        chosen = await ls.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Warning, message=question(pending, ls.workspace_file),
            actions=[types.MessageActionItem(title=ALLOW_TITLE), types.MessageActionItem(title=DENY_TITLE)]))
    except Exception as exc:  # noqa: BLE001 - a client that cannot show it: as if declined, not remembered
        _ignore(ls, f"the question could not be shown: {exc}")
        return
    if ls.trust_pending is not pending:  # settled meanwhile (a newer question, shutdown)
        return
    title = chosen.title if chosen is not None else None
    if title in (ALLOW_TITLE, DENY_TITLE):
        try:
            remember(trust_memory(cache_dir()), ls.workspace_root, pending, title == ALLOW_TITLE)
        except OSError as exc:
            ls.log_to_client(f"cannot remember the workspace-trust answer: {exc}", types.MessageType.Warning)
    if title != ALLOW_TITLE:
        _ignore(ls, "not allowed" if title == DENY_TITLE else "the question was dismissed")
        return
    ls.trust_pending = Pending({})
    if apply_settings(ls, pending.values):
        await load_model(ls)


def _ignore(ls: "CodegenLanguageServer", why: str, tell: bool = False) -> None:
    pending, ls.trust_pending = ls.trust_pending, Pending({})
    if tell:
        ls.tell_user(ignored_line(pending, why), types.MessageType.Warning)
    else:
        ls.log_to_client(ignored_line(pending, why), types.MessageType.Warning)
