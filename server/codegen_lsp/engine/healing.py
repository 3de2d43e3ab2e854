"""Token healing: the prompt ends at the last whole token before the cursor, and the first generated
tokens are constrained to spell out what was cut off.

A prompt that ends in a space, in indentation or inside a word (anywhere but right after a line
break) ends on a token the model rarely saw there (`return` + ` ` instead of `return` + ` a`), and the suggestion suffers (`return 10 + a, b`).
So the last token of the text before the cursor is taken off the prompt, and until the generated
bytes cover its text, only tokens that agree with that text may be sampled (a logit mask over the
vocabulary's token strings, built once per model). The covered text is then stripped from the
suggestion. Pure: byte strings and token ids in, numpy index arrays out.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .heal_cut import heal_cut

MAX_CACHED_MASKS = 256


@dataclass(frozen=True)
class HealPlan:
    """The prompt tokens to evaluate, and the bytes the generation must begin with (b"": no healing)."""
    tokens: list[int]
    removed: bytes
    skipped: str = ""  # why healing was not applied, when it could have been


class TokenHealer:
    def __init__(self, pieces: Sequence[bytes]) -> None:
        """`pieces[i]`: the bytes token i stands for (b"" for control and unused tokens)."""
        self.pieces = list(pieces)
        # Token ids in the order of their bytes, and those bytes: every lookup is a bisection (no dict of
        # pieces: ~8 MiB for a 49k vocabulary, in an engine process that must stay small).
        order = sorted((i for i, p in enumerate(self.pieces) if p), key=self.pieces.__getitem__)
        self._keys = [self.pieces[i] for i in order]
        self._ids = np.array(order, dtype=np.intc)
        self._masks: dict[bytes, np.ndarray] = {}

    def plan(self, tokens: list[int], text: str) -> HealPlan:
        """Take the last token of `tokens` (the tokenized `text`, which ends at the cursor) off the prompt."""
        last = tokens[-1] if tokens else -1
        piece = self.pieces[last] if 0 <= last < len(self.pieces) else b""
        removed, skipped = heal_cut(text, len(tokens), piece)
        return HealPlan(tokens[:-1] if removed else tokens, removed, skipped)

    def allowed(self, rest: bytes) -> np.ndarray:
        """Token ids that agree with `rest`, the text still to be spelled out: tokens that start with it,
        and tokens that are a beginning of it."""
        mask = self._masks.get(rest)
        if mask is not None:
            return mask
        # The pieces that start with `rest` are one run of the sorted pieces: a slice, not a loop (a
        # space begins ~32k of SmolLM2's 49k tokens: 15 ms in Python).
        start = bisect.bisect_left(self._keys, rest)
        after = _successor(rest)
        end = bisect.bisect_left(self._keys, after, lo=start) if after is not None else len(self._keys)
        shorter = [self._ids[bisect.bisect_left(self._keys, rest[:n]):bisect.bisect_right(self._keys, rest[:n])]
                   for n in range(1, len(rest))]  # the tokens that spell a beginning of it
        mask = np.sort(np.concatenate([self._ids[start:end], *shorter]))
        if len(self._masks) >= MAX_CACHED_MASKS:
            self._masks.clear()
        self._masks[rest] = mask
        return mask

    def advance(self, rest: bytes, token: int) -> bytes:
        """What is left to spell out after `token` was generated."""
        piece = self.pieces[token]
        return rest[len(piece):] if len(piece) < len(rest) else b""


def _successor(prefix: bytes) -> bytes | None:
    """The least byte string greater than every string that starts with `prefix` (None: no such string)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def pick(logits: np.ndarray, allowed: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Greedy (temperature 0) or sampled choice among the allowed token ids."""
    scores = logits[allowed].astype(np.float64)
    if temperature <= 0.0:
        return int(allowed[int(np.argmax(scores))])
    scores = (scores - scores.max()) / temperature
    weights = np.exp(scores)
    return int(allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))])
