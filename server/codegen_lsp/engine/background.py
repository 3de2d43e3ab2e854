"""The full prompt window, built in the background while a short one answers (issue: the first keystroke).

A file just opened has nothing in the KV cache: its first prompt (up to the whole window, ~2k tokens) took
10 s on 2 cores before anything appeared. When a job says how long its prompt may take
(`GenerationJob.prompt_budget_s`) and the cache holds less than that allows, sequence 0 answers from a short
window (the text nearest the cursor that fits the budget at `PromptRate`'s measured speed), and the full
window is evaluated in a sequence of its own, `BACKGROUND_SEQ`, in small chunks, by warm-up jobs that any
request pre-empts. Nothing the short answers do in sequence 0 touches it, so its progress survives every
keystroke; once it holds the whole window it is adopted: sequence 0 becomes it (`adopt`), and from then on
keystrokes reuse the full window as before.

The context is created with room for both (kv_reuse.enable_second_sequence: 1.5 × n_ctx cells in one unified
buffer), and a foreground job that needs the cells drops the background window first (`make_room`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .candidates import MAX_CANDIDATES

BACKGROUND_SEQ = MAX_CANDIDATES  # 0 answers, 1..MAX_CANDIDATES-1 are candidates (1 also kv_reuse's)
# A background chunk. A cancel does not wait for it: llama.cpp's abort callback checks the cancel between the
# graph's nodes and drops the chunk's cells (`abortable`), so a request waits well under one decode step.
CHUNK_TOKENS = 64
ABORTED = 2  # llama_decode's return code when the abort callback stopped it


@contextlib.contextmanager
def abortable(llm: Any, cancelled: Callable[[], bool]) -> Iterator[None]:
    """While inside, a llama_decode on `llm` stops at its next graph node once `cancelled()` (it returns
    ABORTED, and llama.cpp removes the cells of the unfinished batch from the sequences it wrote)."""
    import llama_cpp

    callback = llama_cpp.ggml_abort_callback(lambda _data: bool(cancelled()))  # kept alive by this frame
    llama_cpp.llama_set_abort_callback(llm._ctx.ctx, callback, None)
    try:
        yield
    finally:
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, llama_cpp.ggml_abort_callback(), None)
MIN_RATE_TOKENS = 32  # evaluations shorter than this say little about the speed


class PromptRate:
    """Prompt tokens evaluated per second on this machine, this model: a moving average of what was seen."""

    def __init__(self) -> None:
        self.per_second = 0.0

    def observe(self, tokens: int, seconds: float) -> None:
        if tokens >= MIN_RATE_TOKENS and seconds > 0:
            rate = tokens / seconds
            self.per_second = rate if not self.per_second else 0.7 * self.per_second + 0.3 * rate

    def tokens_within(self, seconds: float) -> int:
        """How many prompt tokens fit in `seconds` (0 while the speed is unknown)."""
        return int(self.per_second * seconds)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if not n:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(differ[0]) if len(differ) else n


class BackgroundWindow:
    """What `BACKGROUND_SEQ` holds: `tokens` at positions 0..len-1 (all evaluated, exactly)."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        # Cells shared with sequence 0 (seeded from it): moving sequence 0's cells (kv_reuse's shift) would
        # move these too, so the caller clears this window first.
        self.shared = False

    def clear(self, llm: Any) -> None:
        if self.tokens:
            import llama_cpp

            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm._ctx.ctx), BACKGROUND_SEQ, -1, -1)
        self.tokens, self.shared = [], False

    def covered(self, tokens: Sequence[int]) -> int:
        return common_prefix(self.tokens, tokens)

    def make_room(self, llm: Any, cells: int) -> None:
        """Sequence 0 is about to hold `cells` cells: drop this window if both would not fit."""
        if self.tokens and cells + len(self.tokens) > llm.n_ctx():
            self.clear(llm)

    def extend(self, llm: Any, tokens: list[int], exact0: int, cancelled: Callable[[], bool]) -> tuple[int, bool]:
        """Evaluate `tokens` in this sequence, from what it (or sequence 0's first `exact0` tokens, exact
        cells shared without copying) already holds; CHUNK_TOKENS at a time, stopping at a cancel.
        Returns (tokens evaluated, whether the whole window is there)."""
        import llama_cpp

        mem, ctx = llama_cpp.llama_get_memory(llm._ctx.ctx), llm._ctx.ctx
        have = self.covered(tokens)
        from_zero = min(exact0, common_prefix(llm.input_ids[:llm.n_tokens], tokens))
        if from_zero > have:  # sequence 0 holds more of this window: share its cells
            llama_cpp.llama_memory_seq_rm(mem, BACKGROUND_SEQ, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, BACKGROUND_SEQ, 0, from_zero)
            have, self.shared = from_zero, True
        else:
            llama_cpp.llama_memory_seq_rm(mem, BACKGROUND_SEQ, have, -1)
        self.tokens = list(tokens[:have])
        evaluated, batch = 0, llm._batch.batch
        with abortable(llm, cancelled):
            while have < len(tokens):
                if cancelled():
                    return evaluated, False
                part = tokens[have:have + CHUNK_TOKENS]
                batch.n_tokens = len(part)
                for k, token in enumerate(part):
                    batch.token[k], batch.pos[k], batch.n_seq_id[k] = token, have + k, 1
                    batch.seq_id[k][0] = BACKGROUND_SEQ
                    batch.logits[k] = have + k == len(tokens) - 1  # the last token's logits are sampled first
                if (rc := llama_cpp.llama_decode(ctx, batch)) == ABORTED and cancelled():
                    return evaluated, False  # the chunk's cells are gone: this window holds self.tokens
                if rc != 0:
                    self.clear(llm)
                    raise RuntimeError(f"llama_decode returned {rc} for the background window")
                have += len(part)
                evaluated += len(part)
                self.tokens += part
        return evaluated, True

    def adopt(self, llm: Any, logits: bool) -> np.ndarray | None:
        """Sequence 0 becomes this window; the window is empty afterwards. `logits`: it was completed by the
        decode just run (its last token's logits are current): returns them."""
        import llama_cpp

        mem = llama_cpp.llama_get_memory(llm._ctx.ctx)
        row = (np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)).copy()
               if logits else None)
        llama_cpp.llama_memory_seq_rm(mem, 0, -1, -1)
        llama_cpp.llama_memory_seq_cp(mem, BACKGROUND_SEQ, 0, -1, -1)
        llama_cpp.llama_memory_seq_rm(mem, BACKGROUND_SEQ, -1, -1)
        n = len(self.tokens)
        llm.input_ids[:n] = self.tokens
        llm.n_tokens = n
        self.tokens, self.shared = [], False
        return row
