"""A remote engine: the same `Engine` protocol against an OpenAI-compatible completion server.

llama.cpp's `llama-server`, vLLM and llama-cpp-python's `python -m llama_cpp.server` all serve
`POST /v1/completions` with `stream: true` as server-sent events. Prompts are built here exactly as
for the in-process engine (context/prompt.py segments); what travels is text: text segments as they
are, sentinel token ids as their token text from the local copy of the GGUF (`<mask_1>`, `<sep>`,
`<|endoftext|>`...), which the servers parse back into the special tokens (llama_cpp.server and
llama-server tokenize completion prompts with special-token parsing on). Formats that need sentinels
therefore need the `model` setting to point at the same GGUF the server runs; left-to-right does not.

One worker thread sends one request at a time (like the engine process). While a response streams, a small
guard thread waits on the job's cancel event and the request's deadline and shuts the socket down
when either fires: the worker's blocking read returns at once, and the server sees the client gone
and stops decoding. Failures during generation (timeout, connection lost, HTTP errors) come back as
an empty result with finish_reason "error", and the reason goes to `report` (the client's log):
no suggestion is better than an error popup on every keystroke.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..context.prompt import Text, Token, expand, fit_segments
from ..gguf.header import read_header
from ..gguf.inspect import TOKENS_KEY, ModelFileError, ModelFileInfo, inspect_model_file
from ..gguf.meta import PromptFormat
from .jobs import EngineConfig, GenerationJob, GenerationResult
from .process import EngineCrashed, VocabProcess
from .worker import ThreadedEngine

log = logging.getLogger(__name__)
LOAD_TIMEOUT_S = 5.0  # GET /v1/models at load: the server is up or it is not
CHARS_PER_TOKEN_ESTIMATE = 3  # without a local tokenizer, text is assumed to take len/3 tokens
GUARD_POLL_S = 0.01


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


class RemoteEngine(ThreadedEngine):
    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self._report = report or (lambda message: None)
        self._token_texts: list[str] = []
        self._vocab: VocabProcess | None = None  # the local GGUF's tokenizer, when one is given
        super().__init__("remote-worker")

    def _free(self) -> None:
        if self._vocab is not None:
            self._vocab.close()
        self._vocab, self._info, self._token_texts = None, None, []

    def _load(self, config: EngineConfig) -> ModelFileInfo:
        if not isinstance(config, RemoteConfig) or not config.url:
            raise RemoteEngineError("the remote engine needs a remoteUrl")
        self._free()
        server_model = self._check_server(config)
        if config.model_path is not None:
            info = inspect_model_file(config.model_path)
            tokens = read_header(config.model_path, string_arrays=(TOKENS_KEY,)).fields[TOKENS_KEY]
            try:  # the tokenizer alone (no weights), in an engine process: exact token counts for fitting
                self._vocab = VocabProcess(config.model_path)
            except EngineCrashed as exc:
                raise ModelFileError(config.model_path, f"llama.cpp could not read its vocabulary ({exc})") from None
            self._token_texts = [str(t) for t in tokens]
        else:
            info = ModelFileInfo(path=Path(), architecture="remote", name=config.remote_model or server_model,
                                 context_length=config.n_ctx, prompt_format=PromptFormat.LEFT_TO_RIGHT,
                                 family="unknown", end_token_ids=(), token_ids={}, size_bytes=0)
        self._info, self._config = info, config
        log.info("remote engine at %s: model %s (%s)", config.url, info.name, info.prompt_format.value)
        return info

    def _check_server(self, config: RemoteConfig) -> str:
        """GET /v1/models; the first model's id (for the status line when there is no local GGUF)."""
        try:
            conn = _connection(config.url, min(config.timeout_s, LOAD_TIMEOUT_S))
            conn.request("GET", _endpoint(config.url, "/v1/models"), headers=_headers(config))
            response = conn.getresponse()
            body = response.read(1 << 20)
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteEngineError(f"cannot reach the inference server at {config.url}: {_describe(exc)}",
                                    config.model_path) from None
        if response.status != 200:
            raise RemoteEngineError(f"the inference server at {config.url} answered /v1/models with "
                                    f"HTTP {response.status}: {body[:200].decode('utf-8', 'replace')}",
                                    config.model_path)
        try:
            models = json.loads(body).get("data") or []
            return str(models[0].get("id")) if models else "remote model"
        except (ValueError, AttributeError):
            return "remote model"

    def _count_tokens(self, text: str) -> int:
        if self._vocab is not None:
            try:
                return self._vocab.count(text)
            except (EngineCrashed, TimeoutError) as exc:  # estimate rather than fail the request
                log.warning("token count unavailable (%s); estimating", exc)
                self._vocab = None
        return -(-len(text) // CHARS_PER_TOKEN_ESTIMATE)

    def _prompt(self, job: GenerationJob, n_ctx: int, max_tokens: int) -> str:
        segments = expand(fit_segments(job.segments, n_ctx - max_tokens - 1, self._count_tokens, job.prefix_share))
        parts: list[str] = []
        for segment in segments:
            if isinstance(segment, Text):
                parts.append(segment.text)
            elif isinstance(segment, Token):
                if not 0 <= segment.token_id < len(self._token_texts):
                    raise RemoteEngineError(
                        f"this prompt format needs the text of sentinel token {segment.token_id}: set "
                        "codegenLsp.model to a local copy of the GGUF the inference server runs")
                parts.append(self._token_texts[segment.token_id])
        return "".join(parts)

    def _generate(self, job: GenerationJob) -> GenerationResult:
        if job.cancel.is_set():
            return GenerationResult("", "cancelled")
        config, info = self._config, self._info
        if config is None or info is None:
            raise RemoteEngineError("no inference server is configured")
        n_ctx = max(64, min(config.n_ctx, info.context_length))
        max_tokens = max(1, min(job.max_tokens, n_ctx // 2))
        try:
            prompt = self._prompt(job, n_ctx, max_tokens)
        except RemoteEngineError as exc:
            return self._failed(str(exc))
        prompt_tokens = self._count_tokens(prompt) if self._vocab is not None else 0
        greedy = job.temperature <= 0.0
        body: dict[str, Any] = {
            "prompt": prompt, "max_tokens": max_tokens, "temperature": job.temperature,
            "top_p": 1.0 if greedy else job.top_p, "top_k": 1 if greedy else 40, "stream": True,
            "stream_options": {"include_usage": True}, "seed": config.seed,
            # the in-process engine samples without a repetition penalty; servers default to one
            "repeat_penalty": 1.0, "repetition_penalty": 1.0,
        }
        if job.stop_strings:
            body["stop"] = list(job.stop_strings)
        if config.remote_model:
            body["model"] = config.remote_model
        return self._stream(config, job, body, prompt_tokens)

    def _stream(self, config: RemoteConfig, job: GenerationJob, body: dict[str, Any],
                prompt_tokens: int) -> GenerationResult:
        started = time.perf_counter()
        deadline = started + config.timeout_s
        stopped: list[str] = []  # why the guard shut the socket: "cancelled" | "timeout"
        done = threading.Event()
        conn = _connection(config.url, config.timeout_s)
        guard = threading.Thread(target=_guard, args=(conn, job.cancel, deadline, done, stopped),
                                 name="remote-guard", daemon=True)
        pieces: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        chunks, first_at = 0, None
        try:
            conn.connect()
            guard.start()
            conn.request("POST", _endpoint(config.url, "/v1/completions"), body=json.dumps(body).encode("utf-8"),
                         headers=_headers(config, stream=True))
            response = conn.getresponse()
            if response.status != 200:
                detail = response.read(2000).decode("utf-8", "replace")
                return self._failed(f"the inference server at {config.url} answered HTTP {response.status}: "
                                    f"{_error_message(detail)}")
            for event in _sse_events(response):
                if event == "[DONE]":
                    break
                chunk = json.loads(event)
                if "error" in chunk:
                    return self._failed(f"the inference server at {config.url} failed: {_error_message(event)}")
                usage = chunk.get("usage") or usage
                timings = chunk.get("timings") or timings
                for choice in chunk.get("choices") or []:
                    if choice.get("text"):
                        pieces.append(choice["text"])
                        chunks += 1
                        first_at = first_at or time.perf_counter()
                    finish = choice.get("finish_reason") or finish
                    if choice.get("stop_type"):
                        timings.setdefault("stop_type", choice["stop_type"])
                if chunk.get("stop_type"):
                    timings["stop_type"] = chunk["stop_type"]
                if job.cancel.is_set():
                    break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not stopped and not job.cancel.is_set():
                if time.perf_counter() >= deadline or isinstance(exc, TimeoutError):
                    stopped.append("timeout")
                else:
                    return self._failed(f"inference server at {config.url}: {_describe(exc)}")
        finally:
            done.set()
            conn.close()  # closing the stream is what stops decoding on the server
        if job.cancel.is_set() or stopped == ["cancelled"]:
            return GenerationResult("", "cancelled", prompt_tokens, 0, chunks)
        if stopped:
            return self._failed(f"the inference server at {config.url} did not finish within "
                                f"{config.timeout_s * 1000:.0f} ms (remoteTimeoutMs)")
        ended = time.perf_counter()
        text = "".join(pieces)
        cut = [text.find(s) for s in job.stop_strings if s and s in text]
        if cut:  # servers strip the stop string; some do not
            text, finish = text[:min(cut)], "stop"
        prompt_n = int(usage.get("prompt_tokens") or prompt_tokens)
        evaluated = timings.get("prompt_n")
        return GenerationResult(
            text, _finish(finish, timings.get("stop_type"), bool(job.stop_strings)), prompt_n,
            int(evaluated) if isinstance(evaluated, (int, float)) else prompt_n,
            int(usage.get("completion_tokens") or timings.get("predicted_n") or chunks),
            (first_at or ended) - started, ended - (first_at or ended))

    def _failed(self, reason: str) -> GenerationResult:
        log.warning("%s", reason)
        self._report(f"remote inference failed: {reason}")
        return GenerationResult("", "error", error=f"remote inference failed: {reason}")


def _guard(conn: http.client.HTTPConnection, cancel: threading.Event, deadline: float, done: threading.Event,
           stopped: list[str]) -> None:
    """Shut the request's socket down on cancel or at the deadline: the blocked read returns now."""
    while not done.is_set():
        if cancel.wait(GUARD_POLL_S) or time.perf_counter() >= deadline:
            if done.is_set():
                return
            stopped.append("cancelled" if cancel.is_set() else "timeout")
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return


def _sse_events(response: http.client.HTTPResponse):
    """The `data:` payloads of a server-sent event stream (multi-line data joined by newlines)."""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # comment / ping
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
            if data[-1] == "[DONE]":
                yield "[DONE]"
                return
    if data:
        yield "\n".join(data)


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
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteEngineError(f"remoteUrl {url!r} is not an http(s) URL")
    base = parts.path.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return parts.scheme, parts.hostname, parts.port, base


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
