"""llama.cpp behind plain calls: load, generate, free. The engine process (engine/child.py) owns
one LlamaRunner and calls it from its one thread, in submission order; the language server never
imports llama_cpp itself (engine/process.py).

Prompt evaluation goes in chunks and decoding checks the job's cancel event
before every token, so a cancel lands within one chunk or one token. The prompt's longest common
token prefix with the previous request stays in the KV cache and is not evaluated again, and a
cached chunk after an edit (the suffix of infill prompts) is moved rather than re-evaluated:
see kv_reuse.
"""

from __future__ import annotations

import bisect
import logging
import os
import time
import contextlib
from typing import Any, Callable, Iterator

from dataclasses import replace

import numpy as np

from ..context.prompt import Segment, Text, expand, fit_segments
from ..gguf.inspect import ModelFileError, ModelFileInfo, inspect_model_file
from .background import ABORTED, CHUNK_TOKENS, BackgroundWindow, PromptRate, abortable, common_prefix
from .candidates import MAX_CANDIDATES, decode_candidates, final_text, first_line, suffix_scores
from .decode_rules import DecodeRules
from .healing import HealPlan, TokenHealer, pick
from .jobs import EngineConfig, GenerationJob, GenerationResult
from .kv_reuse import apply_plan, enable_second_sequence, plan_reuse
from .logits_memo import MEMO_ROWS, LogitsMemo
from .speculation import DraftPolicy, Drafting, DraftStats, PromptLookup, greedy_tokens
from .tokens import SpliceTokenizer, splice_rule

log = logging.getLogger(__name__)
PROMPT_CHUNK_TOKENS = 64  # a cancel waits at most one chunk's evaluation
# Moved cells keep keys/values computed against the text before them as it was: after this many
# tokens were inserted or removed in front of them, they are evaluated again.
MAX_DRIFT_TOKENS = 64
# Another candidate replaces the greedy one only when the text after the cursor is this much likelier
# after it (nats, summed over the suffix's tokens): a near tie keeps what the model preferred.
SUFFIX_MARGIN = 1.0
# A short window (GenerationJob.prompt_budget_s) is cut in blocks of this many lines, so its start stays put
# while the person types (its cells are reused) and it stays near its budget.
SHORT_BLOCK_LINES = 8
# A short window is never shorter than this, whatever the budget allows (it says too little below), so a
# prompt this short is always the full one: small files behave the same on every machine.
MIN_SHORT_TOKENS = 256


class LlamaRunner:
    def __init__(self, draft_policy: Callable[[], DraftPolicy] = DraftPolicy, memo_rows: int = MEMO_ROWS) -> None:
        """`draft_policy` makes the prompt-lookup policy of each loaded model (tests pin its costs);
        `memo_rows`: logits rows kept (logits_memo.py; 0: the last prompt token is always evaluated)."""
        self._llm: Any = None
        self._draft_policy = draft_policy
        self._drafts = draft_policy()  # learned while decoding, kept across generations of one model
        self._info: ModelFileInfo | None = None
        self._chunk_reuse = False  # kv_reuse works on this context
        # Cache cells from _exact_until on may be approximate (moved); _drift: tokens edited before them.
        self._exact_until, self._drift = 0, 0
        self._healer: TokenHealer | None = None
        self._heal_skips: set[str] = set()  # reasons already logged for this model
        self._rng = None
        self._tokens: SpliceTokenizer | None = None
        self._memo = LogitsMemo(memo_rows)  # logits of the cache's latest positions (logits_memo.py)
        self._background = BackgroundWindow()  # the full window built while short ones answer (background.py)
        self._rate = PromptRate()  # prompt tokens per second, measured

    @property
    def info(self) -> ModelFileInfo | None:
        return self._info

    def free(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm, self._info = None, None

    def forget_cache(self) -> None:
        """Drop what the KV cache holds: the next prompt is evaluated whole (benchmarks, tests)."""
        if self._llm is not None:
            self._llm.reset()  # n_tokens = 0: the next eval removes every cell after it
            self._exact_until, self._drift = 0, 0
            self._memo.clear()
            self._background.clear(self._llm)

    def load(self, config: EngineConfig, progress: Callable[[float], None] | None = None) -> ModelFileInfo:
        info = inspect_model_file(config.model_path)
        import llama_cpp

        self.free()
        n_ctx = max(64, min(config.n_ctx, info.context_length))
        started = time.perf_counter()
        try:
            with _load_progress(llama_cpp, progress):
                self._llm = llama_cpp.Llama(
                    model_path=str(config.model_path), n_ctx=n_ctx, n_batch=min(512, n_ctx),
                    n_threads=config.n_threads or os.cpu_count() or 1, n_gpu_layers=config.n_gpu_layers,
                    seed=config.seed, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(config.model_path, f"llama.cpp could not load it ({exc})") from None
        try:
            enable_second_sequence(self._llm)
            self._chunk_reuse = True
        except Exception as exc:  # noqa: BLE001 - prefix reuse still works on the original context
            self._chunk_reuse = False
            log.warning("KV chunk reuse disabled: %s", exc)
        self._exact_until, self._drift = 0, 0
        self._memo.clear()
        pieces = _vocab_pieces(llama_cpp, self._llm)
        self._healer, self._heal_skips = TokenHealer(pieces), set()
        self._tokens = _splice_tokenizer(llama_cpp, self._llm, pieces)
        self._drafts = self._draft_policy()  # another model: other costs, other acceptance
        self._rng = np.random.default_rng(config.seed)
        self._background, self._rate = BackgroundWindow(), PromptRate()
        self._measure_speed()
        self._info = info
        log.info("loaded %s (%s, %s) in %.2fs, n_ctx=%d", info.path, info.architecture, info.prompt_format.value,
                 time.perf_counter() - started, n_ctx)
        return info

    def _tokenize(self, text: str) -> list[int]:
        """Token ids of `text`: fitting the prompt to the window has just tokenized the very text the
        prompt is then built from, and the text of the keystroke before differs in one place (tokens.py)."""
        assert self._tokens is not None
        return list(self._tokens.ids(text))

    def idle_work(self) -> bool:
        """Do one piece of deferred work (checking a splice, tokens.py); whether any is left."""
        if self._tokens is None or not self._tokens.unchecked:
            return False
        try:
            self._tokens.check_one()
        except Exception as exc:  # noqa: BLE001 - a failed check must not end the engine
            log.warning("could not check a spliced tokenization (%s); prompts are tokenized whole", exc)
            self._tokens.splice = False
            return False
        return self._tokens.unchecked > 0

    def _token_starts(self, text: str) -> list[int]:
        """Where each token of `text` starts (code points): a guide for fitting the prompt."""
        assert self._tokens is not None
        starts = self._tokens.byte_starts(text)
        if text.isascii():
            return starts.tolist()
        # bytes -> code points: each character's UTF-8 length (a lone surrogate is encoded as "?", one
        # byte), summed, in numpy; a Python loop over the characters took ~2.5 ms per 20 KB file.
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        width = 1 + (cps >= 0x80) + (cps >= 0x800) + (cps >= 0x10000) - 2 * ((cps >= 0xD800) & (cps < 0xE000))
        return np.searchsorted(np.cumsum(width), starts, side="right").tolist()

    def _measure_speed(self) -> None:
        """Evaluate a small prompt twice: the first pays for paging the weights in and repacking them (so
        the first suggestion does not), the second says how fast prompts go here (PromptRate)."""
        llm = self._llm
        probe = self._tokenize("def example(value, other):\n    return value + other\n\n" * 8)[:64]
        if len(probe) < 32:
            return
        try:
            llm.eval(probe[:32])
            llm.n_tokens = 0
            started = time.perf_counter()
            llm.eval(probe)
            self._rate.observe(len(probe), time.perf_counter() - started)
        finally:
            llm.n_tokens = 0  # the next evaluation removes these cells

    def _prompt(self, segments: list[Segment], job: GenerationJob, budget: int,
                block_lines: int | None = None) -> tuple[list[int], HealPlan, str]:
        """The prompt's tokens fitted to `budget` (token healing applied), the healing plan, and the text
        before the cursor."""
        info = self._info
        assert info is not None
        fitted = fit_segments(segments, budget, lambda t: len(self._tokenize(t)), job.prefix_share,
                              self._token_starts, **({"block_lines": block_lines} if block_lines else {}))
        tokens: list[int] = []
        heal, before_cursor = HealPlan([], b""), ""
        for segment in expand(fitted):
            if not isinstance(segment, Text):
                tokens.append(segment.token_id)
                continue
            ids = self._tokenize(segment.text)
            if segment.role == "prefix":
                before_cursor = segment.text
            if segment.role == "prefix" and job.heal and self._healer is not None:
                heal = self._healer.plan(ids, segment.text)
                ids = heal.tokens
                if heal.skipped and heal.skipped not in self._heal_skips:
                    self._heal_skips.add(heal.skipped)
                    log.info("token healing skipped: %s", heal.skipped)
            tokens += ids
        if not tokens:
            tokens = [info.token_ids.get("eos", 0)]
        return tokens, heal, before_cursor

    def _short_limit(self, job: GenerationJob, n_ctx: int) -> tuple[int, int]:
        """(prompt tokens the job's budget allows to evaluate, the short window's size); (0, 0): no budget,
        or no background sequence. The window is at most a quarter of the context (the cells it shares with
        the background window) and at least MIN_SHORT_TOKENS, even where the budget allows fewer."""
        if job.prompt_budget_s <= 0 or not self._chunk_reuse or n_ctx // 4 < MIN_SHORT_TOKENS:
            return 0, 0
        allowed = max(MIN_SHORT_TOKENS, self._rate.tokens_within(job.prompt_budget_s))
        return allowed, min(n_ctx // 4, allowed)

    def _short_window(self, llm: Any, job: GenerationJob, tokens: list[int], limit: tuple[int, int]):
        """The short prompt to answer from when the cache cannot give the full one within the budget, or
        None (the full one it is). A background window that holds nearly all of it becomes sequence 0."""
        allowed, size = limit
        if len(tokens) - common_prefix(llm.input_ids[:llm.n_tokens], tokens) <= allowed:
            return None
        if len(tokens) - self._background.covered(tokens) <= allowed:
            self._background.adopt(llm, logits=False)
            self._memo.clear()
            self._exact_until, self._drift = llm.n_tokens, 0
            return None
        short = self._prompt(job.segments, job, size, SHORT_BLOCK_LINES)  # other files' chunks: half at most
        return short if len(short[0]) < len(tokens) else None

    def generate(self, job: GenerationJob) -> GenerationResult:
        if job.cancel.is_set():
            return GenerationResult("", "cancelled")
        llm, info = self._llm, self._info
        if llm is None or info is None:
            raise ModelFileError("model", "no model is loaded")
        # llama.cpp may round the context up (to 256) while llama-cpp-python sizes its token buffer
        # by the n_ctx asked for: the smaller one is the real limit.
        n_ctx = min(llm.n_ctx(), len(llm.input_ids))
        max_tokens = max(1, min(job.max_tokens, n_ctx // 2))
        tokens, heal, before_cursor = self._prompt(job.segments, job, n_ctx - max_tokens - 1)
        limit = self._short_limit(job, n_ctx)
        if job.warm_only:
            return self._warm(llm, job, tokens, limit)
        short = self._short_window(llm, job, tokens, limit) if limit[0] else None
        if short is not None:
            tokens, heal, before_cursor = short
        self._background.make_room(llm, len(tokens) + max_tokens * max(1, job.candidates) + PROMPT_CHUNK_TOKENS)
        result = self._decode(llm, info, job, tokens, heal, before_cursor, max_tokens)
        return replace(result, window="short") if short is not None else result

    def _warm(self, llm: Any, job: GenerationJob, tokens: list[int], limit: tuple[int, int]) -> GenerationResult:
        """A warm-up (`job.warm_only`): make the prompt at the cursor ready without decoding. When the full
        window would take longer than the job's budget, the short window goes into sequence 0 first (a
        request now answers at once), then the full one into the background sequence, adopted as soon as
        it is whole. Small chunks: a request waits at most one for the cancel that pre-empts this."""
        started = time.perf_counter()
        evaluated, window, whole = 0, "full", False
        allowed, size = limit
        if allowed and len(tokens) - common_prefix(llm.input_ids[:llm.n_tokens], tokens) > allowed:
            short = self._prompt(job.segments, job, size, SHORT_BLOCK_LINES)[0]
            if len(short) < len(tokens):
                evaluated += self._fill(llm, short, job.cancel.is_set)
                window = "short"
            if not job.cancel.is_set():
                if llm.n_tokens + len(tokens) > llm.n_ctx():  # room for both: sequence 0 keeps its prompt only
                    llm.n_tokens = min(llm.n_tokens, len(short))
                    import llama_cpp

                    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm._ctx.ctx), 0, llm.n_tokens, -1)
                done, whole = self._background.extend(llm, tokens, self._exact_until, job.cancel.is_set)
                evaluated += done
                if whole:
                    row = self._background.adopt(llm, logits=True)
                    self._memo.clear()
                    if row is not None:
                        self._memo.keep(len(tokens) - 1, row)
                    self._exact_until, self._drift, window = len(tokens), 0, "full"
        else:
            evaluated += self._fill(llm, tokens, job.cancel.is_set)
            whole = llm.n_tokens == len(tokens)
        seconds = time.perf_counter() - started
        self._rate.observe(evaluated, seconds)
        return GenerationResult("", "warm" if whole else "cancelled", len(tokens), evaluated, 0, seconds, window=window)

    def _fill(self, llm: Any, tokens: list[int], cancelled: Callable[[], bool]) -> int:
        """Evaluate `tokens` into sequence 0 (its cached prefix reused), CHUNK_TOKENS at a time until a
        cancel; the last token's logits are kept. Returns the tokens evaluated."""
        reused = common_prefix(llm.input_ids[:llm.n_tokens], tokens)
        if reused == len(tokens) and self._memo.get(len(tokens) - 1) is not None:
            return 0
        reused = min(reused, len(tokens) - 1)
        self._background.make_room(llm, len(tokens))
        self._memo.forget_from(reused)
        llm.n_tokens = reused  # eval() drops sequence 0's cells past n_tokens
        with abortable(llm, cancelled):
            for start in range(reused, len(tokens), CHUNK_TOKENS):
                if cancelled():
                    break
                try:
                    llm.eval(tokens[start:start + CHUNK_TOKENS])
                except RuntimeError as exc:  # n_tokens stays where the chunk began, its cells are gone
                    if str(exc) != f"llama_decode returned {ABORTED}" or not cancelled():
                        raise
                    break
        if reused <= self._exact_until:  # what was evaluated is exact
            self._exact_until, self._drift = llm.n_tokens, 0
        if llm.n_tokens == len(tokens):
            self._keep_last(llm)
        return llm.n_tokens - reused

    def _decode(self, llm: Any, info: ModelFileInfo, job: GenerationJob, tokens: list[int], heal: HealPlan,
                before_cursor: str, max_tokens: int) -> GenerationResult:
        started = time.perf_counter()
        greedy = job.temperature <= 0.0
        reused = _common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        # The last token's logits are what is sampled: evaluated again unless kept from when it was.
        first = self._memo.get(len(tokens) - 1) if reused == len(tokens) and greedy and job.candidates <= 1 else None
        if first is None:
            reused = min(reused, len(tokens) - 1)
        self._memo.forget_from(reused)  # every cell from there on is written below
        evaluated, plan, moved = 0, None, False
        if self._chunk_reuse:
            plan = plan_reuse(llm.input_ids[: llm.n_tokens], tokens, reused)
            edit = plan.insert_end + plan.chunk_from - 2 * plan.prefix if plan else 0  # inserted + removed
            if plan and self._drift + edit > MAX_DRIFT_TOKENS:
                plan, reused = None, min(reused, self._exact_until)  # evaluate the drifted cells again
        if plan and plan.shift and self._background.shared:
            self._background.clear(llm)  # its shared cells would move with sequence 0's
        if plan:
            outcome, evaluated = apply_plan(llm, plan, tokens, PROMPT_CHUNK_TOKENS, job.cancel.is_set)
            if outcome == "cancelled":
                return GenerationResult("", "cancelled", len(tokens), evaluated)
            if outcome == "done":
                moved, reused = True, plan.reused_end
                if plan.prefix <= self._exact_until:
                    self._exact_until = plan.insert_end
                self._drift += edit
            else:  # the cache now holds tokens[:plan.prefix]: go on with the plain path
                log.warning("KV chunk reuse failed, using prefix reuse only: %s", outcome)
                self._chunk_reuse, reused = False, plan.prefix
        if not moved and reused <= self._exact_until:  # everything after `reused` is evaluated afresh
            self._exact_until, self._drift = len(tokens), 0
        llm.n_tokens = reused  # eval() drops KV entries past n_tokens
        if first is not None:  # nothing to evaluate, but the cells after the prompt go
            import llama_cpp

            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm._ctx.ctx), 0, reused, -1)
        for start in range(reused, len(tokens), PROMPT_CHUNK_TOKENS):
            if job.cancel.is_set():
                return GenerationResult("", "cancelled", len(tokens), evaluated + start - reused)
            llm.eval(tokens[start:start + PROMPT_CHUNK_TOKENS])
        evaluated += len(tokens) - reused
        if first is None:
            self._keep_last(llm)
        prompt_seconds = time.perf_counter() - started
        self._rate.observe(evaluated, prompt_seconds)

        end_ids = set(info.end_token_ids) | {llm.token_eos()}
        pieces, finish, generated = bytearray(), "length", 0
        started = time.perf_counter()
        if job.candidates > 1 and self._chunk_reuse and self._healer is not None:
            self._memo.clear()  # other sequences share the cells: not tracked
            return self._candidates(llm, tokens, job, heal, end_ids, max_tokens, before_cursor, evaluated,
                                    prompt_seconds)
        if heal.removed:
            healed = self._heal(llm, heal.removed, job, pieces, first)
            first = None  # used by the first healing step
        else:
            healed = []
        if job.cancel.is_set():
            return GenerationResult("", "cancelled", len(tokens), evaluated, len(healed), prompt_seconds,
                                    time.perf_counter() - started)
        skip = len(heal.removed)  # generated bytes that only spell out what healing took off
        budget = max_tokens - len(healed)  # maxTokens counts the healing tokens too
        rules = DecodeRules(job, before_cursor, budget)
        drafts = DraftStats()
        if budget <= 0:
            decoded: Iterator[int] = iter(())
        elif greedy:  # our own loop: prompt-lookup drafts (engine/speculation.py), no re-evaluated last token
            import llama_cpp

            decoded = greedy_tokens(llama_cpp, llm, tokens + healed, budget, job.cancel.is_set,
                                    self._drafts if job.prompt_lookup else None, drafts, self._memo, first)
        else:
            self._memo.clear()  # llama-cpp-python's generate writes cells without telling the memo
            decoded = llm.generate(tokens + healed, temp=job.temperature, top_p=job.top_p, top_k=40,
                                   repeat_penalty=1.0)
        for token in decoded:
            if job.cancel.is_set():
                finish = "cancelled"
                break
            if token in end_ids:
                finish = "end"
                break
            generated += 1
            pieces += llm.detokenize([token])
            if (done := rules.check(pieces[skip:].decode("utf-8", "ignore"), generated)) is not None:
                finish = done
                break
        else:
            if job.cancel.is_set() and generated < budget:
                finish = "cancelled"  # greedy_tokens stops at a cancel
        text = rules.cut(pieces[skip:].decode("utf-8", "replace"), finish)
        return GenerationResult(text if finish != "cancelled" else "", finish, len(tokens), evaluated,
                                generated + len(healed), prompt_seconds, time.perf_counter() - started,
                                healed=heal.removed.decode("utf-8", "replace"), drafted_tokens=drafts.drafted,
                                accepted_tokens=drafts.accepted)

    def _candidates(self, llm: Any, tokens: list[int], job: GenerationJob, heal: HealPlan, end_ids: set[int],
                    max_tokens: int, before_cursor: str, evaluated: int, prompt_seconds: float) -> GenerationResult:
        """Several suggestions decoded together after the one prompt evaluation (engine/candidates.py)."""
        import llama_cpp

        started = time.perf_counter()
        drafts = DraftStats()
        drafting = (Drafting(PromptLookup(tokens, max_tokens), self._drafts, drafts)
                    if job.prompt_lookup and job.temperature <= 0.0 else None)
        removed, spelled = heal.removed, []
        if job.suffix_fit and removed:
            removed, spelled = self._spell_within(llm, removed, job)
        found = decode_candidates(llama_cpp, llm, len(tokens) + len(spelled), min(job.candidates, MAX_CANDIDATES),
                                  job, self._healer, removed, end_ids, max_tokens, before_cursor, self._rng, drafting)
        seconds = time.perf_counter() - started
        generated = len(spelled) + sum(len(c.tokens) for c in found)
        healed = heal.removed.decode("utf-8", "replace")
        if not found or found[0].finish == "cancelled":
            return GenerationResult("", "cancelled" if found else "end", len(tokens), evaluated, generated,
                                    prompt_seconds, seconds, healed=healed)
        texts = [final_text(c) for c in found]
        order = self._suffix_order(llm, len(tokens), found, job, healed) if job.suffix_fit else None
        finish = found[0].finish
        if order is not None:
            texts, finish = [texts[i] for i in order], found[order[0]].finish
            seconds = time.perf_counter() - started
        return GenerationResult(texts[0], finish, len(tokens), evaluated, generated, prompt_seconds,
                                seconds, healed=healed, alternatives=tuple(texts[1:]), drafted_tokens=drafts.drafted,
                                accepted_tokens=drafts.accepted)

    def _spell_within(self, llm: Any, removed: bytes, job: GenerationJob) -> tuple[bytes, list[int]]:
        """Before candidates that are chosen by the text below: spell out (greedily, evaluated in sequence 0)
        the part of what healing removed that the model spells without going past it, so the candidates
        branch where the line's text starts. After a prompt cut back to its line break, every top first
        token was otherwise a line break with some spaces, and the candidates differed in indentation
        only. Returns what is left to spell and the tokens spelled."""
        import llama_cpp

        healer, rest, spelled = self._healer, removed, []
        assert healer is not None
        n_vocab = llm.n_vocab()
        while rest and not job.cancel.is_set():
            allowed = healer.allowed(rest)
            if len(allowed) == 0:
                break
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
            token = int(allowed[int(np.argmax(logits[allowed]))])
            if len(healer.pieces[token]) > len(rest):
                break  # the model's next token already starts the line's text: branch here
            llm.eval([token])
            spelled.append(token)
            rest = healer.advance(rest, token)
        return rest, spelled

    def _suffix_order(self, llm: Any, prompt_len: int, found: list, job: GenerationJob,
                      healed: str) -> list[int] | None:
        """The candidates in the order the text after the cursor follows them (best first), or None to keep
        the model's. Each candidate's first line is followed by `job.suffix_fit` and scored
        (candidates.suffix_scores); another candidate replaces the greedy one only when the suffix is
        clearly likelier after it (SUFFIX_MARGIN nats), so a near tie keeps what the model preferred."""
        import llama_cpp

        continuations: list[tuple[list[int], int] | None] = []
        for candidate in found:
            line = first_line(candidate)
            if not line.strip():
                continuations.append(None)
                continue
            head = healed + line
            text = head + job.suffix_fit
            ids = self._tokenize(text)
            # the token holding the line break after the candidate: the suffix's first, scored from there
            first = max(1, bisect.bisect_right(self._token_starts(text), len(head)) - 1)
            continuations.append((ids, first))
        scores = suffix_scores(llama_cpp, llm, prompt_len, continuations, job.cancel.is_set)
        if scores is None:
            return None
        best = max(range(len(scores)), key=lambda i: scores[i])
        if best == 0 or scores[best] < scores[0] + SUFFIX_MARGIN:
            return None
        return [best] + [i for i in range(len(found)) if i != best]

    def _keep_last(self, llm: Any) -> None:
        """Keep the logits of the token just evaluated last (llm.eval)."""
        import llama_cpp

        row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        self._memo.keep(llm.n_tokens - 1, np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)))

    def _heal(self, llm: Any, removed: bytes, job: GenerationJob, pieces: bytearray,
              first: np.ndarray | None = None) -> list[int]:
        """Generate (and evaluate) tokens that agree with `removed` until they cover it; their bytes go
        to `pieces`, past the end of `removed` too when the last token reaches beyond it (`return` +
        ` a` after a prompt that lost its ` `). Stops early when the job is cancelled. `first`: the
        logits to start from, when the prompt's last token was not evaluated (logits_memo.py)."""
        import llama_cpp

        healer, rest, chosen = self._healer, removed, []
        assert healer is not None
        n_vocab = llm.n_vocab()
        while rest:
            if job.cancel.is_set():
                return chosen
            allowed = healer.allowed(rest)
            if len(allowed) == 0:  # no token agrees (a vocabulary without single bytes): spell it as is
                forced = self._tokenize(rest.decode("utf-8", "replace"))
                llm.eval(forced)
                self._keep_last(llm)
                pieces += rest
                return chosen + forced
            if first is not None:
                logits, first = first, None
            else:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
            token = pick(logits, allowed, job.temperature, self._rng)
            chosen.append(token)
            pieces += healer.pieces[token]
            rest = healer.advance(rest, token)
            llm.eval([token])
            self._keep_last(llm)
        return chosen


@contextlib.contextmanager
def _load_progress(llama_cpp: Any, progress: Callable[[float], None] | None) -> Iterator[None]:
    """`Llama()` takes no progress callback, but it builds its model params with
    `llama_model_default_params()`: hand it params that carry ours while it loads."""
    if progress is None:
        yield
        return
    module = llama_cpp.llama  # where Llama looks the function up
    original = module.llama_cpp.llama_model_default_params

    def report(fraction: float, _user_data: Any) -> bool:
        try:
            progress(float(fraction))
        except Exception:  # noqa: BLE001 - a lost progress report must not abort the load
            pass
        return True

    callback = llama_cpp.llama_progress_callback(report)  # kept alive by this frame while loading

    def with_progress():
        params = original()
        params.progress_callback = callback
        return params

    module.llama_cpp.llama_model_default_params = with_progress
    try:
        yield
    finally:
        module.llama_cpp.llama_model_default_params = original


def _vocab_pieces(llama_cpp: Any, llm: Any) -> list[bytes]:
    """The bytes each token stands for, without special tokens' text (b"" for those): once per model,
    ~50 ms for a 50k vocabulary."""
    import ctypes

    size = 256
    buf = ctypes.create_string_buffer(size)
    vocab = llm._model.vocab
    pieces = []
    for token in range(llm.n_vocab()):
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        pieces.append(buf.raw[:n] if 0 < n <= size else b"")
    return pieces


def _splice_tokenizer(llama_cpp: Any, llm: Any, pieces: list[bytes]) -> SpliceTokenizer:
    vocab = llm._model.vocab
    user_defined = [pieces[t] for t in range(len(pieces))
                    if llama_cpp.llama_vocab_get_attr(vocab, t) & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED]
    splice, runs = splice_rule(llm.metadata.get("tokenizer.ggml.model"), llm.metadata.get("tokenizer.ggml.pre"),
                               user_defined)
    if not splice:
        log.info("prompts are tokenized whole: no splicing rule for this vocabulary (%s, %s)",
                 llm.metadata.get("tokenizer.ggml.model"), llm.metadata.get("tokenizer.ggml.pre"))

    def tokenize(text: str) -> list[int]:
        return llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False)

    return SpliceTokenizer(tokenize, [len(p) for p in pieces], splice, runs)


def _common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(differ[0]) if len(differ) else n
