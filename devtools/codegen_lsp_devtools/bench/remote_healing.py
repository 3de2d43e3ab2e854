"""`bench remote-healing`: each way of token healing over an OpenAI-compatible API (engine/remote_heal.py)
against the in-process engine, on llama.cpp's own llama-server and on llama_cpp.server, with the same GGUF.

At every cursor of bench/everyday.py (the twelve everyday ones and the four where the remote path went
wrong), one greedy job with the cursor's text before it, through: the in-process engine (the reference),
then each server with healing "grammar", "check" and "off". Reported per server and way: answers identical
to in-process, answers that begin with the expected code (everyday cursors), requests sent again with the
whole prompt (the fallback's extra round-trip), and the p50 time per job. Machines here are shared: compare
the times within one run only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.jobs import EngineConfig, GenerationJob
from codegen_lsp.engine.process import ProcessEngine
from codegen_lsp.engine.remote import RemoteConfig, RemoteEngine

from .everyday import EVERYDAY, HARD

WAYS = ("grammar", "check", "off")
N_CTX = 2048
MAX_TOKENS = 24


def _cursors() -> list[tuple[str, str | None]]:
    return [(source.split("|")[0], want) for source, want in EVERYDAY] + [(source.split("|")[0], None) for source in HARD]


def _answers(engine, cursors: list[tuple[str, str | None]]) -> tuple[list[str], list[float]]:
    texts, seconds = [], []
    for prefix, _ in cursors:
        started = time.perf_counter()
        result = engine.submit(GenerationJob([Text(prefix)], max_tokens=MAX_TOKENS)).result(300)
        seconds.append(time.perf_counter() - started)
        texts.append(result.text if not result.error else f"<error: {result.error}>")
    return texts, seconds


def _row(name: str, texts: list[str], seconds: list[float], reference: list[str],
         cursors: list[tuple[str, str | None]], reasks: int) -> dict:
    expected = [(t, want) for t, (_, want) in zip(texts, cursors) if want is not None]
    return {"engine": name, "same_as_in_process": sum(a == b for a, b in zip(texts, reference)),
            "expected_code": sum(t.startswith(want) for t, want in expected), "everyday": len(expected),
            "cursors": len(cursors), "reasks": reasks, "p50_ms": round(statistics.median(seconds) * 1000, 1),
            "answers": texts}


def run_remote_healing(model: Path, threads: int = 2, echo: Callable[[str], None] = print) -> dict:
    from .llama_cpp_server import InferenceServer
    from .llama_server import LlamaServer, ensure_built

    cursors = _cursors()
    local = ProcessEngine()
    try:
        local.load(EngineConfig(model_path=model, n_ctx=N_CTX, n_threads=threads)).result(300)
        reference, seconds = _answers(local, cursors)
    finally:
        local.close()
    rows = [_row("in-process", reference, seconds, reference, cursors, 0)]
    binary, _ = ensure_built(echo=echo)
    logs = Path(tempfile.mkdtemp(prefix="remote-healing-"))
    llama_server = LlamaServer(binary, model, threads=threads, n_ctx=N_CTX, log_path=logs / "llama-server.log")
    llama_cpp = InferenceServer(model, logs / "llama_cpp.server.log", n_ctx=N_CTX)
    try:
        llama_server.start(timeout=120)
        urls = {"llama-server": f"http://127.0.0.1:{llama_server.port}", "llama_cpp.server": llama_cpp.wait_ready().url}
        for kind, url in urls.items():
            for way in WAYS:
                engine = RemoteEngine(lambda message: None)
                try:
                    engine.load(RemoteConfig(model_path=model, url=url, n_ctx=N_CTX, timeout_s=120, healing=way)).result(60)
                    texts, seconds = _answers(engine, cursors)
                    rows.append(_row(f"{kind} ({way})", texts, seconds, reference, cursors, engine.reasks))
                finally:
                    engine.close()
                echo(f"{rows[-1]['engine']}: {rows[-1]['same_as_in_process']}/{len(cursors)} as in-process")
    finally:
        llama_server.stop()
        llama_cpp.stop()
    return {"model": str(model), "threads": threads, "max_tokens": MAX_TOKENS, "rows": rows}


def print_remote_healing(report: dict) -> None:
    print(f"{'engine':32} {'same as in-process':>18} {'expected code':>14} {'re-asked':>9} {'p50 ms':>8}")
    for row in report["rows"]:
        print(f"{row['engine']:32} {row['same_as_in_process']:>12}/{row['cursors']:<5} "
              f"{row['expected_code']:>8}/{row['everyday']:<5} {row['reasks']:>9} {row['p50_ms']:>8}")
