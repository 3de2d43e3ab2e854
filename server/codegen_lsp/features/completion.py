"""textDocument/completion: the same suggestion as one item, for clients without inline completion."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from .common import document_or_error, lsp_position, offset_or_error

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer

WORD_BEFORE_CURSOR = re.compile(r"[\w$]*$")


def register(server: "CodegenLanguageServer") -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: "CodegenLanguageServer", params: types.CompletionParams):
        doc = document_or_error(ls, params.text_document.uri)
        offset = offset_or_error(ls, doc, params.position)
        suggestion = await ls.completions.suggest(doc, offset, offset)
        if not suggestion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        # The edit starts at the word being typed so the client's filter keeps the item.
        word = WORD_BEFORE_CURSOR.search(doc.text[:offset]).group(0)
        start = lsp_position(doc, offset - len(word), ls)
        new_text = word + suggestion.text
        label = new_text.splitlines()[0].strip() or new_text.strip()
        item = types.CompletionItem(
            label=label[:80], kind=types.CompletionItemKind.Text, detail="codegen-lsp", filter_text=new_text,
            text_edit=types.TextEdit(range=types.Range(start=start, end=params.position), new_text=new_text),
            insert_text_format=types.InsertTextFormat.PlainText, sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
