"""`bench preempt`: how long a warm-up holds up a request that arrives while it runs (issue 34).

A warm-up (a background, warm_only job: the prompt at a cursor evaluated without decoding) is cancelled by
the engine the moment a foreground job is submitted, and stops at its next chunk (16 tokens). This bench
submits a warm-up of a long real prompt, then, while it runs, a small request, and measures the request's
wait: its wall time minus the engine's own time for it (prompt + decode), against the same request on an
idle engine. The delay a warm-up adds is compared with one decode step of the same request (the target:
at most one), all from one run on one machine.
"""

from __future__ import annotations

import argparse as _argparse
import statistics
import time
from pathlib import Path

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.jobs import EngineConfig, GenerationJob
from codegen_lsp.engine.process import ProcessEngine

SMALL = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        return "


def _long_prompts(count: int) -> list[str]:
    """Real code, a ~2,000-token window ending at a different line each time (so each warm-up has work)."""
    lines = Path(_argparse.__file__).read_text().splitlines(keepends=True)
    return ["".join(lines[max(0, end - 400):end]) for end in range(1200, 1200 + 37 * count, 37)]


def _request(n: int) -> GenerationJob:
    # A different small prompt each time, so neither run finds it cached; greedy, one line.
    return GenerationJob([Text(f"# request {n}\n" + SMALL, "prefix")], max_tokens=8, stop_strings=("\n",))


def _timed(engine: ProcessEngine, job: GenerationJob) -> tuple[float, float, float]:
    """(wall s, engine s, one decode step s) of a job."""
    started = time.perf_counter()
    result = engine.submit(job).result(timeout=300)
    wall = time.perf_counter() - started
    step = result.generate_seconds / max(1, result.generated_tokens)
    return wall, result.prompt_seconds + result.generate_seconds, step


def run_preempt(model: Path, repeats: int = 7, threads: int | None = None, lead_s: float = 0.5) -> dict:
    engine = ProcessEngine()
    try:
        engine.load(EngineConfig(model, n_ctx=2048, n_threads=threads)).result(timeout=600)
        _timed(engine, _request(-1))  # first use of the engine after load
        idle, busy, steps, warm_states = [], [], [], []
        for n, prompt in enumerate(_long_prompts(repeats)):
            wall, own, step = _timed(engine, _request(2 * n))
            idle.append(wall - own)
            steps.append(step)
            warm = GenerationJob([Text(prompt, "prefix")], max_tokens=8, background=True, warm_only=True,
                                 prompt_budget_s=1.0)
            warming = engine.submit(warm)
            time.sleep(lead_s)  # the warm-up is evaluating now
            wall, own, step = _timed(engine, _request(2 * n + 1))
            busy.append(wall - own)
            steps.append(step)
            warm_states.append(warming.result(timeout=300).finish_reason)
            time.sleep(0.2)
    finally:
        engine.close()
    overhead = statistics.median(idle)
    delays = [b - overhead for b in busy]
    step = statistics.median(steps)
    return {"repeats": repeats, "idle_wait_ms": round(overhead * 1000, 1),
            "busy_wait_ms": [round(b * 1000, 1) for b in busy],
            "added_delay_ms_p50": round(statistics.median(delays) * 1000, 1),
            "added_delay_ms_max": round(max(delays) * 1000, 1),
            "decode_step_ms": round(step * 1000, 1),
            "delay_per_decode_step_p50": round(statistics.median(delays) / step, 2) if step else None,
            "warm_ups_cancelled": sum(s == "cancelled" for s in warm_states)}


def print_preempt_report(report: dict) -> None:
    print(f"warm-up pre-emption, {report['repeats']} requests sent 0.5 s into a warm-up of a ~2,000-token prompt")
    print(f"  wait outside the engine, idle engine:  {report['idle_wait_ms']} ms (transport, the baseline)")
    print(f"  added by a running warm-up:            p50 {report['added_delay_ms_p50']} ms, "
          f"max {report['added_delay_ms_max']} ms")
    print(f"  one decode step of the same request:   {report['decode_step_ms']} ms")
    print(f"  ratio (added delay / decode step):     {report['delay_per_decode_step_p50']} (target <= 1)")
    print(f"  warm-ups cancelled by the request:     {report['warm_ups_cancelled']} of {report['repeats']}")
