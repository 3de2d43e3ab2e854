"""The tokenizer that ships with the project, rebuilt from the embedded model's GGUF.

A new default model is trained on the shipped vocabulary, so its ids stay those of the model it
replaces (and of everything that caches them). The GGUF holds the byte-level BPE tokens and merges;
the added tokens (`<|endoftext|>`, CodeGen's whitespace runs, the CodeGen2 sentinels) follow them in
the order `train_tokenizer` adds them, which `shipped_tokenizer` checks id by id.
"""

from __future__ import annotations

from pathlib import Path

from ..test_models import CODEGEN2_SENTINELS, ENDOFTEXT, WHITESPACE_TOKENS

NORMAL = 1  # llama.cpp's LLAMA_TOKEN_TYPE_NORMAL: the BPE pieces


class TokenizerMismatch(Exception):
    """The GGUF's vocabulary is not laid out as our training writes it."""


def _strings(field) -> list[str]:
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def shipped_tokenizer(gguf_path: Path):
    """A `tokenizers.Tokenizer` equal to the vocabulary inside `gguf_path` (the embedded model's)."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    fields = GGUFReader(str(gguf_path)).fields
    tokens = _strings(fields["tokenizer.ggml.tokens"])
    types = [int(fields["tokenizer.ggml.token_type"].parts[i][0]) for i in fields["tokenizer.ggml.token_type"].data]
    merges = [tuple(m.split(" ", 1)) for m in _strings(fields["tokenizer.ggml.merges"])]
    n_bpe = next((i for i, t in enumerate(types) if t != NORMAL), len(types))
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens[:n_bpe])}, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(ENDOFTEXT, special=True, normalized=False)])
    tokenizer.add_tokens([AddedToken(t, normalized=False) for t in WHITESPACE_TOKENS])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CODEGEN2_SENTINELS])
    added = [ENDOFTEXT, *WHITESPACE_TOKENS, *CODEGEN2_SENTINELS]
    for offset, text in enumerate(added):
        if tokenizer.token_to_id(text) != n_bpe + offset or tokens[n_bpe + offset] != text:
            raise TokenizerMismatch(f"{gguf_path}: added token {text!r} is not at id {n_bpe + offset}")
    return tokenizer
