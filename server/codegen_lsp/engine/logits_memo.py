"""The logits of the KV cache's latest positions, so that a prompt the cache already holds whole is
not evaluated at all.

With token healing the prompt ends before the word being typed, so at the next key it usually ends
where the last one did, or at a token the last suggestion decoded: every token is in the cache.
llama.cpp (and llama-server) then evaluate the last token again only to get its logits back, one
decode step (~12 ms of SmolLM2 on 2 cores). Those logits were computed already; this keeps them.

An entry is the logits row computed for the token at one position, and holds while no cell at or
before that position is written: whoever writes from position p calls `forget_from(p)` (`keep` does
it itself, as writing a cell rewrites every later one).
"""

from __future__ import annotations

import numpy as np

MEMO_ROWS = 64  # a suggestion's worth of positions (maxTokens + healing); a row is n_vocab floats


class LogitsMemo:
    def __init__(self, limit: int = MEMO_ROWS) -> None:
        self._rows: dict[int, np.ndarray] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, position: int) -> np.ndarray | None:
        return self._rows.get(position)

    def keep(self, position: int, logits: np.ndarray) -> None:
        """`logits` (a view into llama.cpp's buffer, copied here) were computed for the token at `position`."""
        self.forget_from(position)
        self._rows[position] = np.array(logits, dtype=np.float32, copy=True)
        if len(self._rows) > self._limit:
            del self._rows[min(self._rows)]

    def forget_from(self, position: int) -> None:
        for p in [p for p in self._rows if p >= position]:
            del self._rows[p]

    def clear(self) -> None:
        self._rows.clear()
