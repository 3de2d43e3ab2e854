"""textDocument/inlineCompletion: the suggestion as ghost text at the cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .common import document_or_error, offset_or_error

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def register(server: "CodegenLanguageServer") -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: "CodegenLanguageServer", params: types.InlineCompletionParams):
        doc = document_or_error(ls, params.text_document.uri)
        offset = offset_or_error(ls, doc, params.position)
        # Asked for explicitly (LSP 3.18: "return multiple completion items to enable cycling"): several.
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        suggestion = await ls.completions.suggest(doc, offset, offset, ls.settings.candidates if invoked else 1)
        if not suggestion.text:
            ls.log_to_client(f"no inline suggestion: {suggestion.reason}", types.MessageType.Log)
            return types.InlineCompletionList(items=[])
        here = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=text, range=here)
                                                 for text in (suggestion.text, *suggestion.alternatives)])
