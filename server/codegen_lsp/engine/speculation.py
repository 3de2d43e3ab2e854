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
3.2, 17 tokens 5.3; docs/benchmarks.md), so drafts pay only when most of them are accepted.
`DraftPolicy` measures both, the cost of each batch size and the acceptance rate, and drafts only the
length that is expected to pay (none where nothing does). Sampled decoding (temperature > 0) does not
use this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .logits_memo import LogitsMemo

MAX_NGRAM = 4  # the longest tail looked up; shorter ones (down to 1 token) are tried next
MAX_DRAFT = 16
# DraftPolicy's starting beliefs: a batch of n tokens costs 1 + 0.2 (n - 1) steps (cheap, so the first
# drafts measure it), and drafts are accepted with p = 2/3.
PRIOR_SLOPE = 0.2
PRIOR_COST = lambda n: 1.0 + PRIOR_SLOPE * max(0, n - 1)  # noqa: E731
PRIOR_ACCEPTED, PRIOR_REJECTED = 2.0, 1.0
DECAY = 0.9  # weight of older verifications in p, per verification
SMOOTHING = 0.2  # moving averages of step and batch times
MARGIN = 0.05  # draft only where the expected gain beats this (noise in the measured costs)
EXPLORE_EVERY = 64  # steps without a draft before one short draft is tried anyway


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


class DraftPolicy:
    """How many tokens to draft next: the length that buys the most tokens per unit of decode time.

    A verification of k drafted tokens yields 1 + p + ... + p^k tokens on average (p: the chance that
    the next drafted token is accepted, given the ones before it were) and costs what a batch of k + 1
    tokens costs, measured relative to a one-token step. Both are learned while decoding and kept across
    generations (one policy per loaded model): where a batch costs nearly as much per token as single
    steps (a few CPU cores) or drafts keep missing, it stops drafting; where batches are cheap (a GPU) it
    drafts long. Batch sizes not measured yet are assumed cheap, but never cheaper than a smaller size
    measured (the first drafts find out). After EXPLORE_EVERY steps without a draft one 1-token draft
    is tried, so a change (the document starts repeating itself) is noticed; where every draft misses
    that costs about 1 % on a 2-core CPU (a 2-token batch: 1.7 steps)."""

    def __init__(self, batch_cost: Sequence[float] | None = None) -> None:
        """`batch_cost[n]`: a fixed cost of an n-token batch relative to one token (tests); None: measured."""
        self._fixed = batch_cost is not None
        self._cost = list(batch_cost) if batch_cost is not None else [PRIOR_COST(n) for n in range(MAX_DRAFT + 2)]
        self._measured = [self._fixed] * (MAX_DRAFT + 2)
        self._step = 0.0  # seconds of a one-token step (moving average)
        self._accepted, self._rejected = PRIOR_ACCEPTED, PRIOR_REJECTED
        self._since_draft = 0

    @property
    def p(self) -> float:
        return self._accepted / (self._accepted + self._rejected)

    def next(self, room: int) -> int:
        """The draft length for this step (0: none), at most `room`."""
        best, best_k, p, expected = 1.0 + MARGIN, 0, self.p, 1.0
        for k in range(1, min(room, MAX_DRAFT) + 1):
            expected += p ** k
            if (gain := expected / self._cost[k + 1]) > best:
                best, best_k = gain, k
        if best_k == 0 and self._since_draft >= EXPLORE_EVERY and room >= 1:
            best_k = 1
        return best_k

    def single_step(self, seconds: float) -> None:
        """A step without a draft took `seconds`."""
        self._since_draft += 1
        self._step = seconds if not self._step else self._step + SMOOTHING * (seconds - self._step)

    def observe(self, drafted: int, accepted: int) -> None:
        """`drafted` tokens were verified and `accepted` of them kept (the batch's cost not known)."""
        self._since_draft = 0
        self._accepted = self._accepted * DECAY + accepted
        self._rejected = self._rejected * DECAY + (1 if accepted < drafted else 0)

    def verified(self, drafted: int, accepted: int, seconds: float) -> None:
        """A batch of the step's token and `drafted` tokens took `seconds`; `accepted` were kept."""
        self.observe(drafted, accepted)
        n = drafted + 1
        if self._fixed or not self._step or n >= len(self._cost):
            return
        ratio = max(1.0, seconds / self._step)
        if not self._measured[n]:
            self._cost[n], self._measured[n] = ratio, True
        else:
            self._cost[n] += SMOOTHING * (ratio - self._cost[n])
        # A larger batch not measured yet costs at least what this one did, plus the prior's slope:
        # one dear measurement is enough to stop trying every larger size in turn.
        for m in range(n + 1, len(self._cost)):
            if not self._measured[m]:
                self._cost[m] = max(self._cost[m], self._cost[n] + PRIOR_SLOPE * (m - n))


@dataclass
class Drafting:
    """A sequence's prompt-lookup drafts: what it looks up in, how long to draft, what happened. The one
    bookkeeping of the greedy loop below and of sequence 0 among candidates (candidates.py)."""
    lookup: PromptLookup
    policy: DraftPolicy
    stats: DraftStats

    def draft(self, room: int) -> list[int]:
        """The draft for this step: as long as the policy expects to pay, at most `room` tokens ([]: none)."""
        k = self.policy.next(room) if room > 0 else 0
        return self.lookup.draft(k) if k > 0 else []

    def settle(self, llama_cpp: Any, mem: Any, drafted: int, accepted: int, kept_until: int,
               seconds: float | None = None) -> None:
        """`drafted` tokens were verified and `accepted` of them kept: count them, tell the policy (with
        the batch's `seconds` when it measures what a draft costs; None: acceptance only), and remove
        sequence 0's cells from `kept_until` on (the drafts not accepted) when some were rejected."""
        self.stats.drafted += drafted
        self.stats.accepted += accepted
        if seconds is None:
            self.policy.observe(drafted, accepted)
        else:
            self.policy.verified(drafted, accepted, seconds)
        if accepted < drafted:
            llama_cpp.llama_memory_seq_rm(mem, 0, kept_until, -1)


def greedy_tokens(llama_cpp: Any, llm: Any, history: list[int], budget: int, cancelled: Callable[[], bool],
                  policy: DraftPolicy | None, stats: DraftStats, memo: LogitsMemo | None = None,
                  first: np.ndarray | None = None) -> Iterator[int]:
    """Greedy tokens after `history`, whose last token's logits are current in sequence 0 (or given as
    `first`); at most `budget` of them, none after a cancel. The caller may stop early (a stop string):
    `llm.input_ids` and `llm.n_tokens` always say which tokens the KV cache holds (the last token
    yielded before a decode is not evaluated yet; accepted drafts are, even those after where the
    caller stopped). `memo` keeps the logits of every cell decoded."""
    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    batch = llm._batch.batch
    n_vocab = llm.n_vocab()
    n_ctx = min(llm.n_ctx(), len(llm.input_ids))
    n_batch = int(llm.n_batch)  # tokens one decode call can take
    drafting = Drafting(PromptLookup(history, budget), policy, stats) if policy is not None else None

    def logits(row: int) -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, row), shape=(n_vocab,))

    def argmax(row: int) -> int:
        return int(np.argmax(logits(row)))

    token, made = (argmax(-1) if first is None else int(np.argmax(first))), 0
    while True:
        made += 1
        yield token
        if made >= budget or cancelled():
            return
        n_past = llm.n_tokens
        if drafting is not None:
            drafting.lookup.append(token)
        draft = drafting.draft(min(budget - made, n_ctx - n_past - 2, n_batch - 1)) if drafting is not None else []
        row_tokens = [token] + draft
        for row, t in enumerate(row_tokens):
            batch.token[row], batch.pos[row] = t, n_past + row
            batch.n_seq_id[row], batch.logits[row] = 1, True
            batch.seq_id[row][0] = 0
        batch.n_tokens = len(row_tokens)
        started = time.perf_counter()
        if (rc := llama_cpp.llama_decode(ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) verifying {len(draft)} drafted tokens")
        seconds = time.perf_counter() - started
        chosen = [argmax(0)]
        while len(chosen) <= len(draft) and chosen[-1] == draft[len(chosen) - 1]:
            chosen.append(argmax(len(chosen)))
        accepted = len(chosen) - 1
        kept = 1 + accepted  # cells holding `token` and the accepted drafts
        llm.input_ids[n_past: n_past + kept] = row_tokens[:kept]
        llm.n_tokens = n_past + kept
        if memo is not None:
            for row in range(kept):
                memo.keep(n_past + row, logits(row))
        if drafting is not None and draft:
            drafting.settle(llama_cpp, mem, len(draft), accepted, n_past + kept, seconds)
        elif drafting is not None:
            drafting.policy.single_step(seconds)
        for t in chosen[:-1]:
            made += 1
            yield t
            if drafting is not None:
                drafting.lookup.append(t)
            if made >= budget:
                return
        token = chosen[-1]

