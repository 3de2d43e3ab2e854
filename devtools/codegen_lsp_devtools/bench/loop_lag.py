"""`bench loop-lag`: how responsive the server's event loop stays while the model works.

The probe is a request the server answers on its event loop without the engine: a codeAction on an empty
range of a two-line document, from a client that resolves edits (so the "Complete here" action is offered
unresolved and no model runs; the synthesis plan is a tree query on two lines). One probe is in flight at
a time, one sent every PROBE_EVERY_S; its round-trip time is the loop's lag plus a fixed cost, which the
idle phase measures. Phases, one server, one run:

- idle: the model loaded, nothing else happening;
- completions: a 2 MB Python document is open and inline completions for it arrive every
  COMPLETION_EVERY_S at lines spread over the whole file (each one supersedes the one before, so each
  costs a full prompt: the slicing, hashing and sending of the document's text on the event loop);
- synthesis: one synthesis turn of `synthesisMaxTokens` (600) under the comment at the end of the 2 MB
  document, asked through codeAction/resolve (no workspace/applyEdit), cancelled after `phase_s`.

The report: p50 / p99 / max of the probe's round trip per phase and their ratios to idle.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from codegen_lsp.headless import ready_session, stop_session

PROBE_EVERY_S = 0.02
COMPLETION_EVERY_S = 0.25
DOCUMENT_BYTES = 2 * 2**20
PROBE_TEXT = "def probe():\n    return 1\n"
SYNTHESIS_COMMENT = "# Return the sum of the squares of the numbers in xs.\n"


def default_model() -> Path:
    """SmolLM2 when it is cached (no download here), else the suite's tiny test model (built if need be)."""
    smol = Path.cwd() / ".cache" / "real-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if smol.is_file():
        return smol
    from ..test_models import TinyModelSpec, build_test_model

    return build_test_model(TinyModelSpec(train_steps=150)).gguf_path


def big_document(size: int = DOCUMENT_BYTES, seed: int = 0) -> str:
    """About `size` bytes of plausible Python: numbered functions and classes, then a comment to synthesize."""
    rng = random.Random(seed)
    parts, total, n = ["import os\nimport sys\n\n\n"], 0, 0
    while total < size:
        n += 1
        name, arg = f"handle_{n}", rng.choice(["path", "items", "value", "config"])
        block = (f"def {name}({arg}, limit={rng.randint(1, 99)}):\n"
                 f"    \"\"\"Process {arg} for step {n}.\"\"\"\n"
                 f"    result = []\n"
                 f"    for index, item in enumerate({arg}):\n"
                 f"        if index >= limit:\n"
                 f"            break\n"
                 f"        result.append(str(item).strip() + \"-{n}\")\n"
                 f"    return result\n\n\n")
        if n % 7 == 0:
            block += (f"class Store{n}:\n    def __init__(self):\n        self.items = {{}}\n\n"
                      f"    def put(self, key, value):\n        self.items[key] = value\n\n\n")
        parts.append(block)
        total += len(block)
    parts.append(SYNTHESIS_COMMENT)
    return "".join(parts)


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    if not ordered:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"samples": len(ordered), "p50_ms": statistics.median(ordered), "p99_ms": p99, "max_ms": ordered[-1]}


class _Prober:
    def __init__(self, client, uri: str) -> None:
        self.client, self.uri = client, uri
        self.params = types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=4)),
            context=types.CodeActionContext(diagnostics=[]))

    async def probe(self, until, limit_s: float) -> list[float]:
        """Round trips (ms) of one probe at a time, one started every PROBE_EVERY_S, until `until()` is true or
        `limit_s` passed."""
        samples: list[float] = []
        started = time.perf_counter()
        next_at = started
        while not until() and time.perf_counter() - started < limit_s:
            sent = time.perf_counter()
            await self.client.text_document_code_action_async(self.params)
            samples.append((time.perf_counter() - sent) * 1000)
            next_at += PROBE_EVERY_S
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at, time.perf_counter() - PROBE_EVERY_S)  # no bursts after a long stall
        return samples


def _open(client, uri: str, text: str) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))


async def run_loop_lag(model: Path, phase_s: float, threads: int, synthesis_tokens: int, max_tokens: int) -> dict:
    text = big_document()
    lines = text.split("\n")
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        options = {"model": str(model), "threads": threads, "maxTokens": max_tokens,
                   "synthesisMaxTokens": synthesis_tokens, "repetitionFilter": False, "debounceMs": 0,
                   "adaptiveDebounce": False, "warmAfterMs": 0, "speculativeSuggestions": False,
                   "synthesisTurnTimeoutMs": 600000}
        client = await ready_session(root, options, show_messages=False)
        try:
            probe_uri = (root / "probe.py").as_uri()
            _open(client, probe_uri, PROBE_TEXT)
            prober = _Prober(client, probe_uri)
            await prober.probe(lambda: False, 0.5)  # warm-up: first-request costs
            report: dict = {"model": str(model), "threads": threads, "document_chars": len(text),
                            "probe_every_ms": PROBE_EVERY_S * 1000, "phase_s": phase_s}

            report["idle"] = _summary(await prober.probe(lambda: False, phase_s))

            big_uri = (root / "big.py").as_uri()
            opened = time.perf_counter()
            _open(client, big_uri, text)
            await client.text_document_code_action_async(types.CodeActionParams(  # answered once the open is handled
                text_document=types.TextDocumentIdentifier(uri=big_uri),
                range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
                context=types.CodeActionContext(diagnostics=[], only=["refactor.none"])))
            report["open_ms"] = (time.perf_counter() - opened) * 1000

            rng = random.Random(1)
            asked: list[asyncio.Future] = []
            stop = asyncio.Event()

            async def ask_completions() -> None:
                while not stop.is_set():
                    line = rng.randrange(4, len(lines) - 2)
                    asked.append(asyncio.ensure_future(client.text_document_inline_completion_async(
                        types.InlineCompletionParams(
                            text_document=types.TextDocumentIdentifier(uri=big_uri),
                            position=types.Position(line=line, character=len(lines[line])),
                            context=types.InlineCompletionContext(
                                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))))
                    try:
                        await asyncio.wait_for(stop.wait(), COMPLETION_EVERY_S)
                    except asyncio.TimeoutError:
                        pass

            before = len(client.stats)
            asker = asyncio.ensure_future(ask_completions())
            samples = await prober.probe(lambda: False, phase_s)
            stop.set()
            await asker
            await asyncio.wait(asked, timeout=60)
            stats = [s for s in client.stats[before:] if s.uri == big_uri and s.kind == "request"]
            report["completions"] = {**_summary(samples), "requests": len(asked),
                                     "answered": sum(1 for f in asked if f.done() and not f.exception()),
                                     "prompt_tokens_max": max((s.prompt_tokens for s in stats), default=0),
                                     "reasons": sorted({s.reason for s in stats})}

            at = len(lines) - 2  # the comment's line
            action = types.CodeAction(
                title="Synthesize from comments (codegen-lsp)", kind="refactor.rewrite.codegen.synthesize",
                data={"action": "synthesize", "uri": big_uri, "version": 1, "regenerate": False,
                      "range": {"start": {"line": at, "character": 0}, "end": {"line": at + 1, "character": 0}}})
            synthesis = asyncio.ensure_future(client.protocol.send_request_async(
                types.CODE_ACTION_RESOLVE, action, msg_id="loop-lag-synthesis"))
            synth_started = time.perf_counter()
            samples = await prober.probe(synthesis.done, phase_s)
            finished = synthesis.done()
            if not finished:
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="loop-lag-synthesis"))
            try:
                await asyncio.wait_for(synthesis, 30)
            except Exception:  # noqa: BLE001 - a cancelled request answers with an error
                pass
            report["synthesis"] = {**_summary(samples), "finished_in_phase": finished,
                                   "seconds": time.perf_counter() - synth_started}
        finally:
            await stop_session(client)
    idle = report["idle"]
    for phase in ("completions", "synthesis"):
        for key in ("p50_ms", "p99_ms", "max_ms"):
            if idle[key] and report[phase][key] is not None:
                report[phase][key.replace("_ms", "_ratio")] = report[phase][key] / idle[key]
    return report


def print_loop_lag(report: dict) -> None:
    print(f"loop lag: probe = codeAction on a 2-line document, one every {report['probe_every_ms']:.0f} ms; "
          f"{report['phase_s']:.0f} s per phase; model {Path(report['model']).name}, {report['threads']} engine "
          f"thread(s); document {report['document_chars'] / 2**20:.1f} MiB (open handled in "
          f"{report['open_ms']:.0f} ms)")
    print(f"  {'phase':<12} {'samples':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   ratio to idle (p50, p99, max)")
    for phase in ("idle", "completions", "synthesis"):
        row = report[phase]
        ratios = "" if phase == "idle" else (f"   {row.get('p50_ratio', 0):.2f}x, {row.get('p99_ratio', 0):.2f}x, "
                                             f"{row.get('max_ratio', 0):.2f}x")
        print(f"  {phase:<12} {row['samples']:>7} {row['p50_ms'] or 0:>8.2f} {row['p99_ms'] or 0:>8.2f} "
              f"{row['max_ms'] or 0:>8.2f}{ratios}")
    c = report["completions"]
    print(f"  completions: {c['requests']} asked, {c['answered']} answered, at most {c['prompt_tokens_max']} prompt "
          f"tokens; reasons: {', '.join(c['reasons']) or 'none'}")
    s = report["synthesis"]
    print(f"  synthesis: {'finished' if s['finished_in_phase'] else 'still running, cancelled'} after "
          f"{s['seconds']:.1f} s")


def main_sync(model: Path, phase_s: float, threads: int, synthesis_tokens: int, max_tokens: int) -> dict:
    return asyncio.run(run_loop_lag(model, phase_s, threads, synthesis_tokens, max_tokens))
