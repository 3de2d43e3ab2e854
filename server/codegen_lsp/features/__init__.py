"""LSP features: each module adapts LSP types to the core and registers its handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def register_all(server: "CodegenLanguageServer") -> None:
    from . import actions, completion, inline, lifecycle, models, offer, synthesize, sync, trust

    lifecycle.register(server, after_first_load=offer.offer_after_first_load,
                       settle_trust=trust.settle_remembered, ask_trust=trust.ask_trust)
    for module in (sync, inline, completion, actions, synthesize, models, offer):
        module.register(server)
