"""`bench speculation`: greedy decoding with prompt-lookup drafts (engine/speculation.py) against
without, on the same prompts, in one interleaved run on the engine's own LlamaRunner.

Three prompt sets:
- trace: the text before the cursor at each request point of the keystroke trace (the user types a
  standard-library function), a one-line suggestion each (stop at the newline), as the server asks;
- edits: a cursor at the start of a line inside functions of this project's own modules, a
  multi-line suggestion each: code that resembles the code around it, where copying pays;
- misses: numbered assignments of random values, where every short n-gram recurs with another
  continuation: drafts are made and mostly rejected, the case that costs.

Before each generation the KV cache is cleared, so both modes evaluate the prompt the same way and
only the decoding differs; the report gives decode time (generate_seconds) per mode and their
ratio, drafted and accepted tokens, and how many outputs were identical.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.jobs import EngineConfig, GenerationJob
from codegen_lsp.engine.llama_runner import LlamaRunner

from . import trace as tr

EDIT_SOURCES = ("engine/llama_runner.py", "engine/candidates.py", "completion.py", "settings.py")


def trace_prompts(limit: int) -> list[tuple[str, tuple[str, ...]]]:
    trace = tr.load_trace(None)
    keys = tr.keystrokes(trace)
    points = [k.index + 1 for k in keys if k.pause_after_ms >= 150]
    prompts = []
    for n in points[:: max(1, len(points) // limit)][:limit]:
        text = tr.text_after(trace, n)
        cursor = trace["cursor"] + sum(len(e["text"]) for e in trace["events"][:n])
        prompts.append((text[:cursor], ("\n",)))
    return prompts


def edit_prompts(limit: int, seed: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    import codegen_lsp

    root = Path(codegen_lsp.__file__).parent
    rng = random.Random(seed)
    prompts = []
    for name in EDIT_SOURCES:
        lines = (root / name).read_text().splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if i > 40 and line.startswith("        ") and line.strip()]
        for i in rng.sample(starts, min(len(starts), max(1, limit // len(EDIT_SOURCES)))):
            before = "".join(lines[:i])[-6000:]
            prompts.append((before + lines[i][: len(lines[i]) - len(lines[i].lstrip())], ()))
    return prompts[:limit]


def miss_prompts(limit: int, seed: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    rng = random.Random(seed)
    prompts = []
    for n in range(limit):
        lines = [f"value_{i} = {rng.randint(0, 10**6)} * {rng.randint(0, 10**6)} - {rng.random():.6f}\n"
                 for i in range(40 + n)]
        prompts.append(("".join(lines), ()))
    return prompts


def run_speculation(model: Path, max_tokens: int, limit: int, n_ctx: int = 2048, threads: int | None = None) -> dict:
    runner = LlamaRunner()
    runner.load(EngineConfig(model, n_ctx=n_ctx, n_threads=threads))
    report: dict = {"model": str(model), "max_tokens": max_tokens, "sets": {}}
    try:
        for name, prompts in (("trace", trace_prompts(limit)), ("edits", edit_prompts(limit)),
                              ("misses", miss_prompts(limit))):
            rows = []
            for i, (prefix, stops) in enumerate(prompts):
                got = {}
                for on in ((False, True) if i % 2 == 0 else (True, False)):
                    runner.forget_cache()  # both modes evaluate the prompt alike
                    job = GenerationJob([Text(prefix, role="prefix")], max_tokens=max_tokens, stop_strings=stops,
                                        prompt_lookup=on)
                    started = time.perf_counter()
                    result = runner.generate(job)
                    got[on] = (result, time.perf_counter() - started)
                rows.append(got)
            report["sets"][name] = summarize(rows)
    finally:
        runner.free()
    return report


def summarize(rows: list[dict]) -> dict:
    off = [r[False][0] for r in rows]
    on = [r[True][0] for r in rows]
    off_ms = sum(r.generate_seconds for r in off) * 1000
    on_ms = sum(r.generate_seconds for r in on) * 1000
    per_prompt = [a.generate_seconds / max(1e-9, b.generate_seconds) for a, b in zip(off, on)]
    return {
        "prompts": len(rows),
        "identical": sum(a.text == b.text for a, b in zip(off, on)),
        "tokens": sum(r.generated_tokens for r in off),
        "tokens_on": sum(r.generated_tokens for r in on),
        "decode_ms_off": round(off_ms, 1), "decode_ms_on": round(on_ms, 1),
        "speedup_total": round(off_ms / max(1e-9, on_ms), 3),
        "speedup_median": round(statistics.median(per_prompt), 3) if per_prompt else None,
        "drafted": sum(r.drafted_tokens for r in on), "accepted": sum(r.accepted_tokens for r in on),
        "differing": [{"off": a.text, "on": b.text} for a, b in zip(off, on) if a.text != b.text][:3],
    }


def print_speculation_report(report: dict) -> None:
    print(f"model: {report['model']}; maxTokens {report['max_tokens']}")
    print("set      prompts  identical  tokens  decode ms off  decode ms on  speed-up (total, median)  drafted  accepted")
    for name, s in report["sets"].items():
        print(f"{name:8} {s['prompts']:7}  {s['identical']:9}  {s['tokens']:6}  {s['decode_ms_off']:13.0f}  "
              f"{s['decode_ms_on']:12.0f}  {s['speedup_total']:.2f}x, {s['speedup_median']:.2f}x"
              f"{'':13}{s['drafted']:7}  {s['accepted']:8}")
