"""Answers that need no model: typed-through suggestions and recently seen contexts.

Typed-through: when the user types exactly the characters the last suggestion for a document
began with (and nothing after the cursor changed), the rest of that suggestion is still the answer.
An LRU of exact (prefix, suffix) contexts answers undo/redo and retyping. Pure data; the server
owns one instance and clears it when settings or the model change.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class _Shown:
    prefix: str
    suffix: str
    text: str


def _context_key(uri: str, prefix: str, suffix: str) -> tuple[str, str]:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(prefix.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(suffix.encode("utf-8", "surrogatepass"))
    return uri, digest.hexdigest()


class SuggestionCache:
    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._last: dict[str, _Shown] = {}
        self._recent: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        """A suggestion the client was given for the cursor between `prefix` and `suffix`."""
        if not text:
            return
        self._last[uri] = _Shown(prefix, suffix, text)
        self.remember_context(uri, prefix, suffix, text)

    def remember_context(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        """An answer for a context not shown yet (a speculative next suggestion): the LRU only."""
        if not text:
            return
        key = _context_key(uri, prefix, suffix)
        self._recent[key] = text
        self._recent.move_to_end(key)
        while len(self._recent) > self._size:
            self._recent.popitem(last=False)

    def lookup(self, uri: str, prefix: str, suffix: str) -> tuple[str, str] | None:
        """(text, which cache) for this context, or None."""
        shown = self._last.get(uri)
        if shown is not None and suffix == shown.suffix and len(prefix) > len(shown.prefix) \
                and prefix.startswith(shown.prefix):
            typed = prefix[len(shown.prefix):]
            if shown.text.startswith(typed) and len(typed) < len(shown.text):
                return shown.text[len(typed):], "typed-through"
        text = self._recent.get(_context_key(uri, prefix, suffix))
        if text is not None:
            self._recent.move_to_end(_context_key(uri, prefix, suffix))
            return text, "recent context"
        return None

    def forget_others(self, uri: str) -> None:
        """The other files' context changed: answers for documents other than `uri` may differ now."""
        for other in [u for u in self._last if u != uri]:
            del self._last[other]
        for key in [k for k in self._recent if k[0] != uri]:
            del self._recent[key]

    def forget(self, uri: str | None = None) -> None:
        """Drop one document's entries (closed), or everything (settings or model changed)."""
        if uri is None:
            self._last.clear()
            self._recent.clear()
            return
        self._last.pop(uri, None)
        for key in [k for k in self._recent if k[0] == uri]:
            del self._recent[key]
