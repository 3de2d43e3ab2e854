"""`bench engine`: what the engine process costs and buys, through the real server over LSP.

- cancel → answer: `$/cancelRequest` sent mid-decode until the request is answered;
- kill → first good suggestion: SIGKILL to the engine process until an inline request at a fresh
  cursor (no cache can answer it) returns a non-empty suggestion from the restarted engine;
- resident memory of the server and of the engine process, each on its own (VmRSS, and VmHWM peak).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from codegen_lsp.engine.process import RestartPolicy
from codegen_lsp.headless import ready_session, stop_session

BUFFER = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        return fh.read()\n"


def engine_pids(server_pid: int) -> list[int]:
    """The engine processes of a server (its children running codegen_lsp.engine.child)."""
    found = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            try:
                if b"codegen_lsp.engine.child" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                continue
    return found


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


def _probe(client, root: Path, n: int, block: bool = False) -> tuple[str, int, int]:
    """A new document, so no cache has seen its cursor and no earlier probe shapes the prompt: the end of
    an attribute access, or (block) the body of a new function."""
    tail = (f"def transform_{n}(records, limit={n}):\n    " if block else
            f"def load_{n}(path):\n    with open(path) as fh:\n        return fh.")
    text, uri = BUFFER + "\n\n" + tail, (root / f"probe_{n}.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri, text.count("\n"), len(tail.rpartition("\n")[2])


async def _inline(client, uri: str, line: int, character: int, msg_id: str | None = None) -> str:
    result = await client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                                      _params(uri, line, character), msg_id=msg_id)
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return str(items[0].insert_text) if items else ""


async def run_engine_bench(model: Path, rounds: int = 5, max_tokens: int = 256) -> dict:
    with tempfile.TemporaryDirectory() as root:
        # The model must decode for a while to be cancelled: a looping one would be stopped by the filter.
        options = {"model": str(model), "maxTokens": max_tokens, "speculativeSuggestions": False, "warmAfterMs": 0,
                   "adaptiveDebounce": False, "repetitionFilter": False}
        client = await ready_session(Path(root), options)
        try:
            server = client._server.pid  # type: ignore[attr-defined]
            first = await _inline(client, *_probe(client, Path(root), 0))  # warm: the model answers

            cancels: list[float] = []
            for n in range(1, 4 * rounds + 1):
                if len(cancels) == rounds:
                    break
                request = asyncio.ensure_future(_inline(client, *_probe(client, Path(root), n, block=True),
                                                        msg_id=f"c{n}"))
                await asyncio.sleep(0.15)  # decoding a function body by now, unless the model stopped early
                if request.done():
                    continue
                started = time.perf_counter()
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"c{n}"))
                try:
                    await request
                except JsonRpcRequestCancelled:
                    pass
                cancels.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.2)  # let the engine wind the cancelled job down
            if not cancels:
                raise RuntimeError("every request finished within 0.15 s: nothing to cancel (raise --max-tokens)")

            restarts = []
            kills = min(rounds, RestartPolicy().max_crashes - 1)  # one more would make the supervisor give up
            for n in range(100_000, 100_000 + kills):
                engine = engine_pids(server)[0]
                started = time.perf_counter()
                os.kill(engine, signal.SIGKILL)
                while True:
                    if await _inline(client, *_probe(client, Path(root), n)):
                        break
                    if time.perf_counter() - started > 120:
                        raise RuntimeError("no suggestion within 120 s of the kill")
                    await asyncio.sleep(0.02)
                    n += 1000  # another fresh cursor for the next probe
                restarts.append((time.perf_counter() - started) * 1000)

            memory = {"server": memory_mib(server), "engine": memory_mib(engine_pids(server)[0])}
        finally:
            await stop_session(client)
    return {"model": str(model), "first_suggestion": first, "cancel_to_answer_ms": cancels,
            "kill_to_suggestion_ms": restarts, "memory_mib": memory}


def print_engine_report(report: dict) -> None:
    def stats(xs: list[float]) -> str:
        return f"p50 {statistics.median(xs):.1f} ms, max {max(xs):.1f} ms over {len(xs)}"

    print(f"model: {report['model']}")
    print(f"$/cancelRequest → answer:               {stats(report['cancel_to_answer_ms'])}")
    print(f"SIGKILL engine → first good suggestion: {stats(report['kill_to_suggestion_ms'])}")
    for name, mem in report["memory_mib"].items():
        print(f"{name + ' process':<15} RSS {mem['VmRSS']:.0f} MiB, peak {mem['VmHWM']:.0f} MiB")
