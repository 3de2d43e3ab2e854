"""`codegen-lsp bench latency`: keystroke-trace replay against three backends, side by side.

One run, same GGUF, same threads, same context size, same prompt tokens, same greedy decoding:

  a  codegen-lsp: the real server as a subprocess over LSP (stdio, pygls client), its in-process
     llama.cpp with KV prefix/chunk reuse; didChange for every keystroke, an inline completion
     request where the editor would get one.
  b  raw llama-cpp-python (own process): `llm.reset()` then `create_completion` on the full prompt:
     nothing reused, every request evaluates every prompt token.
  c  llama.cpp's `llama-server` (built from the llama-cpp-python sdist, see `llama_server.py`),
     `--cache-reuse 256 -np 1`, `POST /completion` with `cache_prompt: true` and the prompt as
     token ids: exactly the tokens codegen-lsp evaluates for its prompt format (left-to-right
     CodeGen1 and CodeGen2's `<mask_1>` infill layout both; `/infill` knows neither).

When a request is made: the trace says how long the user paused after each key. A request is
issued after a key whose following pause is at least the debounce the server would apply to this
typing rhythm (`scheduling.adaptive_delay`: 1.25 × the median inter-key interval, capped at
debounceMaxMs), and after the last key: the keys where an editor shows a suggestion. Keys inside
a burst only send didChange (backend a). The server itself is configured with no debounce, no
warm-up and no speculation, so that nothing runs in the background of the other backends'
measurements; the debounce is the same for every backend and not part of the measured time.

Measured time: from the request (for a: right after the key's didChange) to the answer, so the
editor-visible keystroke-to-suggestion time is this plus the debounce. At each request point the
backends run one after another, in an order that rotates per request point. A cold request at the
trace's starting state (every backend evaluates the whole prompt once) precedes the timed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lsprotocol import types

from codegen_lsp.resources import package_path
from . import trace as tr

BACKENDS = {"a": "codegen-lsp (LSP, llama.cpp in its engine process)", "b": "llama-cpp-python raw (no reuse)",
            "c": "llama-server /completion (cache_prompt, --cache-reuse 256)"}


@dataclass
class Sample:
    backend: str
    key: int  # keys typed before the request (0: the cold request at the starting state)
    latency_ms: float
    prompt_tokens: int | None
    evaluated_tokens: int | None
    generated_tokens: int | None
    prompt_ms: float | None
    generate_ms: float | None
    note: str = ""
    drafted_tokens: int | None = None  # speculative drafts verified, and of those accepted
    accepted_tokens: int | None = None


# The time the server gets between the keys before a request and the last one (the trace's own gap, at most this).
MAX_KEY_GAP_MS = 100


# -- the prompt codegen-lsp builds -------------------------------------------------------------------

class PromptBuilder:
    """The token ids the engine (LlamaRunner) evaluates for a cursor (same segments, same fitting, same tokenizer),
    and the stop strings completion.py passes."""

    def __init__(self, model: Path, n_ctx: int, max_tokens: int) -> None:
        import llama_cpp

        from codegen_lsp.gguf.inspect import inspect_model_file
        from codegen_lsp.settings import Settings

        self.info = inspect_model_file(model)
        self.settings = Settings()
        self.n_ctx = max(64, min(n_ctx, self.info.context_length))
        self.max_tokens = max(1, min(max_tokens, self.n_ctx // 2))
        self._vocab = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)

    def tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False) if text else []

    def tokens(self, prefix: str, suffix: str) -> list[int]:
        from codegen_lsp.context.prompt import Text, build_segments, fit_segments

        segments = fit_segments(build_segments(self.info.prompt_format, prefix, suffix, self.info.token_ids),
                                self.n_ctx - self.max_tokens - 1, lambda t: len(self.tokenize(t)),
                                self.settings.prefix_share)
        out: list[int] = []
        for s in segments:
            out += self.tokenize(s.text) if isinstance(s, Text) else [s.token_id]
        return out or [self.info.token_ids.get("eos", 0)]

    def stops(self, language: str, prefix: str, suffix: str) -> list[str]:
        from codegen_lsp.postprocess.pipeline import CompletionContext, suggestion_mode
        from codegen_lsp.completion import stop_strings

        return list(stop_strings(self.settings.stop, suggestion_mode(CompletionContext(language, prefix, suffix))))

    def close(self) -> None:
        self._vocab.close()


# -- b: raw llama-cpp-python in its own process --------------------------------------------------------

def _raw_worker(conn, model: str, n_ctx: int, threads: int) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads, verbose=False)
    while True:
        message = conn.recv()
        if message[0] == "quit":
            break
        if message[0] == "rss":
            conn.send(_peak_rss_kib(os.getpid()))
            continue
        _, tokens, max_tokens, stop = message
        llm.reset()  # n_tokens = 0: create_completion finds no prefix to keep
        llama_cpp.llama_perf_context_reset(llm.ctx)
        out = llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0,
                                    min_p=0.0, repeat_penalty=1.0, stop=stop or None)
        perf = llama_cpp.llama_perf_context(llm.ctx)
        conn.send({"prompt_tokens": len(tokens), "evaluated": int(perf.n_p_eval) + (1 if len(tokens) == 1 else 0),
                   "generated": out["usage"]["completion_tokens"], "prompt_ms": perf.t_p_eval_ms,
                   "generate_ms": perf.t_eval_ms, "n_eval": int(perf.n_eval), "text": out["choices"][0]["text"]})
    conn.close()


class RawBackend:
    def __init__(self, model: Path, n_ctx: int, threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_raw_worker, args=(child, str(model), n_ctx, threads), daemon=True)
        self.process.start()

    def complete(self, tokens: list[int], max_tokens: int, stop: list[str]) -> dict:
        self.conn.send(("complete", tokens, max_tokens, stop))
        return self.conn.recv()

    def peak_rss_kib(self) -> int | None:
        self.conn.send(("rss",))
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(("quit",))
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


def _peak_rss_kib(pid: int) -> int | None:
    from .llama_server import peak_rss_kib

    return peak_rss_kib(pid)


# -- the machine and what was measured -------------------------------------------------------------------

def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:")), 0)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "ram_gib": round(mem_kib / 2**20, 1),
            "load_1min_at_start": load, "python": platform.python_version(),
            "llama_cpp_python": version("llama_cpp_python"), "os": platform.platform()}


def engine_version() -> dict:
    """Which engine was measured (others change it): file hashes and the reuse features present."""
    engine_dir = package_path("engine")
    out = {}
    for name in ("llama_runner.py", "kv_reuse.py", "process.py"):
        path = engine_dir / name
        if path.exists():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    source = (engine_dir / "llama_runner.py").read_text() if (engine_dir / "llama_runner.py").exists() else ""
    out["chunk_reuse"] = "plan_reuse" in source
    return out


def _percentile(xs: list[float], q: int) -> float:
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


def keys_all_call_the_model(samples: list[Sample], backends: list[str]) -> set[int]:
    """Timed request keys where every backend called the model (no cache answered): the fair ground
    for comparing the cost of a model call."""
    called: dict[int, set[str]] = {}
    for s in samples:
        if s.key > 0 and s.evaluated_tokens is not None:
            called.setdefault(s.key, set()).add(s.backend)
    return {key for key, who in called.items() if who >= set(backends)}


def summarize(samples: list[Sample], backend: str, model_call_keys: set[int] | None = None) -> dict:
    timed = [s for s in samples if s.backend == backend and s.key > 0]
    both = [s.latency_ms for s in timed if model_call_keys is not None and s.key in model_call_keys]
    cold = [s for s in samples if s.backend == backend and s.key == 0]
    lat = [s.latency_ms for s in timed]
    model_calls = [s for s in timed if s.evaluated_tokens is not None]
    gen_tokens = sum(s.generated_tokens or 0 for s in model_calls)
    gen_ms = sum(s.generate_ms or 0 for s in model_calls)
    evaluated = sum(s.evaluated_tokens or 0 for s in model_calls)
    prompt_ms = sum(s.prompt_ms or 0 for s in model_calls)
    return {
        "requests": len(timed),
        "model_calls": len(model_calls),
        "p50_ms": statistics.median(lat) if lat else None,
        "p95_ms": _percentile(lat, 95) if lat else None,
        "model_calls_only_p50_ms": statistics.median(both) if both else None,
        "model_calls_only_keys": len(both),
        "mean_ms": statistics.fmean(lat) if lat else None,
        "max_ms": max(lat) if lat else None,
        "cold_ms": cold[0].latency_ms if cold else None,
        "prompt_tokens_median": statistics.median([s.prompt_tokens for s in model_calls]) if model_calls else None,
        "evaluated_tokens_median": statistics.median([s.evaluated_tokens for s in model_calls]) if model_calls else None,
        "evaluated_tokens_max": max(s.evaluated_tokens for s in model_calls) if model_calls else None,
        "generated_tokens_median": statistics.median([s.generated_tokens or 0 for s in model_calls])
        if model_calls else None,
        # What a model call costs besides evaluating and decoding: the fixed cost per call.
        "fixed_ms_p50": statistics.median([s.latency_ms - (s.prompt_ms or 0) - (s.generate_ms or 0)
                                           for s in model_calls]) if model_calls else None,
        "prompt_tokens_per_s": evaluated / (prompt_ms / 1000) if prompt_ms > 0 else None,
        "gen_tokens_per_s": gen_tokens / (gen_ms / 1000) if gen_ms > 0 else None,
        # None where the backend does not report drafts (b, and llama-server without speculation)
        "drafted_tokens": sum(s.drafted_tokens or 0 for s in model_calls)
        if any(s.drafted_tokens is not None for s in model_calls) else None,
        "accepted_tokens": sum(s.accepted_tokens or 0 for s in model_calls)
        if any(s.accepted_tokens is not None for s in model_calls) else None,
    }


# -- the replay ---------------------------------------------------------------------------------------------

def request_points(keys: list[tr.Keystroke], pause_ms: float) -> list[int]:
    """Counts of keys typed when a request is made (after a pause ≥ pause_ms, and after the last key)."""
    return [k.index + 1 for k in keys if k.pause_after_ms >= pause_ms]


def server_debounce_ms(keys: list[tr.Keystroke]) -> float:
    """What the server's adaptive debounce would wait for this rhythm when the model is slower than typing."""
    from codegen_lsp.scheduling import BURST_GAP_S, adaptive_delay
    from codegen_lsp.settings import Settings

    s = Settings()
    intervals = [k.delay_ms / 1000 for k in keys[1:] if k.delay_ms / 1000 < BURST_GAP_S]
    return 1000 * adaptive_delay(intervals, float("inf"), s.debounce_ms / 1000, s.debounce_max_ms / 1000)


async def _replay(model: Path, trace: dict, points: list[int], backends: list[str], prompts: PromptBuilder,
                  threads: int, max_tokens: int, raw: RawBackend | None, llama_server, echo,
                  token_healing: bool = True) -> tuple[list[Sample], dict]:
    from codegen_lsp.headless import answer, ready_session, stop_session

    language = trace.get("language", "python")
    samples: list[Sample] = []
    rss: dict[str, float | None] = {}  # peak RSS per backend (KiB), and the cancel check
    with tempfile.TemporaryDirectory() as root:
        client = None
        if "a" in backends:
            options = {"model": str(model), "maxTokens": max_tokens, "contextTokens": prompts.n_ctx,
                       "temperature": 0, "threads": threads, "debounceMs": 0, "adaptiveDebounce": False,
                       "warmAfterMs": 0, "speculativeSuggestions": False, "tokenHealing": token_healing}
            client = await ready_session(Path(root), options, show_messages=False)
            uri = (Path(root) / trace.get("name", "trace.py")).as_uri()
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=trace["initial_text"])))
        keys = tr.keystrokes(trace)
        typed = 0

        async def run_a(n: int) -> Sample:
            nonlocal typed
            while typed < n:  # one didChange per key, at the cursor
                k = keys[typed]
                if typed == n - 1 and typed > 0:
                    # The keys before the last came while the user typed, each apart from the next: the
                    # server has handled them before the last key and the request arrive together.
                    await asyncio.sleep(min(k.delay_ms, MAX_KEY_GAP_MS) / 1000)
                text = tr.text_after(trace, typed)
                line, col = tr.utf16_position(text, k.offset)
                client.text_document_did_change(types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=typed + 2),
                    content_changes=[types.TextDocumentContentChangePartial(range=types.Range(
                        start=types.Position(line=line, character=col), end=types.Position(line=line, character=col)),
                        text=k.text)]))
                typed += 1
            text = tr.text_after(trace, n)
            cursor = trace["cursor"] + sum(len(k.text) for k in keys[:n])
            line, col = tr.utf16_position(text, cursor)
            version = n + 1
            n_stats = len(client.stats)
            started = time.perf_counter()
            await answer(client, client.text_document_inline_completion_async(types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))),
                f"the inline completion request after key {n}")
            ms = (time.perf_counter() - started) * 1000
            await asyncio.sleep(0)
            # The server's codegenLsp/stats for this request (sent before its answer).
            stats = [s for s in client.stats[n_stats:] if s.kind == "request" and s.uri == uri]
            for s in stats:
                if s.version == version and s.model_call:
                    return Sample("a", n, ms, s.prompt_tokens, s.evaluated_prompt_tokens, s.generated_tokens,
                                  s.prompt_ms, s.generate_ms, drafted_tokens=s.drafted_tokens,
                                  accepted_tokens=s.accepted_tokens)
            note = f"{stats[-1].source}: {stats[-1].reason}" if stats else "no codegenLsp/stats for the request"
            return Sample("a", n, ms, None, None, None, None, None, note)

        def run_b(n: int, tokens: list[int], stop: list[str]) -> Sample:
            started = time.perf_counter()
            r = raw.complete(tokens, prompts.max_tokens, stop)
            ms = (time.perf_counter() - started) * 1000
            return Sample("b", n, ms, r["prompt_tokens"], r["evaluated"], r["generated"], r["prompt_ms"],
                          r["generate_ms"])

        def run_c(n: int, tokens: list[int], stop: list[str]) -> Sample:
            started = time.perf_counter()
            r = llama_server.completion(tokens, prompts.max_tokens, stop)
            ms = (time.perf_counter() - started) * 1000
            t = r.get("timings", {})
            return Sample("c", n, ms, len(tokens), t.get("prompt_n"), t.get("predicted_n"), t.get("prompt_ms"),
                          t.get("predicted_ms"), f"cache_n={t.get('cache_n')}", t.get("draft_n"),
                          t.get("draft_n_accepted"))

        for i, n in enumerate([0] + points):
            text = tr.text_after(trace, n)
            cursor = trace["cursor"] + sum(len(k.text) for k in keys[:n])
            prefix, suffix = text[:cursor], text[cursor:]
            tokens = prompts.tokens(prefix, suffix)
            stop = prompts.stops(language, prefix, suffix)
            order = backends[i % len(backends):] + backends[:i % len(backends)]
            for b in order:
                if b == "a":
                    sample = await run_a(n)
                elif b == "b":
                    sample = await asyncio.to_thread(run_b, n, tokens, stop)
                else:
                    sample = await asyncio.to_thread(run_c, n, tokens, stop)
                samples.append(sample)
            line = "  ".join(f"{s.backend} {s.latency_ms:7.0f} ms ({s.evaluated_tokens}/{s.prompt_tokens} ev)"
                             for s in samples[-len(order):])
            echo(f"[{i}/{len(points)}] key {n:3d}: {line}")
        if client is not None:
            rss["cancel_answer_ms"] = await _cancel_check(client, uri, tr.text_after(trace, len(keys)),
                                                          trace["cursor"] + sum(len(k.text) for k in keys))
            pid = client._server.pid  # type: ignore[attr-defined]
            from .engine import engine_pids

            # The server and its engine process, each on its own; the table shows their sum.
            rss["a_server"] = _peak_rss_kib(pid)
            rss["a_engine"] = sum(_peak_rss_kib(child) or 0 for child in engine_pids(pid)) or None
            rss["a"] = (rss["a_server"] or 0) + (rss["a_engine"] or 0) or None
            await stop_session(client)
    if raw is not None:
        rss["b"] = raw.peak_rss_kib()
    if llama_server is not None:
        rss["c"] = llama_server.peak_rss_kib()
    return samples, rss


async def _cancel_check(client, uri: str, text: str, cursor: int) -> float:
    """A long request (400 tokens) cancelled 0.5 s in: ms from $/cancelRequest to the answer."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"maxTokens": 400}}))
    line, col = tr.utf16_position(text, cursor)
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
        msg_id="bench-cancel"))
    await asyncio.sleep(0.5)
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="bench-cancel"))
    try:
        await asyncio.wait_for(pending, 60)
    except Exception:  # noqa: BLE001 - the cancelled error is the expected answer
        pass
    return (time.perf_counter() - cancelled_at) * 1000


def run_latency(model: Path, trace: dict, threads: int | None = None, max_tokens: int = 16, n_ctx: int = 2048,
                backends: str = "a,b,c", request_pause_ms: float | None = None, out: Path | None = None,
                llama_server_dir: Path | None = None, echo=print, token_healing: bool = True,
                llama_server_args: list[str] | None = None) -> dict:
    """`token_healing` False: codegen-lsp evaluates and decodes exactly what b and c do (healing takes the
    last token off the prompt and decodes it again, and the suggestion then goes on differently), so
    the comparison measures the cost around the model alone."""
    from .llama_server import DEFAULT_DIR, LlamaServer, ensure_built

    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise ValueError(f"backends are a, b and c (got {backends!r})")
    threads = threads or os.cpu_count() or 1
    machine = machine_info()
    engine = engine_version()  # before the run: the code the server starts with, not what it is by the end
    build = None
    binary = None
    if "c" in chosen:
        started = time.perf_counter()
        binary, build = ensure_built(llama_server_dir or DEFAULT_DIR, echo=echo)
        build["this_run_seconds"] = round(time.perf_counter() - started, 1)
    prompts = PromptBuilder(model, n_ctx, max_tokens)
    keys = tr.keystrokes(trace)
    pause = request_pause_ms if request_pause_ms is not None else server_debounce_ms(keys)
    points = request_points(keys, pause)
    echo(f"{len(keys)} keys, {len(points)} requests (after pauses ≥ {pause:.0f} ms), n_ctx {prompts.n_ctx}, "
         f"{threads} threads, {prompts.max_tokens} tokens, format {prompts.info.prompt_format.value}")
    raw = llama_server = None
    started = time.perf_counter()
    try:
        if "b" in chosen:
            raw = RawBackend(model, prompts.n_ctx, threads)
        if "c" in chosen:
            log_path = (out.parent if out else Path("bench-results")) / "llama-server.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            llama_server = LlamaServer(binary, model, threads, prompts.n_ctx, log_path=log_path,
                                       extra_args=list(llama_server_args or []))
            llama_server.start()
        samples, rss = asyncio.run(_replay(model, trace, points, chosen, prompts, threads, prompts.max_tokens,
                                           raw, llama_server, echo, token_healing))
    finally:
        if raw is not None:
            raw.close()
        if llama_server is not None:
            llama_server.stop()
        prompts.close()
    report = {
        "command_options": {"model": str(model), "threads": threads, "max_tokens": prompts.max_tokens,
                            "n_ctx": prompts.n_ctx, "backends": chosen, "request_pause_ms": round(pause, 1),
                            "token_healing": token_healing, "llama_server_args": llama_server_args or []},
        "model": {"path": str(model), "size_bytes": prompts.info.size_bytes, "architecture": prompts.info.architecture,
                  "prompt_format": prompts.info.prompt_format.value, "name": prompts.info.name},
        "trace": {"name": trace.get("name"), "source": trace.get("source"), "function": trace.get("function"),
                  "seed": trace.get("seed"), "keystrokes": len(keys), "requests": len(points),
                  "typed_seconds": round(sum(k.delay_ms for k in keys) / 1000, 1)},
        "machine": {**machine, "load_1min_at_end": round(os.getloadavg()[0], 2)},
        "engine": engine,
        "llama_server": {"build": build, "command": llama_server.command if llama_server else None,
                         "endpoint": "/completion, prompt as token ids, cache_prompt: true"} if "c" in chosen else None,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cancel_answer_ms": rss.pop("cancel_answer_ms", None),
        "codegen_lsp_peak_rss_mib": {part: round(rss[f"a_{part}"] / 1024, 1) if rss.get(f"a_{part}") else None
                                     for part in ("server", "engine")},
        "backends": {b: {"label": BACKENDS[b], **summarize(samples, b, keys_all_call_the_model(samples, chosen)),
                         "peak_rss_mib": round(rss[b] / 1024, 1) if rss.get(b) else None} for b in chosen},
        "samples": [asdict(s) for s in samples],
    }
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        out.with_suffix(".md").write_text(markdown_report(report))
    return report


def _fmt(x, spec: str = ".0f") -> str:
    return "–" if x is None else format(x, spec)


def table_rows(report: dict) -> list[list[str]]:
    rows = []
    for b, s in report["backends"].items():
        rows.append([f"{b}: {s['label']}", _fmt(s["p50_ms"]), _fmt(s["p95_ms"]),
                     _fmt(s.get("model_calls_only_p50_ms")), _fmt(s["cold_ms"]),
                     _fmt(s["prompt_tokens_median"]), _fmt(s["evaluated_tokens_median"]),
                     _fmt(s["prompt_tokens_per_s"] if (s["evaluated_tokens_median"] or 0) >= 64 else None, ".0f"),
                     _fmt(s.get("generated_tokens_median")), _fmt(s["gen_tokens_per_s"], ".1f"),
                     _fmt(s.get("fixed_ms_p50"), ".1f"),
                     "–" if s.get("drafted_tokens") is None else f"{s['accepted_tokens']}/{s['drafted_tokens']}",
                     _fmt(s["peak_rss_mib"], ".0f"), f"{s['model_calls']}/{s['requests']}"])
    return rows


HEADER = ["backend", "p50 ms", "p95 ms", "p50 ms model calls only", "cold ms", "prompt tok", "evaluated tok", "prompt tok/s",
          "generated tok", "gen tok/s", "fixed ms", "accepted/drafted", "peak RSS MiB", "model calls"]


def markdown_report(report: dict) -> str:
    m, o, t = report["machine"], report["command_options"], report["trace"]
    lines = [f"# Keystroke-trace latency", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['ram_gib']} GiB RAM, "
             f"Python {m['python']}, llama-cpp-python {m['llama_cpp_python']}; 1-min load at start "
             f"{_fmt(m['load_1min_at_start'], '.2f')}, at the end {_fmt(m.get('load_1min_at_end'), '.2f')}.",
             f"Model: `{report['model']['path']}` ({report['model']['prompt_format']}, "
             f"{report['model']['size_bytes'] / 2**20:.0f} MiB). Threads {o['threads']}, n_ctx {o['n_ctx']}, "
             f"{o['max_tokens']} tokens per suggestion, greedy; codegen-lsp's token healing "
             f"{'on' if o.get('token_healing', True) else 'off'}.",
             f"Trace: {t['name']} `{t['function']}` (seed {t['seed']}), {t['keystrokes']} keys over "
             f"{t['typed_seconds']} s of typing, {t['requests']} requests after pauses ≥ {o['request_pause_ms']} ms.",
             f"Engine: {report['engine']}.", ""]
    if report.get("llama_server"):
        ls = report["llama_server"]
        lines += [f"llama-server: `{' '.join(ls['command'] or [])}`; {ls['endpoint']}; build {ls['build']}.", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    lines += ["", "Latencies are medians/p95 over the timed requests (the cold one excluded); "
              "prompt/evaluated/generated tokens are medians per model call; \"fixed ms\": the median of "
              "latency − prompt evaluation − decoding per model call. \"Model calls only\": the median over the "
              f"{next(iter(report['backends'].values())).get('model_calls_only_keys', 0)} requests where every "
              "backend called the model (no cache answered)."]
    if report.get("cancel_answer_ms") is not None:
        lines += [f"codegen-lsp answered a cancelled 400-token request {report['cancel_answer_ms']:.1f} ms after "
                  "$/cancelRequest."]
    return "\n".join(lines) + "\n"


def print_report(report: dict) -> None:
    rows = [HEADER] + table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; engine {report['engine']}; token healing "
          f"{'on' if report['command_options'].get('token_healing', True) else 'off'}")
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    if "b" in report["backends"] and report["backends"]["b"]["p50_ms"]:
        base = report["backends"]["b"]["p50_ms"]
        print("p50 relative to raw llama-cpp-python: " + ", ".join(
            f"{b} {s['p50_ms'] / base:.2f}" for b, s in report["backends"].items() if s["p50_ms"]))
    if "c" in report["backends"] and report["backends"]["c"]["p50_ms"]:
        c = report["backends"]["c"]
        print("p50 relative to llama-server: " + ", ".join(
            f"{b} {s['p50_ms'] / c['p50_ms']:.2f} over all requests"
            + (f", {s['model_calls_only_p50_ms'] / c['model_calls_only_p50_ms']:.2f} where both called the model "
               f"({s['model_calls_only_keys']} requests)" if s.get("model_calls_only_p50_ms")
               and c.get("model_calls_only_p50_ms") else "")
            for b, s in report["backends"].items() if b != "c" and s["p50_ms"]))
    if report.get("cancel_answer_ms") is not None:
        print(f"codegen-lsp: cancelled request answered {report['cancel_answer_ms']:.1f} ms after $/cancelRequest")
    if (parts := report.get("codegen_lsp_peak_rss_mib")) and parts.get("server"):
        print(f"codegen-lsp peak RSS: server process {parts['server']:.0f} MiB, engine process "
              f"{_fmt(parts.get('engine'))} MiB")
