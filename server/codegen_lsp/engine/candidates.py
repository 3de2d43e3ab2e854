"""Several suggestions from one prompt evaluation: the prompt's KV cells are shared with more sequences
(`llama_memory_seq_cp` shares cells in the unified cache, it copies nothing), each sequence starts
from another of the best first tokens, and all of them decode together, one batch per step.

The first tokens are the top ones the model gives after the prompt (among the tokens token healing
allows, when the prompt lost its last token), skipping those that differ from a better one only in
whitespace (they end as the same suggestion): the candidates differ where the choice matters, and
sequence 0 is the greedy suggestion itself. Each sequence then goes on greedily (or sampled, with a
temperature), with its own healing, stop strings, loop detection and budget.

With `promptLookup` and greedy decoding, sequence 0 (the suggestion itself) drafts as the single
greedy loop does (engine/speculation.py): the draft rides in the same batch as every sequence's next
token, the longest agreeing prefix is kept and the cells of the rest are removed. Sampled candidates
(temperature > 0) and the alternatives do not draft: an alternative ends with its first line, and
sampled tokens would need speculative-sampling acceptance to keep their distribution.

The alternatives (sequences after 0) end with their first line of code. Their difference is in that
line, accepting one line brings the next suggestion anyway, and on CPU each sequence in the batch
costs almost as much as the first (a 3-sequence llama.cpp step is ~1.9x a 1-sequence one on 2
cores): full-length alternatives would double the time of an explicit request. Runs in the engine
process, on the runner's llama.cpp context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .decode_rules import DecodeRules
from .healing import TokenHealer, pick
from .jobs import GenerationJob
from .speculation import Drafting

MAX_CANDIDATES = 9  # sequences the context is created with (kv_reuse uses sequence 1 only in passing)


@dataclass
class Candidate:
    seq: int
    removed: bytes  # what token healing took off the prompt; this candidate spells it out first
    rules: DecodeRules | None  # when it ends and where it is cut (decode_rules.py)
    tokens: list[int] = field(default_factory=list)
    pieces: bytearray = field(default_factory=bytearray)
    rest: bytes = b""
    fed: int = 0  # tokens evaluated in the context (the last sampled one is not)
    finish: str = ""
    row: int = -1

    @property
    def visible(self) -> str:
        return self.pieces[len(self.removed):].decode("utf-8", "ignore")


def decode_candidates(llama_cpp: Any, llm: Any, prompt_len: int, count: int, job: GenerationJob,
                      healer: TokenHealer, removed: bytes, end_ids: set[int], max_tokens: int,
                      before_cursor: str, rng: np.random.Generator,
                      drafting: Drafting | None = None) -> list[Candidate]:
    """Decode up to `count` candidates after a prompt of `prompt_len` tokens in sequence 0 (its last
    logits are current). Afterwards sequence 0 holds the prompt and candidate 0's evaluated tokens, and
    `llm.input_ids` / `llm.n_tokens` say so; the other sequences are removed. With `drafting` (greedy
    jobs only: the caller passes none for sampled ones), sequence 0 drafts from its lookup."""
    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    n_vocab = llm.n_vocab()

    def logits_of(row: int) -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, row), shape=(n_vocab,))

    pool = healer.allowed(removed) if removed else np.arange(n_vocab, dtype=np.intc)
    pool = pool[~np.isin(pool, list(end_ids))]
    first = logits_of(-1)
    candidates = []
    # Choosing a line by the text below (job.suffix_fit): a first token of whitespace only would spend a
    # candidate on indentation the editor already gave the line.
    for seq, token in enumerate(_distinct_firsts(first, pool, count, healer.pieces, removed,
                                                 skip_blank=bool(job.suffix_fit))):
        if seq:
            llama_cpp.llama_memory_seq_cp(mem, 0, seq, 0, prompt_len)
        # an alternative (a sequence after 0) ends with its first line of code (see the top)
        candidate = Candidate(seq, removed, DecodeRules(job, before_cursor, max_tokens, first_line=seq > 0),
                              rest=removed)
        _take(candidate, token, healer)
        candidates.append(candidate)
    if drafting is not None and candidates:
        drafting.lookup.append(candidates[0].tokens[0])
    try:
        _decode(llama_cpp, llm, ctx, candidates, prompt_len, job, healer, end_ids, max_tokens, logits_of, rng,
                drafting)
    finally:
        for candidate in candidates[1:]:
            llama_cpp.llama_memory_seq_rm(mem, candidate.seq, -1, -1)
    if candidates:
        main = candidates[0]
        llm.input_ids[prompt_len:prompt_len + main.fed] = main.tokens[:main.fed]
        llm.n_tokens = prompt_len + main.fed
    return candidates


def _distinct_firsts(logits: np.ndarray, pool: np.ndarray, count: int, pieces: list[bytes],
                     removed: bytes, skip_blank: bool = False) -> list[int]:
    """The best `count` first tokens of `pool` whose text (after what healing removed) differs from a
    better one's by more than whitespace; looks at the best few dozen only. `skip_blank`: none whose
    text after the removed part is whitespace only (the greedy first token is kept whatever it is)."""
    ranked = pool[np.argsort(-logits[pool], kind="stable")[:max(count * 8, 32)]] if len(pool) else pool[:0]
    chosen, seen = [], set()
    for token in ranked.tolist():
        piece = pieces[token]
        # a token that only spells part of the removed text decides nothing yet: never a duplicate
        key = b"".join(piece[len(removed):].split()) if len(piece) > len(removed) else token
        if key in seen or (skip_blank and chosen and key == b""):
            continue
        seen.add(key)
        chosen.append(token)
        if len(chosen) == count:
            break
    return chosen


def _decode(llama_cpp: Any, llm: Any, ctx: Any, candidates: list[Candidate], prompt_len: int, job: GenerationJob,
            healer: TokenHealer, end_ids: set[int], max_tokens: int, logits_of: Callable[[int], np.ndarray],
            rng: np.random.Generator, drafting: Drafting | None = None) -> None:
    batch = llm._batch.batch
    mem = llama_cpp.llama_get_memory(ctx)
    n_ctx, n_batch = min(llm.n_ctx(), len(llm.input_ids)), int(llm.n_batch)
    while active := [c for c in candidates if not c.finish]:
        if job.cancel.is_set():
            for candidate in active:
                candidate.finish = "cancelled"
            return
        # The prompt was fitted to leave room for one suggestion: when the sequences together would need more
        # cells than the context has, the last alternatives end where they are (the suggestion itself last).
        while prompt_len + sum(c.fed for c in candidates) + len(active) > n_ctx:
            active.pop().finish = "length"
            if not active:
                return
        for row, candidate in enumerate(active):
            batch.token[row], batch.pos[row] = candidate.tokens[-1], prompt_len + candidate.fed
            batch.n_seq_id[row], batch.logits[row] = 1, True
            batch.seq_id[row][0] = candidate.seq
            candidate.row = row
        cells = prompt_len + sum(c.fed for c in candidates) + len(active)  # in use once this step's rows are in
        draft = _draft(drafting, active, cells, max_tokens, n_ctx, n_batch)
        main = active[0]  # sequence 0 when it drafts
        for i, token in enumerate(draft):
            row = len(active) + i
            batch.token[row], batch.pos[row] = token, prompt_len + main.fed + 1 + i
            batch.n_seq_id[row], batch.logits[row] = 1, True
            batch.seq_id[row][0] = 0
        batch.n_tokens = len(active) + len(draft)
        if (rc := llama_cpp.llama_decode(ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) decoding {len(active)} candidates")
        used = 0  # rows sequence 0 consumed: its own and the drafts greedy agreed with
        for candidate in active:
            rows = [candidate.row] + ([len(active) + i for i in range(len(draft))] if candidate is main else [])
            for row_index, row in enumerate(rows):
                candidate.fed += 1  # this row's token is in the cache now
                used += candidate is main
                logits = logits_of(row)
                if candidate.rest:
                    token = pick(logits, healer.allowed(candidate.rest), job.temperature, rng)
                elif job.temperature <= 0.0:
                    token = int(np.argmax(logits))
                else:
                    token = pick(logits, np.arange(len(logits), dtype=np.intc), job.temperature, rng)
                if token in end_ids and not candidate.rest:
                    candidate.finish = "end"
                    break
                _take(candidate, token, healer)
                if drafting is not None and candidate.seq == 0:
                    drafting.lookup.append(token)
                # the next row holds the next drafted token: it counts only if greedy chose it here
                if candidate.finish or row_index + 1 >= len(rows) or token != draft[row_index]:
                    break
        if draft and drafting is not None:
            # rows past the first that sequence 0 went on to; the cells of the others (rejected, or after
            # its end) go. No time: a batch with other sequences in it says nothing about a draft's cost.
            drafting.settle(llama_cpp, mem, len(draft), used - 1, prompt_len + main.fed)


def _draft(drafting: Drafting | None, active: list[Candidate], cells: int, max_tokens: int, n_ctx: int,
           n_batch: int) -> list[int]:
    """Sequence 0's draft for this step ([] when it does not draft): limited by its budget, by the cells
    left in the context (every sequence's tokens and this step's rows), and by one batch."""
    if drafting is None or active[0].seq != 0 or active[0].rest:
        return []
    main = active[0]
    return drafting.draft(min(max_tokens - len(main.tokens), n_ctx - cells - 1, n_batch - len(active)))


def _take(candidate: Candidate, token: int, healer: TokenHealer) -> None:
    """Append a sampled token and decide whether the candidate is finished."""
    candidate.tokens.append(token)
    candidate.pieces += healer.pieces[token]
    if candidate.rest:
        candidate.rest = healer.advance(candidate.rest, token)
        if candidate.rest:
            return
    assert candidate.rules is not None
    candidate.finish = candidate.rules.check(candidate.visible, len(candidate.tokens)) or ""


def final_text(candidate: Candidate) -> str:
    text = candidate.pieces[len(candidate.removed):].decode("utf-8", "replace") if not candidate.rest else ""
    return candidate.rules.cut(text, candidate.finish) if candidate.rules is not None else text


# MAX_CANDIDATES is 9: up to 8 candidates (context/suffix_fit.py asks for 8), scored against the text after the
# cursor in sequences 1-8 beside sequence 0.

def first_line(candidate: Candidate) -> str:
    """The candidate's first line of code (what an alternative is; the main candidate may go on)."""
    text = final_text(candidate)
    start = len(text) - len(text.lstrip())
    end = text.find("\n", start)
    return text if end < 0 else text[:end]


def suffix_scores(llama_cpp: Any, llm: Any, prompt_len: int, continuations: list[tuple[list[int], int] | None],
                  cancelled: Callable[[], bool]) -> list[float] | None:
    """How well the text after the cursor follows each candidate: the summed log-probability of the
    tokens of `continuation[i][0]` from index `continuation[i][1]` on (the suffix's tokens), each
    candidate's continuation decoded in its own sequence after the prompt, all in one batch. None when
    they do not fit the batch or the context (the caller keeps the model's order); -inf for None entries
    (nothing to score: an empty candidate). Sequence 0 (the prompt and candidate 0) is left as it was."""
    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    batch = llm._batch.batch
    n_ctx, n_batch, n_vocab = min(llm.n_ctx(), len(llm.input_ids)), int(llm.n_batch), llm.n_vocab()
    scored = [(i, c) for i, c in enumerate(continuations) if c is not None and 0 < c[1] < len(c[0])]
    rows = sum(len(tokens) for _, (tokens, _) in scored)
    if not scored or len(scored) >= MAX_CANDIDATES or rows > n_batch or llm.n_tokens + rows > n_ctx or cancelled():
        return None
    where: list[tuple[int, int, int]] = []  # (candidate, row, token the row predicts)
    row = 0
    for seq, (i, (tokens, start)) in enumerate(scored, start=1):
        llama_cpp.llama_memory_seq_cp(mem, 0, seq, 0, prompt_len)
        for j, token in enumerate(tokens):
            wanted = start - 1 <= j < len(tokens) - 1  # this row's logits predict a suffix token
            batch.token[row], batch.pos[row] = token, prompt_len + j
            batch.n_seq_id[row], batch.logits[row] = 1, wanted
            batch.seq_id[row][0] = seq
            if wanted:
                where.append((i, row, tokens[j + 1]))
            row += 1
    batch.n_tokens = row
    try:
        if (rc := llama_cpp.llama_decode(ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) scoring {len(scored)} candidates")
        scores = [float("-inf")] * len(continuations)
        for i, _ in scored:
            scores[i] = 0.0
        for i, r, token in where:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, r), shape=(n_vocab,))
            top = float(logits.max())
            scores[i] += float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))
        return scores
    finally:
        for seq in range(1, len(scored) + 1):
            llama_cpp.llama_memory_seq_rm(mem, seq, -1, -1)
