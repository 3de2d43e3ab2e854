"""`codegen-lsp bench remote --clients 1,2,4`: one shared llama-server under several editors typing at once.

For each N in --clients, a fresh llama.cpp `llama-server` (built by `llama_server.ensure_built`) with
`--parallel N -c N*contextTokens` (each slot gets the context one codegen-lsp server uses; continuous batching
is on by default and asked for with `--cont-batching`), `--metrics`, `--slots`, threads = --threads, then N
codegen-lsp servers: each a real server process over LSP stdio (headless.ready_session), settings
`remoteUrl` (a recording relay in front of llama-server, below) and `model` = the same GGUF (prompts built and
counted as in-process), temperature 0, otherwise the server's defaults (debounce, speculation). Each "editor"
opens its own copy of the trace's file, asks once at the starting state (the cold request, excluded), then
all N type the trace together, at the trace's own key times (absolute schedule, so a slow answer does not
slow the typing). Like VS Code, every key sends didChange, then `$/cancelRequest` for the previous inline
completion request if it has no answer yet (superseded), then a new Automatic `textDocument/inlineCompletion`.

Latency: request → answer, for the requests answered before the next key superseded them; the server's
debounce is inside it (it is what the editor waits). p50/p95 over all of them, and over those the model
answered (codegenLsp/stats source "model", not a cache). Requests superseded before their answer have no
latency: the count is reported (slow answers under load get superseded more, so p50 under load is
optimistic; "answered at pauses" says how many keys followed by a pause got their answer before the next key).

Cancellations that reached the server, per stream the codegen-lsp server closed before its end:
- the relay (one per editor, threads; each editor's `remoteUrl`) records when the codegen-lsp server closed a
  stream before its end (its remote engine's cancel: the guard shuts the socket) and the text chunks it had
  forwarded by then; it gives each /v1/completions body a unique `seed` (the only change it makes: greedy
  decoding, temperature 0 and top_k 1, does not use it) so that /slots names the stream's task;
- a poller thread reads `GET /slots` every --poll-ms (id_task, params.seed, is_processing, n_decoded,
  n_prompt_tokens of each slot, timestamped when received);
- llama-server's own log names each task it cancelled because the client went away ("cancel task, id_task =
  T") and the slot's token count at release ("release: id S | task T | stop processing: n_tokens = X").
Per closed stream: decoded at the close = the larger of the last /slots n_decoded received before the close
and the chunks forwarded before it (both lower bounds); decoded in all = X − its prompt length
(n_prompt_tokens − n_decoded in /slots samples taken while it generated), or the last n_decoded /slots showed,
the larger; tokens after the close = decoded in all − decoded at the close (an upper bound: the /slots sample
before the close may be a few ms old). Also: ms from the close to the first /slots sample showing the slot
released (an upper bound by up to one poll). A stream llama-server never showed in a slot (still queued) is
counted without tokens.

The codegen-lsp servers run at niceness --editor-nice (10): on a team they run on the editors' machines, so
here llama-server gets the cores first.

Wasted work: llamacpp:tokens_predicted_total (/metrics; it counts cancelled tasks' tokens too: slots flush
their stats at release) against the tokens of the answers the editors got (stats generatedTokens of the
requests answered with a non-empty suggestion by a model call).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import select
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lsprotocol import types

from . import trace as tr
from .llama_server import LlamaServer

DEFAULT_CLIENTS = (1, 2, 4)
DEFAULT_KEYSTROKES = 60
START_TIMEOUT_S = 300.0
COLD_TIMEOUT_S = 300.0
COLD_TRIES = 4
LAST_ANSWER_TIMEOUT_S = 120.0
RELAY_IO_TIMEOUT_S = 600.0
ANSWER_AFTER_CUT_S = 1.0
GIVEN_UP = ("superseded by a newer request", "request cancelled")  # codegenLsp/stats reasons
TARGET_P50_RATIO = 2.0  # issue 33: p50 at 4 clients within 2x of 1 client
TARGET_TOKENS_AFTER_CANCEL = 1  # issue 33: no superseded request decodes more than one token after its cancel


# -- the relay in front of llama-server: one per editor ----------------------------------------------

@dataclass
class Stream:
    """One HTTP request an editor's codegen-lsp server made, as the relay saw it (perf_counter seconds)."""

    client: int
    path: str
    sent_at: float
    tag: int | None = None  # the seed the relay gave its /v1/completions body: /slots shows it, naming the task
    first_chunk_at: float | None = None
    chunks: int = 0  # SSE chunks with text forwarded to the codegen-lsp server
    finished: bool = False  # a chunk with a finish_reason (or [DONE]) came: the task ended on the server
    client_closed_at: float | None = None  # codegen-lsp closed the stream before it finished
    chunks_at_close: int | None = None
    ended_at: float | None = None


_tags = iter(range(1_000_001, 2**31))  # seeds that name requests (one counter for every relay)
_tags_lock = threading.Lock()


def _next_tag() -> int:
    with _tags_lock:
        return next(_tags)


class Relay:
    """A TCP relay for one editor: its codegen-lsp server's remoteUrl. Each request gets its own upstream
    connection (Connection: close). A POST /v1/completions body gets a unique `seed` (the tag): greedy decoding
    (temperature 0, top_k 1) does not use it, and llama-server's /slots shows it beside the task's id, so each
    stream maps to its task exactly. Nothing else changes."""

    def __init__(self, upstream_port: int, client: int) -> None:
        self.upstream_port, self.client = upstream_port, client
        self.streams: list[Stream] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name=f"relay-{client}", daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name=f"relay-{self.client}-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self._accepter.join(2)
        for t in self._threads:
            t.join(2)

    def _serve(self, conn: socket.socket) -> None:
        upstream = None
        try:
            conn.settimeout(30)
            head, body = _read_request(conn)
            if head is None:
                return
            lines = head.split("\r\n")
            method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = [h for h in lines[1:] if h and h.split(":", 1)[0].strip().lower()
                       not in ("content-length", "connection", "host")]
            stream = Stream(self.client, path, time.perf_counter())
            if method == "POST" and path.rstrip("/").endswith("/completions"):
                try:
                    payload = json.loads(body)
                    stream.tag = payload["seed"] = _next_tag()
                    body = json.dumps(payload).encode("utf-8")
                except (ValueError, TypeError):
                    pass
            request = "\r\n".join([lines[0], f"Host: 127.0.0.1:{self.upstream_port}", *headers,
                                   f"Content-Length: {len(body)}", "Connection: close", "", ""]).encode() + body
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            upstream.sendall(request)
            stream.sent_at = time.perf_counter()
            with self._lock:
                self.streams.append(stream)
            self._pump(conn, upstream, stream)
        except OSError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for s in (upstream, conn):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def _pump(self, conn: socket.socket, upstream: socket.socket, stream: Stream) -> None:
        pending = b""
        deadline = time.monotonic() + RELAY_IO_TIMEOUT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([conn, upstream], [], [], 0.5)
            if conn in readable:
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:  # the codegen-lsp server closed its stream (its guard shut the socket)
                    if not stream.finished:
                        stream.client_closed_at = time.perf_counter()
                        stream.chunks_at_close = stream.chunks
                    stream.ended_at = time.perf_counter()
                    return  # closing upstream now tells llama-server the client is gone
                upstream.sendall(data)
            if upstream in readable:
                data = upstream.recv(65536)
                if not data:
                    stream.ended_at = time.perf_counter()
                    return
                pending += data
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    _count_event(line, stream)
                try:
                    conn.sendall(data)
                except OSError:
                    if not stream.finished:
                        stream.client_closed_at = time.perf_counter()
                        stream.chunks_at_close = stream.chunks
                    stream.ended_at = time.perf_counter()
                    return
        stream.ended_at = time.perf_counter()


def _read_request(conn: socket.socket) -> tuple[str | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > 1 << 20:
            return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    length = next((int(h.split(":", 1)[1]) for h in text.split("\r\n")[1:]
                   if h.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return text, body


def _count_event(line: bytes, stream: Stream) -> None:
    line = line.strip()
    if not line.startswith(b"data:"):
        return
    data = line[5:].strip()
    if data == b"[DONE]":
        stream.finished = True
        return
    try:
        chunk = json.loads(data)
    except ValueError:
        return
    for choice in chunk.get("choices") or []:
        if choice.get("text"):
            stream.chunks += 1
            stream.first_chunk_at = stream.first_chunk_at or time.perf_counter()
        if choice.get("finish_reason"):
            stream.finished = True


# -- the llama-server and what it says ---------------------------------------------------------------

class SharedServer(LlamaServer):
    """bench latency's llama-server (batch sizes, flash attention off, --cache-reuse 256) with N slots sharing
    N × the context per slot, continuous batching, /metrics and /slots, and timestamped log lines."""

    def __init__(self, binary: Path, model: Path, parallel: int, n_ctx_per_slot: int, threads: int,
                 log_path: Path, extra_args: list[str] | None = None) -> None:
        super().__init__(binary, model, threads, n_ctx_per_slot * parallel, log_path=log_path, parallel=parallel,
                         extra_args=["--cont-batching", "--metrics", "--slots", "--log-prefix", "--log-timestamps",
                                     *(extra_args or [])])

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        super().start(timeout)

    def metrics(self) -> dict[str, float]:
        out = {}
        for line in self.get("/metrics").decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name.strip()] = float(value)
                except ValueError:
                    pass
        return out


class SlotPoller:
    """GET /slots every `interval` s on one keep-alive connection; per slot, the samples where its state
    changed: (received at, id_task, is_processing, n_prompt_tokens, n_decoded, seed)."""

    def __init__(self, port: int, interval: float) -> None:
        self.port, self.interval = port, interval
        self.samples: dict[int, list[tuple[float, int | None, bool, int | None, int, int | None]]] = {}
        self.polls = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slots-poller", daemon=True)

    def __enter__(self) -> "SlotPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        last: dict[int, tuple] = {}
        while not self._stop.is_set():
            try:
                conn.request("GET", "/slots")
                slots = json.loads(conn.getresponse().read())
            except (OSError, http.client.HTTPException, ValueError):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self._stop.wait(0.05)
                continue
            now = time.perf_counter()
            self.polls += 1
            for s in slots:
                nt = (s.get("next_token") or [{}])[0]
                state = (s.get("id_task"), bool(s.get("is_processing")), s.get("n_prompt_tokens"),
                         int(nt.get("n_decoded") or 0), (s.get("params") or {}).get("seed"))
                if last.get(s["id"]) != state:
                    last[s["id"]] = state
                    self.samples.setdefault(s["id"], []).append((now, *state))
            self._stop.wait(self.interval)
        conn.close()


LOG_LAUNCH = re.compile(r"launch_slot_: id\s+(\d+) \| task (\d+) \| processing task")
LOG_CANCEL = re.compile(r"cancel task, id_task = (\d+)")
LOG_RELEASE = re.compile(r"release: id\s+(\d+) \| task (\d+) \| stop processing: n_tokens = (\d+)")
LOG_EVAL = re.compile(r"print_timing: id\s+(\d+) \| task (\d+) \|\s+eval time =\s*[\d.]+ ms /\s*(\d+) tokens")


def parse_server_log(text: str) -> dict:
    """Per task: slot, cancelled (llama-server cancelled it: its client went away), n_tokens at release, and
    the tokens a finished one decoded (its eval timing)."""
    tasks: dict[int, dict] = {}
    for line in text.splitlines():
        if m := LOG_LAUNCH.search(line):
            tasks.setdefault(int(m[2]), {})["slot"] = int(m[1])
        elif m := LOG_CANCEL.search(line):
            tasks.setdefault(int(m[1]), {})["cancelled"] = True
        elif m := LOG_RELEASE.search(line):
            t = tasks.setdefault(int(m[2]), {})
            t["slot"], t["n_tokens_at_release"] = int(m[1]), int(m[3])
        elif m := LOG_EVAL.search(line):
            tasks.setdefault(int(m[2]), {})["eval_tokens"] = int(m[3])
    return tasks


def cancellations(log_tasks: dict, samples: dict, streams: list[Stream]) -> list[dict]:
    """One record per stream the codegen-lsp server closed before its end (see the module doc): its task
    (the one /slots showed with the stream's seed), whether llama-server says it cancelled the task, and the
    tokens decoded after the close."""
    by_tag: dict[int, tuple[int, list]] = {}  # seed -> (slot, that task's samples while processing)
    for slot, xs in samples.items():
        for x in xs:
            if x[5] is not None and x[2]:
                by_tag.setdefault(x[5], (slot, []))[1].append(x)
    out = []
    for stream in streams:
        if stream.client_closed_at is None or stream.tag is None:
            continue
        t_close = stream.client_closed_at
        record = {"client": stream.client, "tag": stream.tag, "chunks_at_close": stream.chunks_at_close,
                  "sent_to_close_ms": round((t_close - stream.sent_at) * 1000, 1), "closed_at": t_close}
        slot, seen = by_tag.get(stream.tag, (None, []))
        if not seen:  # llama-server never showed it in a slot: still queued, or over between two polls
            record.update(task=None, slot=None, phase="not seen in a slot", decoded_at_close=None,
                          decoded_total=None, tokens_after_cancel=None)
            out.append(record)
            continue
        task = seen[0][1]
        info = log_tasks.get(task, {})
        generating = [x for x in seen if x[4] > 0 and x[3] is not None]
        prompt_len = statistics.mode([x[3] - x[4] for x in generating]) if generating else None
        decoded_slots = max(x[4] for x in seen)
        decoded_log = (info["n_tokens_at_release"] - prompt_len
                       if prompt_len is not None and "n_tokens_at_release" in info else None)
        # A text chunk is at least one token, whatever the slot's counter says (in one CI run it was one short
        # of the chunks the relay saw; healing's grammar was on, the cause is not known).
        total = max(decoded_slots, decoded_log or 0, stream.chunks)
        before = [x for x in samples[slot] if x[0] <= t_close]
        at_close_slots = before[-1][4] if before and before[-1][1] == task and before[-1][2] else 0
        at_close = max(at_close_slots, stream.chunks_at_close or 0)
        released = next((x[0] for x in samples[slot] if x[0] > t_close and not (x[1] == task and x[2])), None)
        record.update(task=task, slot=slot, cancelled_by_server=bool(info.get("cancelled")),
                      phase="generating" if at_close > 0 else "prompt", prompt_tokens=prompt_len,
                      decoded_at_close=at_close, decoded_at_close_slots=at_close_slots, decoded_total=total,
                      decoded_total_slots=decoded_slots, decoded_total_log=decoded_log,
                      tokens_after_cancel=max(0, total - at_close),
                      close_to_release_ms=round((released - t_close) * 1000, 1) if released else None)
        out.append(record)
    return out


# -- the editors ---------------------------------------------------------------------------------------

@dataclass
class Request:
    client: int
    key: int  # keys typed when it was sent (0: the cold request)
    sent_at: float
    answered_at: float | None = None
    superseded: bool = False  # cancelled by the editor ($/cancelRequest) before its answer
    text: str = ""
    error: str | None = None
    source: str | None = None  # from codegenLsp/stats
    reason: str | None = None
    generated_tokens: int | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.answered_at is None else (self.answered_at - self.sent_at) * 1000


def _inline_params(uri: str, text: str, offset: int) -> types.InlineCompletionParams:
    line, col = tr.utf16_position(text, offset)
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


def _first_text(result) -> str:
    """The first item's insertText: typed (lsprotocol), or as pygls leaves an untyped answer (attributes or a
    dict with the JSON names)."""
    def get(obj, *names):
        for name in names:
            value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
            if value is not None:
                return value
        return None

    items = result if isinstance(result, list) else (get(result, "items") or []) if result else []
    if not items:
        return ""
    text = get(items[0], "insert_text", "insertText")
    return str(get(text, "value") if text is not None and not isinstance(text, str) else text or "")


class Editor:
    def __init__(self, index: int, client, uri: str, trace: dict) -> None:
        self.index, self.client, self.uri, self.trace = index, client, uri, trace
        self.requests: list[Request] = []
        self.cancels_sent = 0

    def _send(self, key: int) -> tuple[Request, asyncio.Future]:
        text = tr.text_after(self.trace, key)
        cursor = self.trace["cursor"] + sum(len(e["text"]) for e in self.trace["events"][:key])
        request = Request(self.index, key, time.perf_counter())
        future = asyncio.ensure_future(self.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(self.uri, text, cursor),
            msg_id=f"e{self.index}-k{key}"))

        def done(f: asyncio.Future) -> None:
            error = "cancelled" if f.cancelled() else f.exception()  # retrieved: a superseded one fails too
            if request.superseded:
                return
            request.answered_at = time.perf_counter()
            if error is not None:
                request.error = str(error)[:200]
            else:
                request.text = _first_text(f.result())

        future.add_done_callback(done)
        self.requests.append(request)
        return request, future

    async def cold(self) -> Request:
        """The request at the starting state, asked again (at most COLD_TRIES) while it fails or times out:
        on a loaded machine the first full prompt may take longer than requestTimeoutMs, and llama-server keeps
        what it evaluated, so the next try goes on from there."""
        deadline = time.monotonic() + COLD_TIMEOUT_S
        for attempt in range(COLD_TRIES):
            n_stats = len(self.client.stats)
            request, future = self._send(0)
            if attempt:
                self.requests.remove(request)
                self.requests[0] = request
            try:
                await asyncio.wait_for(asyncio.shield(future), max(1.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise
            except Exception:  # noqa: BLE001 - kept on the request; ask again
                pass
            await asyncio.sleep(0.05)
            stats = [s for s in self.client.stats[n_stats:] if s.kind == "request" and s.uri == self.uri]
            if request.error is None and stats and stats[-1].finish not in ("error", "cancelled"):
                break
        return request

    async def type_trace(self, t0: float) -> None:
        keys = tr.keystrokes(self.trace)
        pending: tuple[Request, asyncio.Future] | None = None
        due = t0
        for k in keys:
            due += k.delay_ms / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            text = tr.text_after(self.trace, k.index)
            line, col = tr.utf16_position(text, k.offset)
            self.client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=k.index + 2),
                content_changes=[types.TextDocumentContentChangePartial(range=types.Range(
                    start=types.Position(line=line, character=col), end=types.Position(line=line, character=col)),
                    text=k.text)]))
            if pending is not None and not pending[1].done():
                pending[0].superseded = True
                self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"e{self.index}-k{pending[0].key}"))
                self.cancels_sent += 1
            pending = self._send(k.index + 1)
        if pending is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pending[1]), LAST_ANSWER_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - its error is kept on the request
                pass

    def attach_stats(self) -> None:
        """The codegenLsp/stats of each request (kind "request", the document version after its key)."""
        by_version: dict[int, list] = {}
        for s in self.client.stats:
            if s.kind == "request" and s.uri == self.uri:
                by_version.setdefault(s.version, []).append(s)
        for r in self.requests:
            found = by_version.get(r.key + 1, [])
            if found:
                s = found[-1]
                r.source, r.reason = s.source, s.reason
                r.generated_tokens = s.generated_tokens if s.model_call else None


# -- one N ----------------------------------------------------------------------------------------------

def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _percentile(xs: list[float], q: int) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


def _renice(pid: int, niceness: int) -> int:
    """Lower the priority of a process and of its children (a codegen-lsp server and its tokenizer process);
    the number of processes reniced."""
    done = 0
    try:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
        done += 1
    except OSError:
        return 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        done += sum(_renice(int(child), niceness) for child in children)
    return done


async def _editors(n: int, relays: list[Relay], model: Path, trace: dict, settings: dict, root: Path,
                   echo, editor_nice: int = 0) -> tuple[list[Editor], list[float]]:
    from codegen_lsp.headless import ready_session, stop_session

    clients: list = []
    try:
        async def start(i: int):
            folder = root / f"editor{i}"
            folder.mkdir()
            options = {"model": str(model), "remoteUrl": relays[i].url, "temperature": 0, **settings}
            return await asyncio.wait_for(ready_session(folder, options, show_messages=False), START_TIMEOUT_S)

        results = await asyncio.gather(*(start(i) for i in range(n)), return_exceptions=True)
        started = [r for r in results if not isinstance(r, BaseException)]
        clients[:] = started
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        if editor_nice:  # on a team the editors' servers run on the editors' machines, not beside llama-server
            for client in started:
                _renice(client._server.pid, editor_nice)  # type: ignore[attr-defined]
        editors = []
        for i, client in enumerate(started):
            path = root / f"editor{i}" / trace.get("name", "trace.py")
            path.write_text(trace["initial_text"], encoding="utf-8")
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                uri=path.as_uri(), language_id=trace.get("language", "python"), version=1,
                text=trace["initial_text"])))
            editors.append(Editor(i, client, path.as_uri(), trace))
        cold = await asyncio.gather(*(e.cold() for e in editors))
        echo(f"  {n} editor(s) ready; cold request {', '.join(f'{r.latency_ms:.0f}' for r in cold)} ms")
        t0 = time.perf_counter() + 0.2
        await asyncio.gather(*(e.type_trace(t0) for e in editors))
        await asyncio.sleep(0.5)  # the last stats and the last streams' ends
        for e in editors:
            e.attach_stats()
        return editors, [r.latency_ms for r in cold]
    finally:
        await asyncio.gather(*(stop_session(c) for c in clients), return_exceptions=True)


def run_one(n: int, binary: Path, model: Path, trace: dict, threads: int, n_ctx: int, settings: dict,
            poll_ms: float, log_dir: Path, extra_args: list[str], echo=print, editor_nice: int = 0) -> dict:
    server = SharedServer(binary, model, n, n_ctx, threads, log_dir / f"llama-server-{n}.log", extra_args)
    relays: list[Relay] = []
    started = time.perf_counter()
    try:
        server.start()
        relays = [Relay(server.port, i) for i in range(n)]
        with tempfile.TemporaryDirectory() as root, SlotPoller(server.port, poll_ms / 1000) as poller:
            editors, cold = asyncio.run(_editors(n, relays, model, trace, settings, Path(root), echo, editor_nice))
            time.sleep(0.3)
        metrics = server.metrics()
        peak_rss = _peak_rss(server)
    finally:
        for r in relays:
            r.close()
        server.stop()
    log_tasks = parse_server_log(server.log_path.read_text(errors="replace"))
    streams = [s for r in relays for s in r.streams]
    cancelled = cancellations(log_tasks, poller.samples, streams)
    return summarize(n, editors, cold, cancelled, streams, log_tasks, metrics, poller, server, peak_rss,
                     time.perf_counter() - started)


def _peak_rss(server: SharedServer) -> float | None:
    from .llama_server import peak_rss_kib

    kib = peak_rss_kib(server.process.pid) if server.process else None
    return round(kib / 1024, 1) if kib else None


def summarize(n: int, editors: list[Editor], cold: list[float], cancelled: list[dict], streams: list[Stream],
              log_tasks: dict, metrics: dict, poller: SlotPoller, server: SharedServer, peak_rss: float | None,
              seconds: float) -> dict:
    timed = [r for e in editors for r in e.requests if r.key > 0]
    # An answer the server gave because a newer request superseded this one (it raced our $/cancelRequest)
    # is no keystroke-to-suggestion time: it counts as superseded.
    answered = [r for r in timed if r.answered_at is not None and r.error is None and r.reason not in GIVEN_UP]
    model_answered = [r for r in answered if r.source == "model"]
    lat = [r.latency_ms for r in answered]
    model_lat = [r.latency_ms for r in model_answered]
    keys = tr.keystrokes(editors[0].trace) if editors else []
    from .latency import server_debounce_ms

    pause = server_debounce_ms(keys) if keys else 0
    pause_keys = {k.index + 1 for k in keys if k.pause_after_ms >= pause}
    at_pauses = [r for r in timed if r.key in pause_keys]
    # Why each stream was closed early: the codegen-lsp server cut it once it had its answer (a stop string, a
    # loop, the budget: remote.py's stream rules) when that editor got a model answer within ANSWER_AFTER_CUT_S
    # of the close, else a cancel (a superseded request, a deadline).
    for c in cancelled:
        c["why"] = "cancelled"
        for r in answered:
            if r.client == c["client"] and r.source == "model" and \
                    0 <= r.answered_at - c["closed_at"] <= ANSWER_AFTER_CUT_S and r.sent_at <= c["closed_at"]:
                c["why"] = "cut after its answer"
        # The editor's last request before the close: its key superseded the stream's request (the cancel and
        # the new request go together), so this is codegen-lsp's time from the cancel to closing the stream.
        before = [r for r in timed if r.client == c["client"] and r.sent_at <= c["closed_at"]]
        c["last_key_to_close_ms"] = round((c["closed_at"] - max(r.sent_at for r in before)) * 1000, 1) \
            if before else None
    after = [c["tokens_after_cancel"] for c in cancelled if c.get("tokens_after_cancel") is not None]
    key_to_close = [c["last_key_to_close_ms"] for c in cancelled
                    if c["why"] == "cancelled" and c["last_key_to_close_ms"] is not None]
    accepted_tokens = sum(r.generated_tokens or 0 for r in answered if r.text and r.source == "model")
    predicted = metrics.get("llamacpp:tokens_predicted_total")
    completions = [s for s in streams if s.path.rstrip("/").endswith("/completions")]
    return {
        "clients": n,
        "llama_server_command": server.command,
        "seconds": round(seconds, 1),
        "cold_ms": [round(x, 1) for x in cold],
        "requests": len(timed),
        "answered": len(answered),
        "superseded_by_editor": sum(r.superseded for r in timed),
        "answered_superseded": sum(1 for r in timed if r.answered_at is not None and r.reason in GIVEN_UP),
        "errors": sum(1 for r in timed if r.error),
        "non_empty_answers": sum(1 for r in answered if r.text),
        "model_answers": len(model_answered),
        "p50_ms": statistics.median(lat) if lat else None,
        "p95_ms": _percentile(lat, 95),
        "model_p50_ms": statistics.median(model_lat) if model_lat else None,
        "model_p95_ms": _percentile(model_lat, 95),
        "pause_keys": len(at_pauses),
        "answered_at_pauses": sum(1 for r in at_pauses if r.answered_at is not None and r.error is None),
        "editor_cancels_sent": sum(e.cancels_sent for e in editors),
        "remote_requests": len(completions),
        "streams_closed_early": sum(1 for s in completions if s.client_closed_at is not None),
        "streams_cut_after_answer": sum(1 for c in cancelled if c["why"] == "cut after its answer"),
        "server_tasks": sum(1 for t in log_tasks.values() if "n_tokens_at_release" in t or t.get("cancelled")),
        "server_cancelled_tasks": sum(1 for t in log_tasks.values() if t.get("cancelled")),
        "closed_streams_seen_in_a_slot": len(after),
        "cancelled_while_generating": sum(1 for c in cancelled if c.get("phase") == "generating"),
        "last_key_to_close_ms_p50": _median(key_to_close),
        "tokens_after_cancel_max": max(after) if after else None,
        "tokens_after_cancel_mean": round(statistics.fmean(after), 2) if after else None,
        "tokens_after_cancel_histogram": {str(k): after.count(k) for k in sorted(set(after))},
        "cancels_over_target": sum(1 for x in after if x > TARGET_TOKENS_AFTER_CANCEL),
        "close_to_release_ms_p50": _median([c["close_to_release_ms"] for c in cancelled
                                            if c.get("close_to_release_ms") is not None]),
        "close_to_release_ms_max": max((c["close_to_release_ms"] for c in cancelled
                                        if c.get("close_to_release_ms") is not None), default=None),
        "tokens_predicted_total": int(predicted) if predicted is not None else None,
        "tokens_decoded_by_cancelled_tasks": sum(c.get("decoded_total") or 0 for c in cancelled),
        "tokens_in_shown_answers": accepted_tokens,
        "wasted_token_share": round(1 - accepted_tokens / predicted, 3) if predicted else None,
        "slots_polls": poller.polls,
        "slots_poll_errors": poller.errors,
        "llama_server_peak_rss_mib": peak_rss,
        "cancellations": cancelled,
        "samples": [{**asdict(r), "latency_ms": r.latency_ms} for r in timed],
    }


# -- the command -------------------------------------------------------------------------------------------

def run_remote(model: Path, trace: dict, clients: tuple[int, ...] = DEFAULT_CLIENTS, threads: int = 2,
               n_ctx: int = 2048, settings: dict | None = None, poll_ms: float = 5.0, out: Path | None = None,
               llama_server_dir: Path | None = None, llama_server_args: list[str] | None = None,
               llama_server_binary: Path | None = None, editor_nice: int = 10, echo=print) -> dict:
    """`llama_server_binary`: that llama-server, as it is; else the one `llama_server.ensure_built` builds or finds.
    `editor_nice`: the codegen-lsp servers (and their tokenizer processes) run at this niceness, so that on one
    machine llama-server gets the cores first, as it would with the editors on their own machines (0: as is)."""
    from .latency import machine_info
    from .llama_server import DEFAULT_DIR, ensure_built

    if not clients or any(c < 1 for c in clients):
        raise ValueError(f"--clients takes positive counts (got {clients})")
    if llama_server_binary is not None:
        binary, build = llama_server_binary, {"binary": str(llama_server_binary), "given": True}
    else:
        binary, build = ensure_built(llama_server_dir or DEFAULT_DIR, echo=echo)
    machine = machine_info()
    log_dir = (out.parent if out else Path("bench-results")) / "remote-logs"
    settings = {"contextTokens": n_ctx, **(settings or {})}
    keys = tr.keystrokes(trace)
    echo(f"{len(keys)} keys ({sum(k.delay_ms for k in keys) / 1000:.1f} s of typing) per editor, clients "
         f"{','.join(map(str, clients))}, {threads} llama-server threads, {n_ctx} context tokens per slot")
    runs = []
    for n in clients:
        echo(f"N = {n}: llama-server --parallel {n}, {n} codegen-lsp server(s)...")
        runs.append(run_one(n, binary, model, trace, threads, n_ctx, settings, poll_ms, log_dir,
                            list(llama_server_args or []), echo, editor_nice))
        r = runs[-1]
        echo(f"  p50 {_fmt(r['p50_ms'])} ms, p95 {_fmt(r['p95_ms'])} ms over {r['answered']} answers; "
             f"{r['streams_closed_early']} streams closed early, {r['server_cancelled_tasks']} tasks cancelled by "
             f"llama-server, tokens decoded after a close: max {_fmt(r['tokens_after_cancel_max'])}")
    base = runs[0] if runs and runs[0]["clients"] == min(clients) else None
    ratios = {}
    if base and base["p50_ms"]:
        for r in runs:
            ratios[str(r["clients"])] = {
                "p50": round(r["p50_ms"] / base["p50_ms"], 2) if r["p50_ms"] else None,
                "model_p50": round(r["model_p50_ms"] / base["model_p50_ms"], 2)
                if r["model_p50_ms"] and base["model_p50_ms"] else None}
    report = {
        "command_options": {"model": str(model), "clients": list(clients), "threads": threads,
                            "context_tokens_per_slot": n_ctx, "settings": settings, "poll_ms": poll_ms,
                            "editor_nice": editor_nice,
                            "llama_server_args": list(llama_server_args or []),
                            "relay": "each /v1/completions gets a unique seed (greedy: unused) naming its task"},
        "model": str(model),
        "trace": {"name": trace.get("name"), "function": trace.get("function"), "seed": trace.get("seed"),
                  "keystrokes": len(keys), "typed_seconds": round(sum(k.delay_ms for k in keys) / 1000, 1)},
        "machine": {**machine, "load_1min_at_end": round(os.getloadavg()[0], 2)},
        "llama_server_build": build,
        "engine": _engine_version(),
        "ratios_to_fewest_clients": ratios,
        "targets": _targets(runs, ratios),
        "runs": runs,
    }
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report


def _engine_version() -> dict:
    """The remote engine measured (others change it): its file's hash, and whether it differs from git HEAD."""
    import hashlib

    from codegen_lsp.resources import package_path

    path = package_path("engine") / "remote.py"
    out: dict = {"remote.py": hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else None}
    try:
        diff = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)], cwd=path.parent,
                              capture_output=True, timeout=10)
        out["remote.py_uncommitted_changes"] = diff.returncode == 1
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path.parent, capture_output=True,
                              text=True, timeout=10)
        out["git_head"] = head.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _targets(runs: list[dict], ratios: dict) -> dict:
    four = ratios.get("4", {}).get("p50") if "1" in ratios else None
    after = [r["tokens_after_cancel_max"] for r in runs if r["tokens_after_cancel_max"] is not None]
    return {"p50_4_over_1": four, "p50_4_over_1_within_2x": None if four is None else four <= TARGET_P50_RATIO,
            "max_tokens_after_cancel": max(after) if after else None,
            "at_most_one_token_after_cancel": None if not after else max(after) <= TARGET_TOKENS_AFTER_CANCEL}


def _fmt(x, spec: str = ".0f") -> str:
    return "–" if x is None else format(x, spec)


HEADER = ["N", "p50 ms", "p95 ms", "model p50 ms", "model p95 ms", "answered/requests", "non-empty",
          "at pauses", "editor cancels", "remote reqs", "closed early (cut)", "server cancels", "in a slot (generating)",
          "after-close max", "after-close mean", "close→release ms p50/max", "predicted tok", "shown tok", "wasted"]


def table_rows(report: dict) -> list[list[str]]:
    rows = []
    for r in report["runs"]:
        rows.append([str(r["clients"]), _fmt(r["p50_ms"]), _fmt(r["p95_ms"]), _fmt(r["model_p50_ms"]),
                     _fmt(r["model_p95_ms"]), f"{r['answered']}/{r['requests']}", str(r["non_empty_answers"]),
                     f"{r['answered_at_pauses']}/{r['pause_keys']}", str(r["editor_cancels_sent"]),
                     str(r["remote_requests"]), f"{r['streams_closed_early']} ({r['streams_cut_after_answer']})",
                     str(r["server_cancelled_tasks"]),
                     f"{r['closed_streams_seen_in_a_slot']} ({r['cancelled_while_generating']})",
                     _fmt(r["tokens_after_cancel_max"]), _fmt(r["tokens_after_cancel_mean"], ".2f"),
                     f"{_fmt(r['close_to_release_ms_p50'])}/{_fmt(r['close_to_release_ms_max'])}",
                     _fmt(r["tokens_predicted_total"]),
                     str(r["tokens_in_shown_answers"]),
                     "–" if r["wasted_token_share"] is None else f"{r['wasted_token_share']:.0%}"])
    return rows


def print_remote_report(report: dict) -> None:
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_1min_at_start']} → {m['load_1min_at_end']}; "
          f"trace {report['trace']['name']} {report['trace']['keystrokes']} keys per editor")
    rows = [HEADER] + table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    for r in rows:
        print("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)))
    if report["ratios_to_fewest_clients"]:
        print("p50 relative to 1 client: " + ", ".join(
            f"N={n}: {v['p50']} (model answers only: {v['model_p50']})"
            for n, v in report["ratios_to_fewest_clients"].items()))
    for r in report["runs"]:
        if r.get("last_key_to_close_ms_p50") is not None:
            print(f"N={r['clients']}: a superseding key to the stream's close (codegen-lsp's cancel), p50 "
                  f"{r['last_key_to_close_ms_p50']:.1f} ms")
    t = report["targets"]
    if t["p50_4_over_1"] is not None:
        print(f"target p50(4)/p50(1) ≤ {TARGET_P50_RATIO}: {t['p50_4_over_1']} "
              f"{'PASS' if t['p50_4_over_1_within_2x'] else 'MISS'}")
    if t["max_tokens_after_cancel"] is not None:
        print(f"target ≤ {TARGET_TOKENS_AFTER_CANCEL} token decoded after a cancel: max "
              f"{t['max_tokens_after_cancel']} {'PASS' if t['at_most_one_token_after_cancel'] else 'MISS'}")
