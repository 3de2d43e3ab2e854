"""`bench load`: a seeded storm of good and bad LSP traffic against the real server, through a client that
never reads the server's stderr (as pygls' own `LanguageClient.start_io` does: stderr is a pipe nobody
drains, so a server that logs synchronously blocks once ~64 KB are written).

The mix: inline and completion requests and code actions at valid and impossible positions, requests for
documents never opened, unknown methods and malformed params, edits with a stale version, files opened
and closed along the way, and a share of the requests cancelled. Then: does a fresh request still get a
suggestion, is `shutdown` answered, how much did the server's RSS grow.

`RawClient` speaks JSON-RPC itself (lsprotocol's converter for the typed params) because pygls' client
cannot send a malformed request.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from lsprotocol.converters import get_converter

from codegen_lsp.events import STATUS_NOTIFICATION

CONVERTER = get_converter()

# A document the memorizing test model completes (support.snippets); any model suggests something here.
PROBE_SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
PROBE_POSITION = (5, 8)

DOCUMENTS = [
    "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n",
    "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        \n",
    "# sum the squares of a list\ndef sum_squares(xs):\n    \n",
]

# (kind, weight): what one step of the mix does.
MIX = [
    ("inline", 26), ("completion", 12), ("code_action", 8),
    ("impossible_position", 10), ("unopened", 10), ("unknown_method", 5), ("bad_params", 5),
    ("edit", 8), ("stale_edit", 6), ("open", 5), ("close", 5),
]
REQUEST_KINDS = {"inline", "completion", "code_action", "impossible_position", "unopened", "unknown_method",
                 "bad_params"}


def _vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RawClient:
    """JSON-RPC over a server subprocess's stdin/stdout. Its stderr is drained only if asked (the point of
    the load test is a client that leaves it alone); the last 200 lines are kept when drained."""

    def __init__(self, process: asyncio.subprocess.Process, drain_stderr: bool) -> None:
        self.process = process
        self.pending: dict[Any, asyncio.Future] = {}
        self.ids = itertools.count(1)
        self.statuses: list[dict] = []
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self.stderr_lines = 0
        self.dropped_log_records = 0  # as the server's "N log records dropped" lines say
        self.on_notification: Callable[[dict], None] | None = None  # sees every notification (the whole message)
        self.reader = asyncio.create_task(self._read())
        self.stderr_reader = asyncio.create_task(self._drain()) if drain_stderr else None

    @classmethod
    async def start(cls, command: list[str], drain_stderr: bool) -> "RawClient":
        process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process, drain_stderr)

    def _write(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any) -> tuple[int, asyncio.Future]:
        msg_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        self._write({"id": msg_id, "method": method, "params": CONVERTER.unstructure(params)})
        return msg_id, future

    def notify(self, method: str, params: Any) -> None:
        self._write({"method": method, "params": CONVERTER.unstructure(params)})

    def cancel(self, msg_id: int) -> None:
        self.notify(types.CANCEL_REQUEST, {"id": msg_id})

    async def _read(self) -> None:
        stdout = self.process.stdout
        while True:
            length = None
            while True:
                line = await stdout.readline()
                if not line:
                    for future in self.pending.values():
                        if not future.done():
                            future.set_exception(EOFError("the server closed its stdout"))
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                elif line in (b"\r\n", b"\n") and length is not None:
                    break
            message = json.loads(await stdout.readexactly(length))
            if "method" in message and "id" in message:  # the server asks (progress tokens, configuration)
                self._write({"id": message["id"], "result": None})
            elif "method" in message:
                if message["method"] == STATUS_NOTIFICATION:
                    self.statuses.append(message.get("params") or {})
                if self.on_notification is not None:
                    self.on_notification(message)
            elif (future := self.pending.pop(message.get("id"), None)) is not None and not future.done():
                future.set_result(message)

    async def _drain(self) -> None:
        while line := await self.process.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(text)
            self.stderr_lines += 1
            if found := re.search(r"(\d+) log records dropped", text):
                self.dropped_log_records += int(found.group(1))

    async def start_model(self, root: Path, options: dict, capabilities: types.ClientCapabilities | None = None,
                          timeout: float = 120) -> dict:
        """initialize (`options` as initializationOptions), initialized, then wait for the model: its "ready"
        status, or RuntimeError with the server's reason."""
        _, init = self.request(types.INITIALIZE, types.InitializeParams(
            capabilities=capabilities or types.ClientCapabilities(), root_uri=root.as_uri(),
            initialization_options=options))
        await asyncio.wait_for(init, 60)
        self.notify(types.INITIALIZED, types.InitializedParams())
        status = await self.wait_status(("ready", "error"), timeout)
        if status.get("state") != "ready":
            raise RuntimeError(f"the model did not load: {status.get('detail')}")
        return status

    async def wait_status(self, states: tuple[str, ...], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status in self.statuses:
                if status.get("state") in states:
                    return status
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no status in {states} within {timeout:.0f} s")

    async def exited(self, timeout: float) -> int | None:
        """The server's exit status once it has exited, or None after `timeout`. (Polled: before Python 3.12,
        `Process.wait` also waits for every pipe to close, and a stderr nobody reads never does.)"""
        deadline = time.monotonic() + timeout
        while self.process.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.process.returncode

    async def close(self) -> None:
        if self.stderr_reader is None:  # read what was left, so the pipe can reach its end
            self.stderr_reader = asyncio.create_task(self._drain())
        if self.process.returncode is None:
            self.process.kill()
        await self.exited(10)
        try:
            await asyncio.wait_for(asyncio.gather(self.reader, self.stderr_reader), 10)
        except asyncio.TimeoutError:  # a process the server left behind holds a pipe open
            self.reader.cancel()
            self.stderr_reader.cancel()


@dataclass
class LoadSpec:
    requests: int = 1000
    seed: int = 0
    cancel_share: float = 0.3
    in_flight: int = 24  # requests outstanding at once, at most
    answer_bound_s: float = 30.0  # every request is answered (result or error) within this
    storm_bound_s: float = 120.0  # no new requests after this (a wedged server would take forever)
    drain_stderr: bool = False
    log_level: str = "info"
    log_file: Path | None = None
    options: dict = field(default_factory=dict)  # extra initializationOptions


@dataclass
class Doc:
    uri: str
    text: str
    version: int = 1
    open: bool = False


def _position(rng: random.Random, text: str) -> types.Position:
    lines = text.split("\n")
    line = rng.randrange(len(lines))
    return types.Position(line=line, character=rng.randint(0, len(lines[line])))


def _inline_params(uri: str, position: types.Position, invoked: bool) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return types.InlineCompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position,
                                        context=types.InlineCompletionContext(trigger_kind=kind))


def _request_for(kind: str, rng: random.Random, doc: Doc, root: Path, step: int) -> tuple[str, Any]:
    ident = types.TextDocumentIdentifier(uri=doc.uri)
    if kind == "inline":
        return types.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(doc.uri, _position(rng, doc.text),
                                                                     rng.random() < 0.2)
    if kind == "completion":
        return types.TEXT_DOCUMENT_COMPLETION, types.CompletionParams(text_document=ident,
                                                                      position=_position(rng, doc.text))
    if kind == "code_action":
        here = _position(rng, doc.text)
        return types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionParams(
            text_document=ident, range=types.Range(start=here, end=here),
            context=types.CodeActionContext(diagnostics=[]))
    if kind == "impossible_position":
        position = rng.choice([types.Position(line=10_000 + step, character=0),
                               types.Position(line=0, character=5_000 + step)])
        return types.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(doc.uri, position, False)
    if kind == "unopened":
        uri = (root / f"never_opened_{step}.py").as_uri()
        return types.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(uri, types.Position(line=0, character=0), False)
    if kind == "unknown_method":
        return f"codegenLsp/noSuchMethod{step % 7}", {"step": step}
    # bad_params: an inline request without its position
    return types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": doc.uri}, "context": {"triggerKind": 1}}


async def run_load(model: Path, spec: LoadSpec) -> dict:
    """Run the mix against a fresh server; returns the report (see `print_load_report`)."""
    rng = random.Random(spec.seed)
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        command = [sys.executable, "-m", "codegen_lsp", "serve", "--log-level", spec.log_level]
        if spec.log_file is not None:
            command += ["--log-file", str(spec.log_file)]
        client = await RawClient.start(command, spec.drain_stderr)
        try:
            report = await _drive(client, model, spec, rng, root)
        finally:
            await client.close()
    # What reached stderr (read at the end when nobody read it meanwhile).
    report.update(stderr_lines=client.stderr_lines, dropped_log_records=client.dropped_log_records,
                  stderr_tail=list(client.stderr_tail)[-20:])
    return report


async def _drive(client: RawClient, model: Path, spec: LoadSpec, rng: random.Random, root: Path) -> dict:
    options = {"model": str(model), "maxTokens": 16, "threads": 1, **spec.options}
    await client.start_model(root, options, types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True)))

    docs = [Doc((root / f"doc{i}.py").as_uri(), text) for i, text in enumerate(DOCUMENTS)]

    def open_doc(doc: Doc) -> None:
        doc.version += 1
        doc.open = True
        client.notify(types.TEXT_DOCUMENT_DID_OPEN, types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=doc.uri, language_id="python", version=doc.version, text=doc.text)))

    for doc in docs[:2]:
        open_doc(doc)
    rss_before = _vm_rss_kib(client.process.pid)

    kinds, weights = zip(*MIX)
    slots = asyncio.Semaphore(spec.in_flight)
    outcomes: collections.Counter[str] = collections.Counter()
    waits: list[asyncio.Task] = []
    latencies: list[float] = []
    unanswered: list[str] = []
    kinds_sent: collections.Counter[str] = collections.Counter()
    rss_warm = rss_before
    sent = 0
    started = time.perf_counter()

    async def await_answer(msg_id: int, future: asyncio.Future, kind: str, cancel_after: float | None) -> None:
        sent_at = time.perf_counter()
        try:
            if cancel_after is not None:
                done, _ = await asyncio.wait({future}, timeout=cancel_after)
                if not done:
                    client.cancel(msg_id)
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), spec.answer_bound_s)
            except (asyncio.TimeoutError, EOFError):
                client.pending.pop(msg_id, None)
                unanswered.append(f"{kind}#{msg_id}")
                return
            latencies.append(time.perf_counter() - sent_at)
            outcomes["error " + str(reply["error"]["code"]) if "error" in reply else "result"] += 1
        finally:
            slots.release()

    step = 0
    while sent < spec.requests and time.perf_counter() - started < spec.storm_bound_s:
        step += 1
        kind = rng.choices(kinds, weights)[0]
        open_docs = [d for d in docs if d.open]
        if kind == "open" or not open_docs:
            if closed := [d for d in docs if not d.open]:
                open_doc(rng.choice(closed))
            continue
        doc = rng.choice(open_docs)
        if kind == "close":
            if len(open_docs) > 1:
                doc.open = False
                client.notify(types.TEXT_DOCUMENT_DID_CLOSE,
                              types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=doc.uri)))
            continue
        if kind in ("edit", "stale_edit"):
            end = types.Position(line=doc.text.count("\n"), character=len(doc.text.split("\n")[-1]))
            added = f"    x{step} = {step}\n"
            if kind == "edit":
                doc.version += 1
                doc.text += added
            client.notify(types.TEXT_DOCUMENT_DID_CHANGE, types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=end, end=end), text=added)]))
            continue
        method, params = _request_for(kind, rng, doc, Path(root), step)
        if sent == spec.requests // 10:  # caches, parsers and the allocator have warmed up by now
            rss_warm = _vm_rss_kib(client.process.pid)
        try:
            await asyncio.wait_for(slots.acquire(), max(0.001, spec.storm_bound_s - (time.perf_counter() - started)))
        except asyncio.TimeoutError:
            break
        msg_id, future = client.request(method, params)
        sent += 1
        kinds_sent[kind] += 1
        cancel_after = rng.uniform(0, 0.05) if rng.random() < spec.cancel_share else None
        waits.append(asyncio.create_task(await_answer(msg_id, future, kind, cancel_after)))
        if client.process.returncode is not None:
            break
        await asyncio.sleep(0)
    await asyncio.gather(*waits)
    storm_s = time.perf_counter() - started

    # Afterwards: a fresh document still gets a suggestion, and shutdown is answered.
    probe = Doc((root / "probe.py").as_uri(), PROBE_SOURCE)
    open_doc(probe)
    suggestion: str | None = None
    try:
        _, future = client.request(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                   _inline_params(probe.uri, types.Position(*PROBE_POSITION), True))
        reply = await asyncio.wait_for(future, spec.answer_bound_s)
        items = (reply.get("result") or {}).get("items", []) if isinstance(reply.get("result"), dict) else \
            (reply.get("result") or [])
        suggestion = items[0]["insertText"] if items else ""
    except (asyncio.TimeoutError, EOFError):
        pass
    rss_after = _vm_rss_kib(client.process.pid) if client.process.returncode is None else 0
    shutdown_s: float | None = None
    try:
        asked = time.perf_counter()
        _, future = client.request(types.SHUTDOWN, None)
        await asyncio.wait_for(future, 30)
        shutdown_s = time.perf_counter() - asked
        client.notify(types.EXIT, None)
        await client.exited(30)
    except (asyncio.TimeoutError, EOFError):
        pass
    latencies.sort()
    return {
        "model": str(model), "seed": spec.seed, "planned": spec.requests, "requests": sent,
        "drain_stderr": spec.drain_stderr,
        "log_file": str(spec.log_file) if spec.log_file else None, "storm_s": storm_s,
        "answered": len(latencies), "unanswered": unanswered, "outcomes": dict(outcomes), "kinds": dict(kinds_sent),
        "latency_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "latency_max_ms": 1000 * latencies[-1] if latencies else None,
        "suggestion_after": suggestion, "shutdown_s": shutdown_s,
        "rss_before_mib": rss_before / 1024, "rss_warm_mib": rss_warm / 1024, "rss_after_mib": rss_after / 1024,
        "server_exit": client.process.returncode,
    }


def print_load_report(report: dict) -> None:
    print(f"load: {report['requests']} of {report['planned']} requests sent ({report['model']}, seed {report['seed']}, stderr "
          f"{'drained' if report['drain_stderr'] else 'never read'}{', log file' if report['log_file'] else ''})")
    print(f"  answered {report['answered']} of {report['requests']} in {report['storm_s']:.1f} s "
          f"(p50 {report['latency_p50_ms'] or 0:.0f} ms, max {report['latency_max_ms'] or 0:.0f} ms); "
          f"unanswered {len(report['unanswered'])}")
    print(f"  outcomes: {', '.join(f'{k} {v}' for k, v in sorted(report['outcomes'].items()))}")
    shutdown = "no" if report["shutdown_s"] is None else f"in {report['shutdown_s'] * 1000:.0f} ms"
    print(f"  suggestion afterwards: {report['suggestion_after']!r}; shutdown answered: {shutdown}")
    print(f"  server RSS {report['rss_before_mib']:.1f} MiB before, {report['rss_warm_mib']:.1f} after the first "
          f"tenth, {report['rss_after_mib']:.1f} after all (growth over the last nine tenths: "
          f"{report['rss_after_mib'] - report['rss_warm_mib']:+.1f} MiB)")
    never_read = not report["drain_stderr"] and not report["log_file"]
    print(f"  stderr: {report['stderr_lines']} lines{' (read only after the server exited)' if never_read else ''}; "
          f"the server reported {report['dropped_log_records']} log records dropped"
          f"{' (a count is written once the pipe drains, which never happened here)' if never_read else ''}")
    print(f"  mix: {', '.join(f'{k} {v}' for k, v in sorted(report['kinds'].items()))}")


def main_sync(model: Path, spec: LoadSpec) -> dict:
    return asyncio.run(run_load(model, spec))
