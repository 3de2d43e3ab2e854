"""`codegen-lsp bench latency`: request→answer time through the server vs raw llama-cpp-python.

One run, side by side, alternating: for each keystroke (one character typed at the cursor of a
realistic ~2,000-token Python buffer) the server answers an inline request over LSP, then
llama-cpp-python's `create_completion` runs on the same prompt for the same number of tokens.
Also reported: prompt tokens the server re-evaluated after each one-character edit, and how long
a cancelled request takes to answer.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lsprotocol import types

TYPED = "    result = parser.parse_args(argv)"


@dataclass
class LatencyReport:
    model: str
    buffer_tokens: int
    max_tokens: int
    iterations: int
    server_ms: list[float]
    raw_ms: list[float]
    evaluated_after_edit: list[int]
    cancel_answer_ms: float
    server_summaries: list[str]

    def summary(self) -> dict[str, float]:
        def pct(xs: list[float], q: float) -> float:
            return statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else xs[0]

        s = {"server_p50_ms": statistics.median(self.server_ms), "server_p95_ms": pct(self.server_ms, 95),
             "raw_p50_ms": statistics.median(self.raw_ms), "raw_p95_ms": pct(self.raw_ms, 95),
             "evaluated_after_edit_median": statistics.median(self.evaluated_after_edit),
             "evaluated_after_edit_max": max(self.evaluated_after_edit), "cancel_answer_ms": self.cancel_answer_ms}
        s["overhead_ratio_p50"] = s["server_p50_ms"] / s["raw_p50_ms"]
        return s


def realistic_buffer(target_tokens: int, count_tokens) -> str:
    """The start of argparse.py, cut at a line end near `target_tokens` tokens."""
    import argparse

    lines = Path(argparse.__file__).read_text(encoding="utf-8").splitlines(keepends=True)
    text = ""
    for line in lines:
        if count_tokens(text + line) > target_tokens:
            break
        text += line
    return text


async def _server_side(model: Path, buffer: str, max_tokens: int, threads: int | None, root: Path,
                       raw_step) -> tuple[list[float], list[float], list[int], float, list[str]]:
    from ..headless import start_session, stop_session

    options = {"model": str(model), "maxTokens": max_tokens, "contextTokens": 2048, "temperature": 0}
    if threads:
        options["threads"] = threads
    client = await start_session(root, options)
    logs: list[str] = []

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(params: types.LogMessageParams) -> None:
        logs.append(params.message)

    uri = (root / "bench_buffer.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=buffer)))
    line = buffer.count("\n")

    async def request(col: int):
        return await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))

    await request(0)  # cold: evaluates the whole buffer once
    raw_step(buffer)  # the same warm-up for the raw side
    server_ms, raw_ms, evaluated, summaries = [], [], [], []
    typed = ""
    for version, char in enumerate(TYPED, start=2):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(
                start=types.Position(line=line, character=len(typed)),
                end=types.Position(line=line, character=len(typed))), text=char)]))
        typed += char
        n_logs = len(logs)
        started = time.perf_counter()
        await request(len(typed))
        server_ms.append((time.perf_counter() - started) * 1000)
        summary = next((m for m in logs[n_logs:] if m.startswith("suggestion for")), "")
        summaries.append(summary.split(": ", 1)[-1])
        if "evaluated" in summary:
            evaluated.append(int(summary.split("(")[1].split()[0]))
        raw_ms.append(raw_step(buffer + typed))

    # cancellation: a long request, cancelled mid-generation
    client_options = types.DidChangeConfigurationParams(settings={"codegenLsp": {"maxTokens": 400}})
    client.workspace_did_change_configuration(client_options)
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=len(typed)),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)),
        msg_id="bench-cancel"))
    await asyncio.sleep(0.5)
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="bench-cancel"))
    try:
        await asyncio.wait_for(pending, 30)
    except Exception:  # noqa: BLE001 - the cancelled error is the expected answer
        pass
    cancel_ms = (time.perf_counter() - cancelled_at) * 1000
    await stop_session(client)
    return server_ms, raw_ms, evaluated, cancel_ms, summaries


def run_latency(model: Path, max_tokens: int = 16, threads: int | None = None, buffer_tokens: int = 2000,
                out: Path | None = None) -> LatencyReport:
    import os
    import tempfile

    import llama_cpp

    llm = llama_cpp.Llama(str(model), n_ctx=2048, n_batch=512, n_threads=threads or os.cpu_count(), verbose=False)
    buffer = realistic_buffer(buffer_tokens, lambda t: len(llm.tokenize(t.encode(), add_bos=False, special=False)))
    if not buffer.endswith("\n"):
        buffer += "\n"

    def raw_step(prompt: str) -> float:
        started = time.perf_counter()
        llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0)
        return (time.perf_counter() - started) * 1000

    with tempfile.TemporaryDirectory() as root:
        server_ms, raw_ms, evaluated, cancel_ms, summaries = asyncio.run(
            _server_side(model, buffer, max_tokens, threads, Path(root), raw_step))
    llm.close()
    report = LatencyReport(str(model), buffer_tokens,
                           max_tokens, len(server_ms), server_ms, raw_ms, evaluated, cancel_ms, summaries)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": report.summary(), **asdict(report)}, indent=1))
    return report


def print_report(report: LatencyReport) -> None:
    s = report.summary()
    print(f"model: {report.model}")
    print(f"buffer ≈{report.buffer_tokens} tokens, {report.max_tokens} tokens per suggestion, "
          f"{report.iterations} keystrokes")
    print(f"{'':28}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'server (LSP, in-process)':28}{s['server_p50_ms']:>10.1f}{s['server_p95_ms']:>10.1f}")
    print(f"{'llama-cpp-python raw':28}{s['raw_p50_ms']:>10.1f}{s['raw_p95_ms']:>10.1f}")
    print(f"server overhead ratio (p50): {s['overhead_ratio_p50']:.3f}  (target ≤ 1.10)")
    print(f"prompt tokens re-evaluated after a one-character edit: median {s['evaluated_after_edit_median']}, "
          f"max {s['evaluated_after_edit_max']}  (target ≤ 16)")
    print(f"cancelled request answered {s['cancel_answer_ms']:.1f} ms after $/cancelRequest")
