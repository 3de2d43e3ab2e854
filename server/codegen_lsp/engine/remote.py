"""A remote engine: the same `Engine` protocol against an OpenAI-compatible completion server.

llama.cpp's `llama-server`, vLLM and llama-cpp-python's `python -m llama_cpp.server` all serve
`POST /v1/completions` with `stream: true` as server-sent events. Prompts are built here exactly as
for the in-process engine (context/prompt.py segments); what travels is text: text segments as they
are, sentinel token ids as their token text from the local copy of the GGUF (`<mask_1>`, `<sep>`,
`<|endoftext|>`...), which the servers parse back into the special tokens (llama_cpp.server and
llama-server tokenize completion prompts with special-token parsing on). Formats that need sentinels
therefore need the `model` setting to point at the same GGUF the server runs; left-to-right does not.

One worker thread sends one request at a time (like the engine process). Every request (the load's
GET /v1/models too) has a guard thread that waits on the job's cancel event and the request's deadline
and shuts the socket down when either fires: the worker's blocking read returns at once, and the
server sees the client gone and stops decoding (a connect is bounded by its socket timeout, the time
left). A per-read timeout alone would let a server that drips a byte a second stall us for ever. A
generation's deadline also covers the local token counts that build its prompt.

An answer is bounded in size too: at most max_tokens text chunks (then we stop reading and keep them:
finish "length"), ANSWER_BYTES_BASE + ANSWER_BYTES_PER_TOKEN * max_tokens bytes in all, and
LINE_LIMIT_BYTES a line. Failures during generation (timeout, connection lost, HTTP errors, an answer
too large or of the wrong shape) come back as an empty result with finish_reason "error", and the
reason goes to `report` (the client's log): no suggestion is better than an error popup on every
keystroke.

The answer goes through the same rules as an in-process one: token healing (engine/remote_heal.py: the
prompt is cut at its last token boundary and the answer must begin with what was cut), then, while it
streams, decode_rules.DecodeRules (a stop string, a loop starting, the token budget: the stream is closed
there, which stops the server's decoding), then the same post-processing (postprocess/, in completion.py).
A stream that ends without saying it is done is an error: nothing half-received is inserted.

remoteApiKey is refused over plain http to anything but a loopback address: the key would cross the
network in clear text.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..context.prompt import Text, Token, expand, fit_segments
from ..gguf.header import read_header
from ..gguf.inspect import TOKENS_KEY, ModelFileError, ModelFileInfo, inspect_model_file
from ..gguf.meta import PromptFormat
from .decode_rules import DecodeRules
from .heal_cut import heal_cut
from .jobs import EngineConfig, GenerationJob, GenerationResult
from .process import EngineCrashed, VocabProcess
from .remote_heal import HealedStream, grammar, heal_mode, probe_mismatch, probe_request, server_kind
from .worker import ThreadedEngine

log = logging.getLogger(__name__)
LOAD_TIMEOUT_S = 5.0  # GET /v1/models at load: the server is up or it is not
CHARS_PER_TOKEN_ESTIMATE = 3  # without a local tokenizer, text is assumed to take len/3 tokens
GUARD_POLL_S = 0.01
# Size limits on what a server sends back. A streamed chunk is one token's text in a JSON envelope of
# a few hundred bytes (id, model, created, index...); 4 KiB a token is ~10x that, escapes included.
# The base covers a last chunk with usage and timings and servers that echo more.
ANSWER_BYTES_BASE = 1 << 20
ANSWER_BYTES_PER_TOKEN = 4 << 10
LINE_LIMIT_BYTES = 1 << 20  # one SSE line is one chunk: no legitimate one comes near this
MODELS_BYTES = 1 << 20  # the /v1/models body we read (a list of model ids)
ERROR_BODY_BYTES = 2000


class RemoteEngineError(ModelFileError):
    """The inference server cannot be used; lifecycle reports it like a bad model file."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        Exception.__init__(self, message)
        self.path, self.problem = path or Path(), message


@dataclass(frozen=True)
class RemoteConfig(EngineConfig):
    """`model_path` is the optional local copy of the GGUF the server runs (metadata, sentinel texts,
    token counts); n_ctx caps the prompt as for the in-process engine."""

    model_path: Path | None = None  # type: ignore[assignment]
    url: str = ""
    remote_model: str | None = None  # the request's `model` field (vLLM and multi-model servers need it)
    timeout_s: float = 30.0
    api_key: str | None = None
    healing: str = "auto"  # how the answer is made to begin with what healing cut: remote_heal.heal_mode


class RemoteEngine(ThreadedEngine):
    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self._report = report or (lambda message: None)
        self._token_texts: list[str] = []
        self._vocab: VocabProcess | None = None  # the local GGUF's tokenizer, when one is given
        self._heal = "off"  # "grammar" | "check" | "off" (remote_heal.heal_mode)
        self._logged: set[str] = set()  # healing notes already logged for this load
        self.detail = ""  # for the status: the server's kind, how healing is done, a tokenizer mismatch
        self.reasks = 0  # requests sent again with the whole prompt (healing's fallback), for `bench remote-healing`
        super().__init__("remote-worker")

    def _free(self) -> None:
        if self._vocab is not None:
            self._vocab.close()
        self._vocab, self._info, self._token_texts = None, None, []

    def _load(self, config: EngineConfig) -> ModelFileInfo:
        if not isinstance(config, RemoteConfig) or not config.url:
            raise RemoteEngineError("the remote engine needs a remoteUrl")
        self._free()
        _refuse_plain_key(config)  # before any connection: the key must not travel
        server_model, owned_by = self._check_server(config)
        kind = server_kind(owned_by)
        if config.model_path is not None:
            info = inspect_model_file(config.model_path)
            tokens = read_header(config.model_path, string_arrays=(TOKENS_KEY,)).fields[TOKENS_KEY]
            texts = [str(t) for t in tokens]
            # Last: nothing after it can fail and leave the tokenizer's process without an owner.
            try:  # the tokenizer alone (no weights), in an engine process: exact token counts for fitting
                self._vocab = VocabProcess(config.model_path)
            except (EngineCrashed, TimeoutError) as exc:  # VocabProcess has closed its child
                raise ModelFileError(config.model_path, "llama.cpp could not read its vocabulary "
                                                        f"({str(exc) or 'timed out'})") from None
            self._token_texts = texts
            self._heal, note = self._check_tokenizer(config, kind, heal_mode(kind, config.healing))
        else:
            # No tokenizer here: what healing cuts is the trailing spaces and tabs (a token boundary in
            # every code tokenizer).
            self._heal, note = heal_mode(kind, config.healing), ""
            info = ModelFileInfo(path=Path(), architecture="remote", name=config.remote_model or server_model,
                                 context_length=config.n_ctx, prompt_format=PromptFormat.LEFT_TO_RIGHT,
                                 family="unknown", end_token_ids=(), token_ids={}, size_bytes=0)
        self._info, self._config, self._logged = info, config, set()
        self.detail = f"{kind}; token healing: {'by grammar' if self._heal == 'grammar' else self._heal}{note}"
        log.info("remote engine at %s: model %s (%s), %s", config.url, info.name, info.prompt_format.value,
                 self.detail)
        return info

    def _check_tokenizer(self, config: RemoteConfig, kind: str, mode: str) -> tuple[str, str]:
        """The healing mode, and a note for the status: off when the server tokenizes a probe string other
        than the local GGUF does (healing would cut the prompt where the server has no token boundary)."""
        request = probe_request(kind, config.remote_model)
        if mode == "off" or request is None or self._vocab is None:
            return mode, ""
        try:
            answer = self._request_json(config, "POST", request[0], request[1], "tokenize")
            local = self._vocab.tokenize(str(request[1].get("content") or request[1].get("input")
                                             or request[1].get("prompt")), LOAD_TIMEOUT_S)
        except (RemoteEngineError, EngineCrashed, TimeoutError, ModelFileError) as exc:
            log.info("tokenizer not compared with the inference server's: %s", exc)
            return mode, "; tokenizer not compared"
        mismatch = probe_mismatch(answer, local)
        if mismatch is None:
            return mode, ""
        problem = (f"the inference server's tokenizer is not codegenLsp.model's ({mismatch}): token healing is "
                   "off and token counts may be wrong; set codegenLsp.model to the GGUF the server runs")
        self._report(problem)
        return "off", f"; tokenizer differs from codegenLsp.model ({mismatch})"

    def _check_server(self, config: RemoteConfig) -> tuple[str, Any]:
        """GET /v1/models: the first model's id (for the status line when there is no local GGUF) and its
        `owned_by` (which server this is)."""
        answer = self._request_json(config, "GET", "/v1/models", None, "/v1/models")
        models = answer.get("data") if isinstance(answer, dict) else None
        first = models[0] if isinstance(models, list) and models else None
        if not isinstance(first, dict):
            return "remote model", None
        return (str(first["id"]) if first.get("id") else "remote model"), first.get("owned_by")

    def _request_json(self, config: RemoteConfig, method: str, path: str, body: Any, what: str) -> Any:
        """One small request at load (bounded by LOAD_TIMEOUT_S and MODELS_BYTES): its JSON answer (None when
        it is not JSON), or RemoteEngineError."""
        limit_s = min(config.timeout_s, LOAD_TIMEOUT_S)
        deadline = time.monotonic() + limit_s
        conn = _connection(config.url, limit_s)
        error: BaseException | None = None
        with _Guard(conn, deadline, threading.Event()) as guard:
            try:
                guard.connect()
                conn.request(method, _endpoint(config.url, path), headers=_headers(config),
                             body=None if body is None else json.dumps(body).encode("utf-8"))
                response = conn.getresponse()
                data = response.read(MODELS_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                error = exc
        if guard.stopped or isinstance(error, TimeoutError):
            raise RemoteEngineError(f"the inference server at {config.url} did not answer {what} within "
                                    f"{limit_s * 1000:.0f} ms", config.model_path)
        if error is not None:
            raise RemoteEngineError(f"cannot reach the inference server at {config.url}: {_describe(error)}",
                                    config.model_path)
        if response.status != 200:
            raise RemoteEngineError(f"the inference server at {config.url} answered {what} with "
                                    f"HTTP {response.status}: {data[:200].decode('utf-8', 'replace')}",
                                    config.model_path)
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            return None

    def _count_tokens(self, text: str, deadline: float | None = None) -> int:
        """Exact with the local tokenizer (waiting at most until `deadline`), else an estimate."""
        if self._vocab is not None:
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                return self._vocab.count(text, timeout)
            except (EngineCrashed, TimeoutError, ModelFileError) as exc:  # estimate rather than fail the request
                log.warning("token count unavailable (%s); estimating until the next load", str(exc) or "timed out")
                self._drop_vocab()
        return -(-len(text) // CHARS_PER_TOKEN_ESTIMATE)

    def _drop_vocab(self) -> None:
        """Stop using the tokenizer and end its process, in the background: stopping a hung one takes up to
        process.STOP_TIMEOUT_S, which must not come out of the request's time."""
        vocab, self._vocab = self._vocab, None
        if vocab is not None:
            threading.Thread(target=vocab.close, name="vocab-close", daemon=True).start()

    def _prompt(self, job: GenerationJob, n_ctx: int, max_tokens: int, deadline: float) -> tuple[str, str, str]:
        """The prompt's text (the prefix cut by token healing), the text healing cut off, and the text
        before the cursor (uncut: the loop rule's context)."""
        segments = expand(fit_segments(job.segments, n_ctx - max_tokens - 1,
                                       lambda text: self._count_tokens(text, deadline), job.prefix_share))
        parts: list[str] = []
        removed, before_cursor = "", ""
        for segment in segments:
            if isinstance(segment, Text):
                text = segment.text
                if segment.role == "prefix":
                    before_cursor = text
                    if job.heal and self._heal != "off":
                        removed = self._heal_cut(text, deadline)
                        text = text[:len(text) - len(removed)]
                parts.append(text)
            elif isinstance(segment, Token):
                if not 0 <= segment.token_id < len(self._token_texts):
                    raise RemoteEngineError(
                        f"this prompt format needs the text of sentinel token {segment.token_id}: set "
                        "codegenLsp.model to a local copy of the GGUF the inference server runs")
                parts.append(self._token_texts[segment.token_id])
        return "".join(parts), removed, before_cursor

    def _heal_cut(self, text: str, deadline: float) -> str:
        """What token healing takes off the end of `text`: its last token (local tokenizer), else its
        trailing spaces and tabs; "" when nothing (right after a line break, or the cut would split a
        character)."""
        if self._vocab is None:
            return "" if text.endswith("\n") else text[len(text.rstrip(" \t")):]
        try:
            n_tokens, piece = self._vocab.last_piece(text, max(0.0, deadline - time.monotonic()))
        except (EngineCrashed, TimeoutError, ModelFileError) as exc:
            log.warning("token healing unavailable (%s); estimating until the next load", str(exc) or "timed out")
            self._drop_vocab()
            return ""
        removed, skipped = heal_cut(text, n_tokens, piece)
        try:  # the cut must fall between characters: the server takes text
            text.encode("utf-8")[:len(text.encode("utf-8")) - len(removed)].decode("utf-8")
            cut = removed.decode("utf-8")
        except UnicodeError:
            cut, skipped = "", "the last token is part of a character"
        if skipped:
            self._log_once(f"token healing skipped: {skipped}")
        return cut

    def _log_once(self, note: str, level: int = logging.INFO) -> None:
        if note not in self._logged:
            self._logged.add(note)
            log.log(level, "%s", note)

    def _generate(self, job: GenerationJob) -> GenerationResult:
        if job.cancel.is_set():
            return GenerationResult("", "cancelled")
        if job.warm_only:  # the inference server's cache is its own: nothing is sent for a warm-up
            return GenerationResult("", "warm")
        config, info = self._config, self._info
        if config is None or info is None:
            raise RemoteEngineError("no inference server is configured")
        deadline = time.monotonic() + config.timeout_s  # the whole call: token counts, connect, stream
        n_ctx = max(64, min(config.n_ctx, info.context_length))
        max_tokens = max(1, min(job.max_tokens, n_ctx // 2))
        try:
            prompt, removed, before_cursor = self._prompt(job, n_ctx, max_tokens, deadline)
        except RemoteEngineError as exc:
            return self._failed(str(exc))
        prompt_tokens = self._count_tokens(prompt, deadline) if self._vocab is not None else 0
        healing = self._heal if removed else "off"
        outcome = self._stream(config, job, self._body(job, prompt, removed, healing, max_tokens),
                               prompt_tokens, deadline, HealedStream(removed) if removed else None,
                               DecodeRules(job, before_cursor, max_tokens))
        if isinstance(outcome, GenerationResult):
            return outcome
        # The answer did not begin with what healing cut (a server that ignores the grammar, or "check"), or
        # the server refused the grammar: ask once more with the whole prompt, unconstrained.
        if outcome == "refused":
            self._heal = "check"
            self.detail = self.detail.replace("by grammar", "check (the server refused the grammar)")
        self._log_once(f"token healing: {'the inference server refused the grammar; checking answers instead' if outcome == 'refused' else f'an answer did not begin with the text healing cut ({healing}); asked again with the whole prompt'}",
                       logging.WARNING if outcome == "refused" else logging.INFO)
        whole = prompt + removed
        self.reasks += 1
        outcome = self._stream(config, job, self._body(job, whole, "", "off", max_tokens), prompt_tokens, deadline,
                               None, DecodeRules(job, before_cursor, max_tokens))
        return outcome if isinstance(outcome, GenerationResult) else self._failed("the answer was not usable")

    def _body(self, job: GenerationJob, prompt: str, removed: str, healing: str, max_tokens: int) -> dict[str, Any]:
        config = self._config
        greedy = job.temperature <= 0.0
        body: dict[str, Any] = {
            "prompt": prompt, "max_tokens": max_tokens, "temperature": job.temperature,
            "top_p": 1.0 if greedy else job.top_p, "top_k": 1 if greedy else 40, "stream": True,
            "stream_options": {"include_usage": True}, "seed": config.seed,
            # the in-process engine samples without a repetition penalty; servers default to one
            "repeat_penalty": 1.0, "repetition_penalty": 1.0,
        }
        if healing == "grammar":
            body["grammar"] = grammar(removed)
        # A healed answer begins with the cut text, where a stop string may already be (a "\n" in cut
        # indentation): stop strings are then applied here, after it (DecodeRules), as in-process.
        if job.stop_strings and not removed:
            body["stop"] = list(job.stop_strings)
        if config.remote_model:
            body["model"] = config.remote_model
        return body

    def _stream(self, config: RemoteConfig, job: GenerationJob, body: dict[str, Any], prompt_tokens: int,
                deadline: float, healed: HealedStream | None, rules: DecodeRules) -> GenerationResult | str:
        """One request's result, or "diverged" / "refused" (healing's fallback: ask again)."""
        left = deadline - time.monotonic()
        if left <= 0 or job.cancel.is_set():  # the token counts used the time up
            return self._ended(config, job, "cancelled" if job.cancel.is_set() else "timeout", _Answer())
        started = time.perf_counter()
        answer = _Answer()
        failure: str | None = None
        timed_out = False  # a socket timeout (the connect's, or a read's) before the guard saw the deadline
        conn = _connection(config.url, left)  # bounds the connect; the guard bounds the rest
        with _Guard(conn, deadline, job.cancel) as guard:
            try:
                guard.connect()
                failure = self._receive(conn, config, job, body, answer, healed, rules)
            except (OSError, http.client.HTTPException) as exc:
                timed_out = isinstance(exc, TimeoutError)
                failure = f"inference server at {config.url}: {_describe(exc)}"
        # Once the guard has shut the socket, whatever the read made of it (EOF, a cut line) is moot.
        if guard.stopped or job.cancel.is_set() or timed_out:
            return self._ended(config, job, guard.stopped or "timeout", answer, prompt_tokens)
        if answer.status == 400 and "grammar" in body:
            return "refused"
        if healed is not None and healed.diverged:
            return "diverged"
        if failure is not None:
            return self._failed(failure)
        if not (answer.done or answer.finish or answer.closed):
            return self._failed(f"the inference server at {config.url} ended the stream before the answer was "
                                "complete; nothing of it is used")
        ended = time.perf_counter()
        first_at = answer.first_at
        raw = "".join(answer.pieces)
        text = healed.after(raw) or "" if healed is not None else raw
        if healed is not None and healed.diverged:
            return "diverged"
        finish = _finish(answer.finish, answer.timings.get("stop_type"), bool(job.stop_strings))
        if answer.over_tokens:
            finish = "length"
        ruled = answer.rule or rules.check(text, answer.chunks)
        if ruled in ("stop", "loop"):  # cut where the rule says (the server may have sent a little more)
            text, finish = rules.cut(text, ruled), ruled
        usage, timings = answer.usage, answer.timings
        prompt_n = _int(usage.get("prompt_tokens")) or prompt_tokens
        evaluated = _int(timings.get("prompt_n"))
        return GenerationResult(
            text.rstrip("\ufffd"), finish, prompt_n, evaluated if evaluated is not None else prompt_n,
            _int(usage.get("completion_tokens")) or _int(timings.get("predicted_n")) or answer.chunks,
            (first_at or ended) - started, ended - (first_at or ended), healed=healed.removed if healed else "")

    def _receive(self, conn: http.client.HTTPConnection, config: RemoteConfig, job: GenerationJob,
                 body: dict[str, Any], answer: "_Answer", healed: HealedStream | None, rules: DecodeRules) -> str | None:
        """Send the request and read the stream into `answer`, closing it as soon as the decode rules end
        the answer or it leaves the text healing cut; a failure's reason, or None."""
        max_tokens = body["max_tokens"]
        max_bytes = ANSWER_BYTES_BASE + ANSWER_BYTES_PER_TOKEN * max_tokens
        conn.request("POST", _endpoint(config.url, "/v1/completions"), body=json.dumps(body).encode("utf-8"),
                     headers=_headers(config, stream=True))
        response = conn.getresponse()
        answer.status = response.status
        if response.status != 200:
            detail = response.read(ERROR_BODY_BYTES).decode("utf-8", "replace")
            return f"the inference server at {config.url} answered HTTP {response.status}: {_error_message(detail)}"
        raw = ""
        try:
            for event in _sse_events(response, max_bytes):
                if event == "[DONE]":
                    answer.done = True
                    return None
                chunk = _chunk(event)
                if "error" in chunk:
                    return f"the inference server at {config.url} failed: {_error_message(event)}"
                answer.usage = chunk.get("usage") or answer.usage
                answer.timings = chunk.get("timings") or answer.timings
                for choice in chunk.get("choices") or []:
                    if choice.get("text"):
                        # A chunk holds at least one token: one more than max_tokens, the server ignores it.
                        if answer.chunks >= max_tokens:
                            answer.over_tokens = answer.closed = True
                            return None  # keep what came; closing the stream stops the server
                        answer.pieces.append(choice["text"])
                        raw += choice["text"]
                        answer.chunks += 1
                        answer.first_at = answer.first_at or time.perf_counter()
                        text = healed.after(raw) if healed is not None else raw
                        if healed is not None and healed.diverged:
                            answer.closed = True
                            return None
                        if text is not None and (rule := rules.check(text, answer.chunks)) in ("stop", "loop"):
                            answer.rule, answer.closed = rule, True
                            return None  # what follows would be cut anyway: stop the server decoding it
                    answer.finish = choice.get("finish_reason") or answer.finish
                    if choice.get("stop_type"):
                        answer.timings.setdefault("stop_type", choice["stop_type"])
                if chunk.get("stop_type"):
                    answer.timings["stop_type"] = chunk["stop_type"]
                if job.cancel.is_set():
                    return None
        except _BadAnswer as exc:
            return f"the inference server at {config.url} {exc}"
        return None

    def _ended(self, config: RemoteConfig, job: GenerationJob, why: str, answer: "_Answer",
               prompt_tokens: int = 0) -> GenerationResult:
        """The result of a call the guard (or the deadline) stopped: "cancelled" | "timeout"."""
        if why == "cancelled" or job.cancel.is_set():
            return GenerationResult("", "cancelled", prompt_tokens, 0, answer.chunks)
        return self._failed(f"the inference server at {config.url} did not finish within "
                            f"{config.timeout_s * 1000:.0f} ms (remoteTimeoutMs)")

    def _failed(self, reason: str) -> GenerationResult:
        log.warning("%s", reason)
        self._report(f"remote inference failed: {reason}")
        return GenerationResult("", "error", error=f"remote inference failed: {reason}")


@dataclass
class _Answer:
    """What a stream has brought so far."""

    pieces: list[str] = field(default_factory=list)
    finish: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0  # chunks with text: at least one token each
    first_at: float | None = None
    over_tokens: bool = False  # more text chunks came than max_tokens: we stopped reading
    status: int = 0  # the HTTP status
    done: bool = False  # the stream said [DONE]
    closed: bool = False  # we stopped reading (a decode rule, the token budget, the answer left the healed text)
    rule: str | None = None  # the decode rule that ended it ("stop" | "loop")


class _BadAnswer(Exception):
    """The server sent something no OpenAI-compatible server sends (the message completes "the server at X ...")."""


class _Guard:
    """One request's guard thread: on cancel or at the deadline it shuts the socket down, so the worker's
    blocked write or read returns at once (the server sees the client gone); `stopped` says why. A connect
    is bounded by the socket's own timeout (the time left). Leaving the `with` block ends the connection."""

    def __init__(self, conn: http.client.HTTPConnection, deadline: float, cancel: Any) -> None:
        self._conn, self._deadline, self._cancel = conn, deadline, cancel  # cancel: .wait(s) / .is_set()
        self._sock: socket.socket | None = None
        self._done = threading.Event()
        self.stopped: str | None = None  # "cancelled" | "timeout"
        self._thread = threading.Thread(target=self._run, name="remote-guard", daemon=True)

    def __enter__(self) -> "_Guard":
        self._thread.start()
        return self

    def connect(self) -> None:
        """Connect and keep the socket: the connection lets go of it when an answer says Connection: close
        (the response reads on), so `conn.sock` is no handle on the stream."""
        self._conn.connect()
        self._sock = self._conn.sock

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._shutdown()  # the response may still hold the socket: closing the stream stops decoding on the server
        self._conn.close()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self) -> None:
        while not self._done.is_set():
            if self.stopped is None:
                if self._cancel.wait(GUARD_POLL_S) or time.monotonic() >= self._deadline:
                    self.stopped = "cancelled" if self._cancel.is_set() else "timeout"
            elif self._sock is not None:  # None while connecting: the connect's own timeout ends it
                self._shutdown()
                return
            else:
                self._done.wait(GUARD_POLL_S)


def _sse_events(response: http.client.HTTPResponse, max_bytes: int):
    """The `data:` payloads of a server-sent event stream (multi-line data joined by newlines), reading at
    most `max_bytes` (+ one line) in all and LINE_LIMIT_BYTES a line: a runaway server costs bounded memory."""
    data: list[str] = []
    read = 0
    while True:
        raw = response.readline(LINE_LIMIT_BYTES + 1)
        if not raw:
            break
        read += len(raw)
        if len(raw) > LINE_LIMIT_BYTES:
            raise _BadAnswer(f"sent a line longer than {LINE_LIMIT_BYTES} bytes; stopped reading")
        if read > max_bytes:
            raise _BadAnswer(f"sent more than {max_bytes} bytes for at most {_tokens_of(max_bytes)} tokens; "
                             "stopped reading")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # comment / ping
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
            if data[-1] == "[DONE]":
                yield "[DONE]"
                return
    if data:
        yield "\n".join(data)


def _tokens_of(max_bytes: int) -> int:
    return (max_bytes - ANSWER_BYTES_BASE) // ANSWER_BYTES_PER_TOKEN


# The fields we read, and their JSON types when present and not null.
_CHUNK_FIELDS = {"choices": list, "usage": dict, "timings": dict, "stop_type": str}
_CHOICE_FIELDS = {"text": str, "finish_reason": str, "stop_type": str}
_JSON_NAMES = {dict: "an object", list: "an array", str: "a string"}


def _chunk(event: str) -> dict[str, Any]:
    """A stream chunk, checked to have the shape we read (a server of another API, a proxy's error page...)."""
    try:
        chunk = json.loads(event)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the parser goes
        raise _BadAnswer(f"sent a chunk that is not JSON: {event[:120]!r}") from None
    problem = _shape_problem(chunk)
    if problem:
        raise _BadAnswer(f"sent an unexpected chunk ({problem}): {event[:120]!r}")
    return chunk


def _shape_problem(chunk: Any) -> str | None:
    if not isinstance(chunk, dict):
        return "not a JSON object"
    if problem := _fields_problem(chunk, _CHUNK_FIELDS):
        return problem
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            return "a choice is not an object"
        if problem := _fields_problem(choice, _CHOICE_FIELDS):
            return problem
    return None


def _fields_problem(obj: dict[str, Any], fields: dict[str, type]) -> str | None:
    return next((f"{key} is not {_JSON_NAMES[kind]}" for key, kind in fields.items()
                 if obj.get(key) is not None and not isinstance(obj[key], kind)), None)


def _int(value: Any) -> int | None:
    """A count the server reported, if it is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def _finish(reason: str | None, stop_type: str | None, had_stop_strings: bool) -> str:
    if stop_type in ("eos", "word", "limit"):  # llama-server says which stop it was
        return {"eos": "end", "word": "stop", "limit": "length"}[stop_type]
    if reason == "length":
        return "length"
    if reason == "stop":
        # OpenAI's "stop" covers both an end token and a stop string; without stop strings it is the end.
        return "stop" if had_stop_strings else "end"
    return "length"


def _split(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:  # e.g. a port over 65535
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise RemoteEngineError(f"remoteUrl {url!r} is not an http(s) URL")
    base = parts.path.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return parts.scheme, parts.hostname, port, base


def _refuse_plain_key(config: RemoteConfig) -> None:
    """The API key goes over plain http only to this machine: elsewhere anyone on the path could read it."""
    scheme, host, _, _ = _split(config.url)
    if config.api_key and scheme == "http" and not _is_loopback(host):
        raise RemoteEngineError(
            f"remoteApiKey is set but remoteUrl {config.url} is plain http to another machine, which would "
            "send the key unencrypted: make remoteUrl https (http is allowed for 127.0.0.1, ::1 and localhost)",
            config.model_path)


def _is_loopback(host: str) -> bool:
    if host == "localhost":  # urlsplit's hostname is lower-case
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    scheme, host, port, _ = _split(url)
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    return cls(host, port, timeout=timeout)


def _endpoint(url: str, path: str) -> str:
    return _split(url)[3] + path


def _headers(config: RemoteConfig, stream: bool = False) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or isinstance(exc, socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _error_message(body: str) -> str:
    try:
        error = json.loads(body).get("error", body)
    except (ValueError, AttributeError):
        return body[:300]
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:300]
