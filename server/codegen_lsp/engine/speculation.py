"""Greedy decoding, with prompt-lookup speculation when asked (the `promptLookup` setting): code copies
from its own context (names, argument lists, a statement shaped like the one above), so the tokens
that followed the last few tokens earlier in the prompt or the output are a cheap guess at what comes
next. The guess (the draft) is evaluated in the same `llama_decode` batch as the token before it;
the longest prefix that agrees with greedy choice is kept, plus the model's own token after it, and
the KV cells of the rest are removed. Without drafts this is the plain greedy loop (one token per
decode), which also saves llama-cpp-python's `generate` re-evaluating the prompt's last token.

Identity: the output equals the one-token-steps output exactly when llama.cpp's kernels give a token
the same logits in any batch, as the build with `-DGGML_LLAMAFILE=OFF` does. The default build's
tinyBLAS does not (a token's logits move by up to ~0.7 depending on the batch), so on near-ties the
two may differ (tests/e2e/test_prompt_lookup.py).

Cost: on a 2-core CPU a batch is far from free (SmolLM2: 2 tokens cost 1.7 single steps, 9 tokens
3.2, 17 tokens 5.3; docs/benchmarks.md), so drafts pay only when most of them are accepted; the draft length adapts to what was accepted, and after a draft that
missed entirely drafting pauses for a number of steps that doubles with each miss. Sampled decoding
(temperature > 0) does not use this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

MAX_NGRAM = 4  # the longest tail looked up; shorter ones (down to 1 token) are tried next
MAX_DRAFT = 16
FIRST_DRAFT = 4
MAX_PAUSE = 32  # steps without drafts after repeated misses, at most


class PromptLookup:
    """The tokens so far (prompt, then output) and the draft their last n-gram suggests."""

    def __init__(self, tokens: list[int], room: int) -> None:
        self._h = np.empty(len(tokens) + room + MAX_DRAFT + 1, dtype=np.int64)
        self._h[: len(tokens)] = tokens
        self._n = len(tokens)

    def append(self, token: int) -> None:
        self._h[self._n] = token
        self._n += 1

    def draft(self, k: int) -> list[int]:
        """Up to `k` tokens that followed the latest earlier occurrence of the longest tail (4..1 tokens)
        that occurred before; [] when none did."""
        h, n_all = self._h, self._n
        for n in range(min(MAX_NGRAM, n_all - 1), 0, -1):
            tail = h[n_all - n: n_all]
            starts = np.flatnonzero(h[: n_all - n] == tail[0])  # each leaves a token after its n-gram
            for j in range(1, n):
                starts = starts[h[starts + j] == tail[j]]
            if len(starts):
                at = int(starts[-1]) + n
                return h[at: min(at + k, n_all)].tolist()
        return []


@dataclass
class DraftStats:
    drafted: int = 0  # tokens proposed and verified
    accepted: int = 0  # of those, the ones greedy decoding agreed with


class DraftLength:
    """How many tokens to draft next: grows while drafts are accepted whole, shrinks to what was
    accepted otherwise; after a draft with nothing accepted, no drafts for 1, 2, 4, ... steps."""

    def __init__(self) -> None:
        self.k, self._pause, self._misses = FIRST_DRAFT, 0, 0

    def next(self) -> int:
        if self._pause:
            self._pause -= 1
            return 0
        return self.k

    def update(self, drafted: int, accepted: int) -> None:
        if not drafted:
            return
        if accepted == drafted:
            self.k, self._misses = min(MAX_DRAFT, self.k * 2), 0
        elif accepted:
            self.k, self._misses = max(1, accepted + 1), 0
        else:
            self._misses += 1
            self.k = max(1, self.k // 2)
            self._pause = min(MAX_PAUSE, 2 ** (self._misses - 1))


def greedy_tokens(llama_cpp: Any, llm: Any, history: list[int], budget: int, cancelled: Callable[[], bool],
                  speculate: bool, stats: DraftStats) -> Iterator[int]:
    """Greedy tokens after `history`, whose last token's logits are current in sequence 0; at most
    `budget` of them, none after a cancel. The caller may stop early (a stop string): `llm.input_ids`
    and `llm.n_tokens` always say which tokens the KV cache holds (the last token yielded before a
    decode is not evaluated yet; accepted drafts are, even those after where the caller stopped)."""
    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    batch = llm._batch.batch
    n_vocab = llm.n_vocab()
    n_ctx = min(llm.n_ctx(), len(llm.input_ids))
    n_batch = int(llm.n_batch)  # tokens one decode call can take
    lookup = PromptLookup(history, budget) if speculate else None
    length = DraftLength()

    def argmax(row: int) -> int:
        return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, row), shape=(n_vocab,))))

    token, made = argmax(-1), 0
    while True:
        made += 1
        yield token
        if made >= budget or cancelled():
            return
        n_past = llm.n_tokens
        if lookup is not None:
            lookup.append(token)
        room = min(budget - made, n_ctx - n_past - 2, n_batch - 1)
        k = min(length.next(), room) if lookup is not None else 0
        draft = lookup.draft(k) if k > 0 else []
        row_tokens = [token] + draft
        for row, t in enumerate(row_tokens):
            batch.token[row], batch.pos[row] = t, n_past + row
            batch.n_seq_id[row], batch.logits[row] = 1, True
            batch.seq_id[row][0] = 0
        batch.n_tokens = len(row_tokens)
        if (rc := llama_cpp.llama_decode(ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) verifying {len(draft)} drafted tokens")
        chosen = [argmax(0)]
        while len(chosen) <= len(draft) and chosen[-1] == draft[len(chosen) - 1]:
            chosen.append(argmax(len(chosen)))
        accepted = len(chosen) - 1
        kept = 1 + accepted  # cells holding `token` and the accepted drafts
        llm.input_ids[n_past: n_past + kept] = row_tokens[:kept]
        llm.n_tokens = n_past + kept
        if draft:
            stats.drafted += len(draft)
            stats.accepted += accepted
            length.update(len(draft), accepted)
            if accepted < len(draft):
                llama_cpp.llama_memory_seq_rm(mem, 0, n_past + kept, -1)
        for t in chosen[:-1]:
            made += 1
            yield t
            if lookup is not None:
                lookup.append(t)
            if made >= budget:
                return
        token = chosen[-1]

