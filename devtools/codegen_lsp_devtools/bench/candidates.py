"""`bench candidates`: what several suggestions cost next to one, through the real server over LSP.

Each round opens two fresh documents (no cache can answer) that differ only in a function name, and
asks one as typing does (Automatic: one suggestion) and the other explicitly (Invoked: `candidates`
suggestions decoded together), in alternating order. The engine's own times come from
`codegenLsp/stats`; the report gives the median ratio (candidates / one) from the same run, and
llama.cpp's own cost of one decode step for that many sequences against one (`raw_batch_cost`).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from codegen_lsp.headless import ready_session, stop_session

BODY = "import os\n\n\ndef {name}(path, limit=10):\n    \"\"\"Read at most limit lines of the file at path.\"\"\"\n    "


async def _ask(client, root: Path, name: str, invoked: bool) -> tuple[float, object, int]:
    text = BODY.format(name=name)
    uri = (root / f"{name}.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    started = time.perf_counter()
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=text.count("\n"), character=4), context=types.InlineCompletionContext(trigger_kind=kind)))
    wall = (time.perf_counter() - started) * 1000
    stats = next(s for s in reversed(client.stats) if s.uri == uri)  # type: ignore[attr-defined]
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return wall, stats, len(items)


async def run_candidates_bench(model: Path, rounds: int, candidates: int, max_tokens: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        options = {"model": str(model), "maxTokens": max_tokens, "candidates": candidates,
                   "speculativeSuggestions": False, "warmAfterMs": 0, "adaptiveDebounce": False,
                   "crossFileTokens": 0}
        client = await ready_session(root, options, show_messages=False)
        try:
            await _ask(client, root, "warm_up", False)
            rows = []
            for n in range(rounds):
                order = (False, True) if n % 2 == 0 else (True, False)
                got = {}
                for invoked in order:
                    got[invoked] = await _ask(client, root, f"read_{n}_{int(invoked)}", invoked)
                rows.append(got)
        finally:
            await stop_session(client)

    def engine_ms(s) -> float:
        return s.prompt_ms + s.generate_ms

    one = [r[False] for r in rows]
    many = [r[True] for r in rows]
    return {
        "model": str(model), "rounds": rounds, "candidates": candidates, "max_tokens": max_tokens,
        "one": {"engine_ms": [engine_ms(s) for _, s, _ in one], "wall_ms": [w for w, _, _ in one],
                "generated": [s.generated_tokens for _, s, _ in one]},
        "many": {"engine_ms": [engine_ms(s) for _, s, _ in many], "wall_ms": [w for w, _, _ in many],
                 "generated": [s.generated_tokens for _, s, _ in many], "items": [k for _, _, k in many]},
        "engine_ms_ratio_median": statistics.median(engine_ms(m[1]) / max(1e-6, engine_ms(o[1]))
                                                    for o, m in zip(one, many)),
        "wall_ms_ratio_median": statistics.median(m[0] / max(1e-6, o[0]) for o, m in zip(one, many)),
    }


STEPS = 4  # decode steps per repeat in raw_batch_cost; the first is not timed


def raw_batch_cost(model: Path, candidates: int, repeats: int = 15, threads: int | None = None) -> dict:
    """llama.cpp alone: one decode step of `candidates` sequences sharing a prompt (one token each, one
    batch) against one sequence, in steady decoding (steps after the first): the floor under any way of
    decoding candidates together. Also every count in between (`by_sequences_ms`)."""
    import llama_cpp

    from codegen_lsp.engine.kv_reuse import enable_second_sequence

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=threads, verbose=False)
    try:
        enable_second_sequence(llm)
        ctx, batch = llm._ctx.ctx, llm._batch.batch
        mem = llama_cpp.llama_get_memory(ctx)
        prompt = llm.tokenize(BODY.format(name="read").encode(), add_bos=False)
        ms: dict[int, float] = {}
        for k in range(1, candidates + 1):
            times = []
            for _ in range(repeats):
                llm.reset()
                llama_cpp.llama_memory_clear(mem, True)
                llm.eval(prompt)
                for seq in range(1, k):
                    llama_cpp.llama_memory_seq_cp(mem, 0, seq, 0, len(prompt))
                for step in range(STEPS):  # the first step after the prompt runs cold: steady steps are timed
                    for row in range(k):
                        batch.token[row], batch.pos[row] = prompt[-1], len(prompt) + step
                        batch.n_seq_id[row], batch.logits[row] = 1, True
                        batch.seq_id[row][0] = row
                    batch.n_tokens = k
                    started = time.perf_counter()
                    if llama_cpp.llama_decode(ctx, batch) != 0:
                        raise RuntimeError("llama_decode failed")
                    if step:
                        times.append((time.perf_counter() - started) * 1000)
            ms[k] = statistics.median(times)
    finally:
        llm.close()
    return {"one_ms": ms[1], "batch_ms": ms[candidates], "ratio": ms[candidates] / ms[1],
            "by_sequences_ms": {k: ms[k] for k in sorted(ms)}}


def print_candidates_report(report: dict) -> None:
    one, many = report["one"], report["many"]
    print(f"model: {report['model']}; {report['rounds']} rounds, maxTokens {report['max_tokens']}")
    print(f"one suggestion:   engine p50 {statistics.median(one['engine_ms']):.0f} ms, "
          f"{statistics.median(one['generated']):.0f} tokens generated")
    print(f"{report['candidates']} candidates:     engine p50 {statistics.median(many['engine_ms']):.0f} ms, "
          f"{statistics.median(many['generated']):.0f} tokens generated (all sequences), "
          f"{statistics.median(many['items']):.0f} distinct suggestions returned")
    print(f"ratio {report['candidates']} / 1 (median of per-round ratios): engine {report['engine_ms_ratio_median']:.2f}, "
          f"request wall time {report['wall_ms_ratio_median']:.2f}")
    raw = report["raw_llama_cpp_decode"]
    print(f"llama.cpp alone, one decode step: {report['candidates']} sequences {raw['batch_ms']:.1f} ms vs 1 sequence "
          f"{raw['one_ms']:.1f} ms: {raw['ratio']:.2f}x (the floor for any batched decoding)")
    print("  by sequences in the step: " + ", ".join(f"{k}: {v:.1f} ms" for k, v in raw["by_sequences_ms"].items()))


def main_sync(model: Path, rounds: int, candidates: int, max_tokens: int) -> dict:
    report = asyncio.run(run_candidates_bench(model, rounds, candidates, max_tokens))
    report["raw_llama_cpp_decode"] = raw_batch_cost(model, candidates)
    return report
