"""Cross-file context: a ring of chunks from the other files you work in (the idea of llama.vim's
ring buffer), placed before the current file in the prompt.

Chunks (up to CHUNK_LINES lines) come from documents when they are opened, from regions edited
recently, and from regions a client reports as viewed. A new chunk replaces one it mostly repeats
(same lines), else the oldest goes. For a request, the chunks of other documents that share the
most identifiers with the text around the cursor are chosen, and they are placed in ring order, not
score order, and re-chosen only when the ring's other-document chunks change or the cursor enters
another block of lines: the start of the prompt stays the same while the user types, so the KV cache
keeps it. Pure: plain strings in, chunks out.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

CHUNK_LINES = 64
CHARS_PER_TOKEN = 3  # a cautious estimate for choosing chunks; fitting counts real tokens
MAX_CHUNKS = 16
SIMILAR = 0.5  # a new chunk sharing this share of its lines with an old one replaces it
MAX_CHUNK_CHARS = 8192  # a chunk of minified or generated text is cut to this
CURSOR_WINDOW_LINES = 32  # text around the cursor a chunk is compared with
SELECTION_BLOCK_LINES = 16  # the choice is kept while the cursor stays in this block of lines
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]{2,}")
# Keywords every file shares: they would make unrelated chunks look alike.
_COMMON = frozenset("""def return self import from class for while else elif not and pass none None True False
with try except finally raise lambda yield async await print function const let var new this public private
static void int char bool true false null nil struct impl pub use mut package func type interface""".split())
_serial = itertools.count(1)


@dataclass(frozen=True)
class Chunk:
    uri: str
    path: str  # how the prompt names the file
    start_line: int
    text: str
    language: str = ""  # the document's languageId (the exclusion rules ask for it)
    serial: int = field(default_factory=lambda: next(_serial), compare=False)

    @property
    def words(self) -> frozenset[str]:
        return words_of(self.path.rsplit("/", 1)[-1].rsplit(".", 1)[0] + "\n" + self.text)


_PART = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{3,}")


def words_of(text: str) -> frozenset[str]:
    """Identifiers and their parts (`compute_checksum_v2` → compute, checksum; `parseHTTPHeader` →
    parse, HTTP, Header), without the keywords every file has: half-typed names still match."""
    words = set(_WORD.findall(text))
    words.update(part.lower() for word in list(words) for part in _PART.findall(word))
    return frozenset(words - _COMMON)


def usable(text: str, max_bytes: int) -> bool:
    """Binary (NUL) or oversized text never goes into the ring."""
    return "\x00" not in text and len(text) <= max_bytes


def region_start(line: int, lines: int = CHUNK_LINES) -> int:
    """First line of the chunk around `line`, aligned to half-chunk boundaries (so edits nearby replace
    the same chunk instead of adding shifted copies); `line` falls in the chunk's second half."""
    half = max(1, lines // 2)
    return max(0, (line // half) * half - half)


def region(text: str, line: int, lines: int = CHUNK_LINES) -> tuple[int, str]:
    """The chunk of `lines` lines around `line` (see region_start), cut to MAX_CHUNK_CHARS."""
    start = region_start(line, lines)
    return start, "\n".join(text.split("\n")[start:start + lines])[:MAX_CHUNK_CHARS]


class ChunkRing:
    def __init__(self, max_chunks: int = MAX_CHUNKS) -> None:
        self.max_chunks = max_chunks
        self.chunks: list[Chunk] = []

    def add(self, uri: str, path: str, text: str, line: int) -> bool:
        """The chunk of `text` around `line`; whether the ring changed."""
        return self.add_region(uri, path, *region(text, line))

    def add_region(self, uri: str, path: str, start: int, body: str, language: str = "") -> bool:
        """A chunk whose first line is `start`; whether the ring changed."""
        if not body.strip():
            return False
        new = Chunk(uri, path, start, body, language)
        lines = {l for l in body.split("\n") if l.strip()}
        for i, old in enumerate(self.chunks):
            old_lines = {l for l in old.text.split("\n") if l.strip()}
            same_place = old.uri == uri and old.start_line == start
            if same_place or len(lines & old_lines) >= SIMILAR * max(1, min(len(lines), len(old_lines))):
                if old.text == body and old.path == path:
                    return False  # nothing new: keep the ring (and the prompts built from it) as it is
                self.chunks[i] = new  # in place: the order of the others is kept
                return True
        self.chunks.append(new)
        del self.chunks[: max(0, len(self.chunks) - self.max_chunks)]
        return True

    def forget(self, uri: str) -> bool:
        """Drop every chunk of `uri` (a document that became excluded); whether there were any."""
        kept = [c for c in self.chunks if c.uri != uri]
        dropped = len(kept) != len(self.chunks)
        self.chunks = kept
        return dropped

    def others(self, uri: str) -> tuple[int, ...]:
        """A stamp of the chunks of documents other than `uri`: it changes when they do."""
        return tuple(c.serial for c in self.chunks if c.uri != uri)

    def select(self, uri: str, around: str, budget_chars: int) -> list[Chunk]:
        """Chunks of other documents most like `around`, within `budget_chars`, in ring order."""
        if budget_chars <= 0:
            return []
        words = words_of(around)
        scored = []
        for position, chunk in enumerate(self.chunks):
            if chunk.uri == uri:
                continue
            shared = len(words & chunk.words)
            if shared:
                scored.append((shared / max(1, len(words | chunk.words)), position, chunk))
        chosen, used = [], 0
        for _, position, chunk in sorted(scored, key=lambda s: (-s[0], s[1])):
            if used + len(chunk.text) <= budget_chars:
                chosen.append((position, chunk))
                used += len(chunk.text)
        return [chunk for _, chunk in sorted(chosen, key=lambda c: c[0])]


def display_path(uri: str) -> str:
    """The file's name as the prompt shows it (the last two path parts, to tell apart same-named files)."""
    from urllib.parse import unquote, urlparse

    parts = [p for p in unquote(urlparse(uri).path).split("/") if p]
    return "/".join(parts[-2:]) or uri


def cursor_window(text: str, offset: int, lines: int = CURSOR_WINDOW_LINES) -> str:
    before = text[:offset].split("\n")[-lines:]
    after = text[offset:].split("\n")[: lines // 4]
    return "\n".join(before + after)


LINE_COMMENT = {"python": "#", "ruby": "#", "bash": "#", "lua": "--"}


def header(path: str, language: str | None) -> str:
    """How a chunk names its file for models without file tokens: a comment in the current file's
    language (the model reads the chunk as part of the file it completes)."""
    return f"{LINE_COMMENT.get(language or '', '//')} {path}\n"
