"""Tokenizer files → the GGUF `gpt2` BPE vocabulary llama.cpp tokenizes with.

CodeGen 1/2 use GPT-2's byte-level BPE plus added tokens: whitespace runs (matched before BPE,
typed USER_DEFINED so llama.cpp matches them the same way) and sentinels such as `<|endoftext|>`,
`<mask_N>`, `<sep>`, `<eom>` (typed CONTROL). Rows past the tokenizer up to the embedding size
become UNUSED padding tokens, as llama.cpp requires one token per embedding row.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from .errors import ConversionError


class TokenType(IntEnum):  # llama.cpp's llama_token_type values
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


_SENTINEL = re.compile(r"<\|[^|<>\s]+\|>|<(mask_\d+|sep|eom|pad|fim_[a-z]+|dummy_\d+|filename|gh_stars|reponame"
                       r"|issue_[a-z]+|jupyter_[a-z]+|empty_output|commit_[a-z]+)>")
ENDOFTEXT = "<|endoftext|>"


@dataclass
class GGUFVocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    token_ids: dict[str, int]  # text → id, for looking up sentinels

    @property
    def size(self) -> int:
        return len(self.tokens)

    def id_of(self, text: str) -> int | None:
        return self.token_ids.get(text)

    def padded_to(self, n_rows: int, where: Path) -> "GGUFVocab":
        if n_rows < self.size:
            raise ConversionError(where, f"tokenizer has {self.size} tokens but the embedding only {n_rows} rows")
        pad = [f"[PAD{i}]" for i in range(self.size, n_rows)]
        return GGUFVocab(self.tokens + pad, self.types + [TokenType.UNUSED] * len(pad), self.merges, self.token_ids)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def load_hf_vocab(folder: Path) -> GGUFVocab:
    """Read tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json), from a checkpoint folder."""
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.exists():
        return _from_tokenizer_json(tokenizer_json)
    vocab_json, merges_txt = folder / "vocab.json", folder / "merges.txt"
    if vocab_json.exists() and merges_txt.exists():
        return _from_vocab_and_merges(vocab_json, merges_txt, folder / "added_tokens.json")
    raise ConversionError(folder, "no tokenizer found (expected tokenizer.json or vocab.json + merges.txt)")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(path, f"cannot read tokenizer file ({exc})") from None


def _from_tokenizer_json(path: Path) -> GGUFVocab:
    data = _read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ConversionError(path, f"unsupported tokenizer model {model.get('type')!r} (expected byte-level BPE)")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    added = {t["content"]: (int(t["id"]), bool(t.get("special"))) for t in data.get("added_tokens", [])}
    return _assemble(path, dict(model.get("vocab", {})), merges, added)


def _from_vocab_and_merges(vocab_json: Path, merges_txt: Path, added_json: Path) -> GGUFVocab:
    vocab = _read_json(vocab_json)
    try:
        lines = merges_txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(merges_txt, f"cannot read ({exc})") from None
    merges = [line for line in lines if line and not line.startswith("#version")]
    added = {text: (int(i), False) for text, i in _read_json(added_json).items()} if added_json.exists() else {}
    return _assemble(vocab_json, vocab, merges, added)


def _assemble(where: Path, vocab: dict[str, int], merges: list[str], added: dict[str, tuple[int, bool]]) -> GGUFVocab:
    by_id: dict[int, tuple[str, TokenType]] = {int(i): (text, TokenType.NORMAL) for text, i in vocab.items()}
    for text, (token_id, special) in added.items():
        kind = TokenType.CONTROL if special or _SENTINEL.fullmatch(text) else TokenType.USER_DEFINED
        by_id[token_id] = (text, kind)
    if not by_id:
        raise ConversionError(where, "tokenizer vocabulary is empty")
    size = max(by_id) + 1
    tokens, types = [], []
    for token_id in range(size):
        text, kind = by_id.get(token_id, (f"[PAD{token_id}]", TokenType.UNUSED))
        tokens.append(text)
        types.append(int(kind))
    return GGUFVocab(tokens, types, merges, {text: i for i, text in enumerate(tokens)})


# -- tiktoken (CodeGen 2.5) ---------------------------------------------------------------------

def read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """A `.tiktoken` file: one `base64(token) rank` per line."""
    ranks: dict[bytes, int] = {}
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except (OSError, ValueError) as exc:
        raise ConversionError(path, f"not a tiktoken rank file ({exc})") from None
    return ranks


def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best: tuple[int, int] | None = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[1]):
                best = (i, rank)
        if best is None:
            return parts
        i = best[0]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def tiktoken_to_bpe(ranks: dict[bytes, int]) -> tuple[list[str], list[str]]:
    """tiktoken's merge ranks → (byte-level token strings by rank, merges), recovering each merge
    by running BPE on the token with only lower ranks allowed (it must end in exactly two parts)."""
    table = bytes_to_unicode()
    encode = lambda b: "".join(table[x] for x in b)  # noqa: E731
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    tokens = [encode(token) for token, _ in ordered]
    merges = []
    for token, rank in ordered:
        if len(token) == 1:
            continue
        parts = _bpe_parts(ranks, token, rank)
        if len(parts) != 2:
            raise ConversionError(Path("<tiktoken>"), f"cannot recover the merge for token {token!r}")
        merges.append(f"{encode(parts[0])} {encode(parts[1])}")
    return tokens, merges


def codegen25_added_tokens(first_id: int, vocab_rows: int) -> list[str]:
    """CodeGen 2.5's special tokens after GPT-2's 50257, in the order its tokenizer code adds them."""
    tokens = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]
    tokens += ["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<filename>", "<gh_stars>",
               "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>", "<jupyter_text>",
               "<jupyter_code>", "<jupyter_output>", "<empty_output>", "<commit_before>", "<commit_msg>",
               "<commit_after>", "<reponame>"]
    tokens += [f"<dummy_{i}>" for i in range(4)] + ["<sep>", "<eom>"]
    n_masks = vocab_rows - (first_id + len(tokens))
    tokens += [f"<mask_{i}>" for i in range(n_masks, 0, -1)]
    return tokens


def tiktoken_vocab(ranks: dict[bytes, int], added: list[str]) -> GGUFVocab:
    """tiktoken ranks plus `<|endoftext|>` and the given added tokens, in id order."""
    tokens, merges = tiktoken_to_bpe(ranks)
    types = [int(TokenType.NORMAL)] * len(tokens)
    for text in [ENDOFTEXT, *added]:
        tokens.append(text)
        types.append(int(TokenType.CONTROL if _SENTINEL.fullmatch(text) else TokenType.USER_DEFINED))
    return GGUFVocab(tokens, types, merges, {text: i for i, text in enumerate(tokens)})
