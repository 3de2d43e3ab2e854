"""Reusing a cached chunk that sits AFTER an edit (the suffix of infill / FIM prompts).

Prefix reuse alone pays len(suffix) tokens per keystroke for prompts laid out as
`prefix <sentinel> suffix <sentinels>`: one typed character changes every later token's
position. Like llama-server's `--cache-reuse`, we instead move the cached suffix cells to their
new positions (`llama_memory_seq_add` re-rotates the keys: RoPE is relative) and evaluate only
the edited tokens plus the prompt's tail.

llama.cpp requires a batch's positions for a sequence to continue right after that sequence's
last cached position ("inconsistent sequence positions ... Y = X + 1"), so typed tokens cannot
be decoded in sequence 0 while the suffix still sits after them. They are decoded in sequence 1,
which shares the prefix cells (seq_cp shares cells, it copies nothing), and then handed to
sequence 0. That needs a context with n_seq_max >= 2 and a unified KV buffer
(`enable_second_sequence`).

The reused cells were computed attending to the OLD text before them: an approximation (exact
for a one-layer model, where a layer's keys/values depend only on the token and position). The
engine bounds how many edited tokens the cells may have missed before it re-evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

MIN_REUSE_TOKENS = 16  # shorter chunks are cheaper to evaluate than to bookkeep
ANCHOR = 4  # k-gram used to find candidate chunk starts
MAX_CANDIDATES = 16  # per k-gram: repeated indentation must not make the search quadratic


@dataclass(frozen=True)
class ReusePlan:
    prefix: int  # new[:prefix] == cached[:prefix], kept in place
    insert_end: int  # new[prefix:insert_end] is decoded in sequence 1 (may be empty)
    chunk_from: int  # cached[chunk_from:chunk_from + length] == new[insert_end:insert_end + length]
    length: int

    @property
    def reused_end(self) -> int:
        """new[:reused_end] is in the cache once the plan ran; the rest is evaluated normally."""
        return self.insert_end + self.length

    @property
    def shift(self) -> int:
        return self.insert_end - self.chunk_from


def plan_reuse(cached: Sequence[int], new: list[int], prefix: int) -> ReusePlan | None:
    """The longest chunk of `new` after `prefix` that is also in `cached` after `prefix`, if it
    saves at least MIN_REUSE_TOKENS. The prompt's last token is never reused (its logits are sampled)."""
    limit = len(new) - 1
    if limit - prefix < MIN_REUSE_TOKENS or len(cached) - prefix < MIN_REUSE_TOKENS:
        return None
    cached = cached.tolist() if hasattr(cached, "tolist") else [int(t) for t in cached]  # numpy ints compare slowly
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(prefix, len(cached) - ANCHOR + 1):
        starts = index.setdefault(tuple(cached[i:i + ANCHOR]), [])
        if len(starts) < MAX_CANDIDATES:
            starts.append(i)
    # The longest chunk wins: what is left to evaluate is len(new) - prefix - length. After a
    # match the scan jumps past it: linear time, and an edit leaves one long chunk anyway.
    best, best_from, best_at, j = 0, -1, -1, prefix
    while j <= limit - MIN_REUSE_TOKENS:
        found, found_from = 0, -1
        for i in index.get(tuple(new[j:j + ANCHOR]), ()):
            n = 0
            while j + n < limit and i + n < len(cached) and cached[i + n] == new[j + n]:
                n += 1
            if n > found:
                found, found_from = n, i
        if found >= MIN_REUSE_TOKENS:
            if found > best:
                best, best_from, best_at = found, found_from, j
            j += found
        else:
            j += 1
    return ReusePlan(prefix, best_at, best_from, best) if best else None


def enable_second_sequence(llm: Any) -> None:
    """Recreate `llm`'s context with several sequences over one unified KV buffer (Llama() has no
    parameter for it): sequence 1 for moving cached chunks, up to MAX_CANDIDATES for candidates, one more for
    the background window. Unified: with separate buffers each sequence would get n_ctx / 2 cells."""
    import llama_cpp
    from llama_cpp import _internals

    params = llm.context_params
    from .candidates import MAX_CANDIDATES

    original = params.n_seq_max, params.kv_unified
    # The old context (its KV cache and compute buffers) goes first: with both alive at once every load
    # peaked ~45 MiB above what the engine holds afterwards (SmolLM2, n_ctx 2048).
    llm._ctx.close()
    # One more sequence, and half a window more cells, for the full window built in the background while
    # a short one answers (engine/background.py). Fitting still uses len(llm.input_ids), the window asked for.
    params.n_seq_max, params.kv_unified = MAX_CANDIDATES + 1, True
    original_cells = params.n_ctx
    params.n_ctx = original_cells + original_cells // 2
    try:
        ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
    except Exception:
        params.n_seq_max, params.kv_unified = original  # the context Llama() made: prefix reuse still works
        params.n_ctx = original_cells
        llm._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
        llm._stack.callback(llm._ctx.close)
        raise
    llm._ctx = ctx
    llm._stack.callback(ctx.close)
    llm.n_tokens = 0
    if not llama_cpp.llama_memory_can_shift(ctx.memory):
        raise RuntimeError("this model's KV cache cannot shift positions")


def apply_plan(llm: Any, plan: ReusePlan, new: list[int], chunk: int,
               cancelled: Callable[[], bool]) -> tuple[str | Exception, int]:
    """Run `plan` on `llm`'s cache (sequence 0 == llm.input_ids[:llm.n_tokens]). Afterwards
    llm.n_tokens == plan.reused_end and the caller evaluates new[reused_end:] with llm.eval, which
    also computes the logits sampled next. Returns ("done" | "cancelled" | the llama.cpp error,
    tokens decoded); the cancel is checked before each chunk. Unless done, the cache is left
    holding new[:plan.prefix] only, so the plain prefix path can take over."""
    import llama_cpp

    mem, ctx = llm._ctx.memory, llm._ctx.ctx
    a, j, i, b = plan.prefix, plan.insert_end, plan.chunk_from, plan.length
    decoded = 0
    try:
        llama_cpp.llama_memory_seq_rm(mem, 0, i + b, -1)  # stale tail (e.g. last suggestion)
        llama_cpp.llama_memory_seq_rm(mem, 0, a, i)  # the replaced text
        if j > a:
            llama_cpp.llama_memory_seq_cp(mem, 0, 1, 0, a)  # seq 1 sees the prefix, not the chunk
            batch = llm._batch.batch
            for start in range(a, j, chunk):
                if cancelled():
                    raise _Cancelled
                part = new[start:min(j, start + chunk)]
                batch.n_tokens = len(part)
                for k, token in enumerate(part):
                    batch.token[k], batch.pos[k], batch.n_seq_id[k], batch.logits[k] = token, start + k, 1, False
                    batch.seq_id[k][0] = 1
                if (rc := llama_cpp.llama_decode(ctx, batch)) != 0:
                    raise RuntimeError(f"llama_decode returned {rc} for sequence 1")
                decoded += len(part)
        if plan.shift:
            llama_cpp.llama_memory_seq_add(mem, 0, i, i + b, plan.shift)
        if j > a:
            llama_cpp.llama_memory_seq_cp(mem, 1, 0, a, j)
            llama_cpp.llama_memory_seq_rm(mem, 1, -1, -1)
    except Exception as exc:  # noqa: BLE001 - the caller falls back to the plain path
        llama_cpp.llama_memory_seq_rm(mem, 1, -1, -1)
        llama_cpp.llama_memory_seq_rm(mem, 0, a, -1)
        llm.n_tokens = a
        return ("cancelled" if isinstance(exc, _Cancelled) else exc), decoded
    llm.input_ids[a:plan.reused_end] = new[a:plan.reused_end]
    llm.n_tokens = plan.reused_end
    return "done", decoded


class _Cancelled(Exception):
    pass
