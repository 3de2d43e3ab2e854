"""`codegen-lsp bench quality`: does a model know code? Measured on held-out files, next to baselines.

- Single-line infill exact match, through the server: one line of a held-out file is blanked (its
  indentation kept), the server is asked for an inline completion there, and the answer must equal
  the line (trailing blanks stripped). Baseline: repeat the nearest non-blank line above.
- Line edit similarity, for both kinds of cursor: difflib's ratio (0-100) between the answer's first
  line and the expected text, averaged; it tells plausible near-misses from junk, where exact match
  says 0 to both.
- After a space: a line is cut right after one of its spaces (`return ` | `a + b`); exact match of
  the rest of the line, and the share of sensible answers (not empty, not starting with a blank: no
  doubled space). Both kinds end at an odd token boundary: what token healing is for.
- The share of degenerate suggestions (a line 3+ times, a short unit 8+ times in a row) over all cursors.
- `--compare healing` / `--compare repetition-filter` score the same cursors again with that setting
  off, in the same run.
- Perplexity per token on the held-out files (llama.cpp logits), next to a unigram model of the
  same tokens (the trivial baseline: token frequencies and nothing else).

Held-out files follow the corpus rule (content hash), so no file scored was trained on.
"""

from __future__ import annotations

import asyncio
import difflib
import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from codegen_lsp.headless import inline_at, ready_session, stop_session
from codegen_lsp.postprocess.repetition import is_degenerate
from ..training.corpus import build_corpus


@dataclass(frozen=True)
class InfillCase:
    path: str
    line: int
    indent: str  # the line's text before the cursor (its indentation, or up to a space)
    expected: str
    text: str  # the file with the line blanked (or cut at the cursor)
    kind: str = "blank-line"  # | "after-space"

    @property
    def baseline(self) -> str:
        """The nearest non-blank line above, stripped."""
        for line in reversed(self.text.split("\n")[: self.line]):
            if line.strip():
                return line.strip()
        return ""


def held_out_texts(limit: int, seed: int = 0) -> list[tuple[str, str]]:
    files = build_corpus().split(True)
    random.Random(seed).shuffle(files)
    texts = []
    for source in files:
        try:
            text = Path(source.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if 200 <= len(text) <= 60_000:
            texts.append((source.path, text))
        if len(texts) == limit:
            break
    return texts


def infill_cases(texts: list[tuple[str, str]], per_file: int, seed: int = 0) -> list[InfillCase]:
    rng = random.Random(seed)
    cases = []
    for path, text in texts:
        lines = text.split("\n")
        candidates = [i for i, line in enumerate(lines) if len(line.strip()) >= 4]
        for index in sorted(rng.sample(candidates, min(per_file, len(candidates)))):
            line = lines[index]
            indent = line[: len(line) - len(line.lstrip())]
            blanked = "\n".join(lines[:index] + [indent] + lines[index + 1:])
            cases.append(InfillCase(path, index, indent, line.strip(), blanked))
    return cases


def after_space_cases(texts: list[tuple[str, str]], per_file: int, seed: int = 0) -> list[InfillCase]:
    """Lines cut right after a space that follows code, with at least 2 characters of code after it."""
    rng = random.Random(seed + 1)
    cases = []
    for path, text in texts:
        lines = text.split("\n")
        cuts = [(i, p + 1) for i, line in enumerate(lines) for p, ch in enumerate(line)
                if ch == " " and line[:p].strip() and line[p + 1:p + 2].strip() and len(line[p + 1:].strip()) >= 2]
        for index, at in sorted(rng.sample(cuts, min(per_file, len(cuts)))):
            line = lines[index]
            cut = "\n".join(lines[:index] + [line[:at]] + lines[index + 1:])
            cases.append(InfillCase(path, index, line[:at], line[at:].rstrip(), cut, "after-space"))
    return cases


async def _infill_through_server(model: Path, cases: list[InfillCase], threads: int | None,
                                 **settings) -> list[str]:
    options: dict = {"model": str(model), "maxTokens": 48, **settings}
    if threads:
        options["threads"] = threads
    with tempfile.TemporaryDirectory(prefix="codegen-lsp-quality-") as workdir:
        client = await ready_session(Path(workdir), options, show_messages=False)
        try:
            answers = []
            for number, case in enumerate(cases):
                uri = (Path(workdir) / f"case{number}.py").as_uri()
                client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=case.text)))
                answers.append(await inline_at(client, uri, case.line, len(case.indent.encode("utf-16-le")) // 2))
                client.text_document_did_close(types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=uri)))
            return answers
        finally:
            await stop_session(client)


def perplexities(model: Path, texts: list[tuple[str, str]], max_tokens: int = 512,
                 threads: int | None = None) -> tuple[float, float, int]:
    """(model perplexity, unigram-baseline perplexity, tokens scored) over the first `max_tokens`
    tokens of each text. The unigram counts come from the same texts (an optimistic baseline)."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=max_tokens + 1, logits_all=True, verbose=False,
                          n_threads=threads or None)
    token_lists = [llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)[: max_tokens] for _, text in texts]
    counts = Counter(t for tokens in token_lists for t in tokens[1:])
    total = sum(counts.values())
    nll = unigram_nll = 0.0
    scored = 0
    for tokens in token_lists:
        if len(tokens) < 2:
            continue
        llm.reset()
        llm.eval(tokens)
        logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        targets = np.asarray(tokens[1:])
        nll -= float(log_probs[np.arange(len(targets)), targets].sum())
        unigram_nll -= sum(math.log(counts[t] / total) for t in tokens[1:])
        scored += len(targets)
    llm.close()
    return math.exp(nll / scored), math.exp(unigram_nll / scored), scored


def _percent(hits: int, total: int) -> float:
    return round(100 * hits / max(1, total), 2)


def line_similarity(answer: str, expected: str) -> float:
    """0-100: how close the answer's first line comes to the expected text (difflib's ratio)."""
    first = answer.strip().split("\n")[0].strip() if answer.strip() else ""
    return 100 * difflib.SequenceMatcher(None, first, expected.strip(), autojunk=False).ratio()


def _mean(values: list[float]) -> float:
    return round(sum(values) / max(1, len(values)), 2)


def score_answers(cases: list[InfillCase], answers: list[str]) -> dict:
    """Exact match and line edit similarity per kind; for after-space cursors also the share of
    sensible answers; over all cursors the share of degenerate suggestions (postprocess/repetition)."""
    blank = [(a, c) for a, c in zip(answers, cases) if c.kind == "blank-line"]
    space = [(a, c) for a, c in zip(answers, cases) if c.kind == "after-space"]
    return {
        "infill_edit_similarity": _mean([line_similarity(a, c.expected) for a, c in blank]),
        "after_space_edit_similarity": _mean([line_similarity(a, c.expected) for a, c in space]),
        "degenerate": _percent(sum(is_degenerate(a) for a in answers), len(answers)),
        "infill_exact_match": _percent(sum(a.strip() == c.expected for a, c in blank), len(blank)),
        "after_space_exact_match": _percent(sum(a.rstrip() == c.expected for a, c in space), len(space)),
        "after_space_sensible": _percent(sum(bool(a.strip()) and not a[:1].isspace() for a, _ in space), len(space)),
    }


# Settings `--compare` can turn off, one at a time, for a second pass over the same cursors in the same run.
COMPARABLE = {"healing": "tokenHealing", "repetition-filter": "repetitionFilter", "suffix-fit": "suffixFit"}


def run_quality(model: Path, files: int = 40, per_file: int = 5, seed: int = 0, threads: int | None = None,
                compare: tuple[str, ...] = ()) -> dict:
    started = time.perf_counter()
    texts = held_out_texts(files, seed)
    blank = infill_cases(texts, per_file, seed)
    cases = blank + after_space_cases(texts, per_file, seed)
    scores = score_answers(cases, asyncio.run(_infill_through_server(model, cases, threads)))
    for name in compare:
        off = {COMPARABLE[name]: False}
        without = score_answers(cases, asyncio.run(_infill_through_server(model, cases, threads, **off)))
        scores.update({f"{key}_without_{name.replace('-', '_')}": value for key, value in without.items()})
    baseline = sum(c.baseline == c.expected for c in blank)
    baseline_similarity = _mean([line_similarity(c.baseline, c.expected) for c in blank])
    model_ppl, unigram_ppl, scored = perplexities(model, texts, threads=threads)
    return {
        "model": str(model), "held_out_files": len(texts), "infill_cases": len(blank),
        "after_space_cases": len(cases) - len(blank), **scores,
        "infill_baseline_repeat_line_above": _percent(baseline, len(blank)),
        "infill_baseline_edit_similarity": baseline_similarity,
        "perplexity": round(model_ppl, 2), "perplexity_unigram_baseline": round(unigram_ppl, 2),
        "perplexity_tokens": scored, "seconds": round(time.perf_counter() - started, 1), "seed": seed,
    }
