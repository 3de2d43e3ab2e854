"""`codegen-lsp bench first-suggestion`: how soon the first suggestion comes after a file is opened (issue 34).

Per real file (standard-library modules of about 100, 600, 2,600 and 10,000+ lines) and per cursor (seeded, at
the start of a code line's text after its indentation, in the second half of the file so the prompt window is
full; the rest of that line is removed from the document the server sees, as `bench quality` does):

- codegen-lsp, for each delay D: a FRESH server (a new process: no KV cache, no suggestion cache), `initialize`
  with the model, wait for `codegenLsp/status` ready, didOpen the file (with the line cut), the notification
  `codegenLsp/focus` at the cursor, wait D seconds, then one Automatic `textDocument/inlineCompletion` at the
  cursor, timed from the request to the answer. From the `codegenLsp/stats` of that request (kind "request"):
  `window` ("short" or "full": which prompt window answered; absent in servers without it, read as "full"),
  promptTokens, evaluatedPromptTokens, promptMs; and whether the suggestion's first line is the removed text.
- full window: the same at D = 0 with `firstSuggestionMs` 0 (always the full window, the old behaviour), so the
  quality cost of a short window shows as exact matches on the same cursors.
- llama-server as llama.vim drives it (see LLAMA_VIM): a cold llama-server per cursor (built by
  `llama_server.ensure_built`), the body llama.vim's `llama#fim` sends for a first request at a cursor; /infill,
  or where the model has no FIM tokens (SmolLM2) /completion with the prefix as the prompt, as /infill would
  have cut it (the output says which).

Ratios come from this one run (the machines are noisy); the targets are printed as PASS/MISS lines.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tokenize
import urllib.error
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsprotocol import types

from codegen_lsp.events import STATS_NOTIFICATION
from .latency import machine_info
from .load import RawClient

FOCUS_NOTIFICATION = "codegenLsp/focus"
DEFAULT_FILES = ("bisect.py", "heapq.py", "argparse.py", "pydoc_data/topics.py")  # ~100, 600, 2,600, 15,600 lines
DEFAULT_DELAYS = (0.0, 2.0, 10.0)
REQUEST_TIMEOUT_S = 120.0

# Targets (issue 34), reported as PASS/MISS.
TARGET_LINES = 10_000  # the latency targets are for files up to this many lines
TARGET_SETTLED_S = 1.0  # p50 when the suggestion is asked for 2 s or more after opening
TARGET_SETTLED_DELAY_S = 2.0
TARGET_AT_OPEN_S = 1.5  # p50 right after opening
TARGET_EXACT_POINTS = 2.0  # exact match within this many percentage points of the full window's

# What llama.vim (ggml-org/llama.vim, autoload/llama.vim) sends: its defaults n_prefix 256, n_suffix 64,
# n_predict 128, t_max_prompt_ms 500; `llama#fim` uses t_max_predict_ms 250 for the first request at a position
# (the configured 1000 only for the speculative follow-ups), samplers top_k 40, top_p 0.90 and "infill",
# cache_prompt on, llama-server's default temperature. Its README's server: --cache-reuse 256, -b 1024, -ub 512.
LLAMA_VIM = {"n_prefix": 256, "n_suffix": 64, "n_predict": 128, "t_max_prompt_ms": 500, "t_max_predict_ms": 250,
             "n_batch": 1024, "n_ubatch": 512}


@dataclass(frozen=True)
class Cursor:
    file: str  # the file's path
    line: int  # 0-based
    character: int  # UTF-16, after the indentation
    indent: str
    expected: str  # the rest of the line (removed from the document), trailing blanks stripped
    text: str  # the document the server sees: the file with that line cut at the cursor

    def brief(self) -> dict:
        return {"file": self.file, "line": self.line, "character": self.character, "expected": self.expected}


@dataclass
class Sample:
    run: str  # "codegen-lsp", "full-window" or "llama-server"
    file: str
    line: int
    delay_s: float
    seconds: float | None  # request to answer; None when it failed
    suggestion: str = ""
    exact: bool = False
    window: str | None = None  # codegen-lsp: the stats' window ("full" when the server does not say; the
    # stats' source, e.g. "recent-context cache", when no model call answered)
    source: str | None = None  # codegen-lsp: the stats' source
    window_reported: bool = False  # the stats had a `window` field
    prompt_tokens: int | None = None
    evaluated_prompt_tokens: int | None = None
    prompt_ms: float | None = None
    generated_tokens: int | None = None
    generate_ms: float | None = None
    reason: str | None = None  # the stats' reason, or llama-server's endpoint
    server_ready_s: float | None = None  # process start to model ready
    error: str | None = None
    load_1min: float | None = None  # the machine's 1-minute load average when the sample started


# -- files and cursors -------------------------------------------------------------------------------------------

def stdlib_dir() -> Path:
    """This machine's /usr/lib/pythonX.Y when it exists, else the running interpreter's standard library."""
    system = Path(f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}")
    return system if (system / "os.py").is_file() else Path(sysconfig.get_paths()["stdlib"])


def resolve_file(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (stdlib_dir() / name, stdlib_dir() / f"{name}.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name}: no such file (here or in {stdlib_dir()})")


def code_lines(text: str) -> list[int]:
    """0-based lines whose first token is code: not blank, not a comment, not inside or opening a string that
    spans lines (docstrings). Files that do not tokenize as Python: non-blank lines not starting with '#'."""
    lines = text.split("\n")
    first: dict[int, tokenize.TokenInfo] = {}
    inside: set[int] = set()
    skip = {tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            (row, _), (end_row, _) = tok.start, tok.end
            if end_row > row:
                inside.update(range(row + 1, end_row + 1))
            if tok.type not in skip:
                first.setdefault(row, tok)
    except (tokenize.TokenError, SyntaxError):
        return [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    return sorted(row - 1 for row, tok in first.items()
                  if row not in inside and tok.type != tokenize.COMMENT
                  and not (tok.type == tokenize.STRING and tok.end[0] > tok.start[0]))


def pick_cursors(path: Path, count: int, seed: int = 0) -> list[Cursor]:
    """`count` cursors in the file's second half (seeded per file name), each at the start of a code line's text
    (at least 4 characters of it) after its indentation, with the rest of the line removed."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    candidates = [i for i in code_lines(text)
                  if len(lines) // 2 <= i < len(lines) - 1 and len(lines[i].strip()) >= 4]
    chosen = sorted(random.Random(f"{seed}:{path.name}").sample(candidates, min(count, len(candidates))))
    cursors = []
    for i in chosen:
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip())]
        cut = "\n".join(lines[:i] + [indent] + lines[i + 1:])
        cursors.append(Cursor(str(path), i, len(indent.encode("utf-16-le")) // 2, indent,
                              line[len(indent):].rstrip(), cut))
    return cursors


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip()


# -- codegen-lsp: one fresh server per sample ---------------------------------------------------------------

def server_command() -> list[str]:
    return [sys.executable, "-m", "codegen_lsp", "serve", "--log-level", "warning"]


def server_options(model: Path, threads: int | None, settings: dict | None = None, **extra) -> dict:
    options: dict = {"model": str(model), "offerModelDownload": False, **(settings or {}), **extra}
    if threads:
        options["threads"] = threads
    return options


async def codegen_lsp_sample(cursor: Cursor, delay_s: float, options: dict, run: str = "codegen-lsp") -> Sample:
    """A fresh server: ready, didOpen, focus, `delay_s`, one Automatic inline completion, timed."""
    sample = Sample(run, cursor.file, cursor.line, delay_s, None, load_1min=_load())
    stats: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="codegen-lsp-first-") as workdir:
        root = Path(workdir)
        uri = (root / Path(cursor.file).name).as_uri()
        started = time.perf_counter()
        client = await RawClient.start(server_command(), drain_stderr=True)
        client.on_notification = lambda m: stats.append(m.get("params") or {}) \
            if m.get("method") == STATS_NOTIFICATION else None
        try:
            await client.start_model(root, options)
            sample.server_ready_s = time.perf_counter() - started
            client.notify(types.TEXT_DOCUMENT_DID_OPEN, types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=cursor.text)))
            position = {"line": cursor.line, "character": cursor.character}
            client.notify(FOCUS_NOTIFICATION, {"textDocument": {"uri": uri}, "position": position})
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            asked = time.perf_counter()
            _, future = client.request(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(**position),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
            reply = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
            sample.seconds = time.perf_counter() - asked
            if "error" in reply:
                sample.error = f"inlineCompletion error: {reply['error'].get('message')}"
            result = reply.get("result")
            items = result.get("items", []) if isinstance(result, dict) else (result or [])
            sample.suggestion = str(items[0].get("insertText", "")) if items else ""
            sample.exact = first_line(sample.suggestion) == cursor.expected
            deadline = time.monotonic() + 2  # its stats go out before the answer; allow for a late one
            while time.monotonic() < deadline and not _request_stats(stats, uri):
                await asyncio.sleep(0.01)
            if (found := _request_stats(stats, uri)) is not None:
                sample.window_reported = "window" in found
                sample.source = found.get("source")
                sample.window = (found.get("window") or sample.source or "none") if sample.window_reported else "full"
                sample.prompt_tokens = found.get("promptTokens")
                sample.evaluated_prompt_tokens = found.get("evaluatedPromptTokens")
                sample.prompt_ms = found.get("promptMs")
                sample.generated_tokens = found.get("generatedTokens")
                sample.generate_ms = found.get("generateMs")
                sample.reason = found.get("reason")
        except (RuntimeError, asyncio.TimeoutError, EOFError) as exc:
            sample.error = f"{type(exc).__name__}: {exc}" + (
                f" (server stderr: {list(client.stderr_tail)[-3:]})" if client.stderr_tail else "")
        finally:
            await _stop(client)
    return sample


def _request_stats(stats: list[dict], uri: str) -> dict | None:
    return next((s for s in stats if s.get("kind") == "request" and s.get("uri") == uri), None)


async def _stop(client: RawClient) -> None:
    if client.process.returncode is None:
        try:
            _, future = client.request(types.SHUTDOWN, None)
            await asyncio.wait_for(future, 10)
            client.notify(types.EXIT, None)
            await client.exited(10)
        except (asyncio.TimeoutError, EOFError, ConnectionError):
            pass
    await client.close()


# -- llama-server as llama.vim drives it --------------------------------------------------------------------

def llama_vim_body(cursor: Cursor) -> dict:
    """What llama.vim's `llama#fim` sends for a first request at the cursor (ring of extra context empty: a cold
    editor). The cursor's line holds only its indentation, which llama.vim treats as an empty line: no middle."""
    lines = cursor.text.split("\n")
    y = cursor.line
    line_cur = lines[y]
    if not line_cur.strip():
        line_prefix, line_suffix, indent = "", "", 0
    else:
        line_prefix, line_suffix = line_cur[: len(cursor.indent)], line_cur[len(cursor.indent):]
        indent = len(line_cur) - len(line_cur.lstrip())
    prefix = "\n".join(lines[max(0, y - LLAMA_VIM["n_prefix"]):y]) + "\n"
    suffix = line_suffix + "\n" + "\n".join(lines[y + 1:y + 1 + LLAMA_VIM["n_suffix"]]) + "\n"
    return {"input_prefix": prefix, "input_suffix": suffix, "input_extra": [], "prompt": line_prefix,
            "n_predict": LLAMA_VIM["n_predict"], "stop": [], "n_indent": indent, "top_k": 40, "top_p": 0.90,
            "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": LLAMA_VIM["t_max_prompt_ms"], "t_max_predict_ms": LLAMA_VIM["t_max_predict_ms"],
            "seed": 0,  # not llama.vim's (a random seed): the run repeats
            "response_fields": ["content", "timings/prompt_n", "timings/prompt_ms", "timings/predicted_n",
                                "timings/predicted_ms", "truncated", "tokens_cached"]}


def llama_vim_first_line(content: str, cursor: Cursor) -> str:
    """The suggestion's first line as llama.vim shows it on a blank line: its leading blanks, up to the line's
    own, are taken as the line's indentation."""
    first = content.split("\n", 1)[0]
    if not cursor.text.split("\n")[cursor.line].strip():
        lead = min(len(first) - len(first.lstrip()), len(cursor.indent))
        first = first[lead:]
    return first.rstrip()


def completion_body(server, body: dict) -> dict:
    """/infill's prompt (llama.cpp's format_prompt_infill) without the FIM tokens the model lacks, for
    /completion: the BOS token if the model adds one, the prefix cut from its front to 3/4 of n_batch tokens,
    then the middle (the suffix cannot be placed without FIM tokens); the rest of llama.vim's body as it is."""
    def tokenize(text: str, special: bool = False) -> list[int]:
        return server.post("/tokenize", {"content": text, "add_special": special})["tokens"]

    tokens = tokenize("", special=True)  # [BOS] or []
    tokens += tokenize(body["input_prefix"])[-(3 * LLAMA_VIM["n_batch"] // 4):]
    if body["prompt"]:
        tokens += tokenize(body["prompt"])
    rest = {k: v for k, v in body.items() if k not in ("input_prefix", "input_suffix", "input_extra", "prompt")}
    return {**rest, "prompt": tokens}


def llama_server_sample(binary: Path, model: Path, threads: int, n_ctx: int, cursor: Cursor, endpoint: list[str],
                        log_path: Path | None) -> Sample:
    """A cold llama-server, one request as llama.vim makes it. `endpoint` (one item) remembers /infill's refusal
    across cursors: ["/infill"] until it is refused, then ["/completion"]."""
    from .llama_server import LlamaServer, LlamaServerError

    sample = Sample("llama-server", cursor.file, cursor.line, 0.0, None, load_1min=_load())
    server = LlamaServer(binary, model, threads, n_ctx, n_batch=LLAMA_VIM["n_batch"], log_path=log_path,
                         extra_args=["-ub", str(LLAMA_VIM["n_ubatch"])])
    started = time.perf_counter()
    try:
        server.start()
        sample.server_ready_s = time.perf_counter() - started
        body = llama_vim_body(cursor)
        answer = None
        if endpoint[0] == "/infill":
            asked = time.perf_counter()
            try:
                answer = server.post("/infill", body)
                sample.seconds = time.perf_counter() - asked
            except urllib.error.HTTPError as exc:  # no FIM tokens: "Infill is not supported by this model"
                endpoint[0] = "/completion"
                endpoint.append(f"/infill refused ({exc.code}): {exc.read().decode('utf-8', 'replace')[:200]}")
        if answer is None:
            asked = time.perf_counter()  # the tokenizing is part of it: /infill would tokenize too
            answer = server.post("/completion", completion_body(server, body))
            sample.seconds = time.perf_counter() - asked
        sample.reason = endpoint[0]
        content = str(answer.get("content", ""))
        sample.suggestion = content
        sample.exact = llama_vim_first_line(content, cursor) == cursor.expected
        sample.prompt_tokens = answer.get("timings/prompt_n", (answer.get("timings") or {}).get("prompt_n"))
        sample.evaluated_prompt_tokens = sample.prompt_tokens
        timings = answer.get("timings") or {}
        sample.prompt_ms = answer.get("timings/prompt_ms", timings.get("prompt_ms"))
        sample.generated_tokens = answer.get("timings/predicted_n", timings.get("predicted_n"))
        sample.generate_ms = answer.get("timings/predicted_ms", timings.get("predicted_ms"))
    except (LlamaServerError, urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        server.stop()
    return sample


# -- the run ----------------------------------------------------------------------------------------------------

@dataclass
class Options:
    model: Path
    files: list[str]
    cursors: int = 5
    delays: tuple[float, ...] = DEFAULT_DELAYS
    seed: int = 0
    threads: int | None = None
    full_window: bool = True
    llama_server: bool = True
    n_ctx: int = 2048  # llama-server's context: codegen-lsp's contextTokens default
    settings: dict = field(default_factory=dict)  # more initializationOptions for every codegen-lsp server


def server_revision() -> dict:
    """The server code this run measured: the commit, and whether server/ had uncommitted changes."""
    from codegen_lsp.settings import Settings

    aliases = {f.alias for f in Settings.model_fields.values()}
    out: dict = {"knows_first_suggestion_ms": "firstSuggestionMs" in aliases}
    here = Path(__file__).resolve().parents[3]
    try:
        out["commit"] = subprocess.run(["git", "-C", str(here), "log", "-1", "--format=%h %s"], capture_output=True,
                                       text=True, timeout=10).stdout.strip()[:100] or None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "server"],
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
        out["server_uncommitted_files"] = len(dirty)
    except (OSError, subprocess.SubprocessError):
        out["commit"] = None
    return out


def run_first_suggestion(options: Options, echo=lambda *a: print(*a, file=sys.stderr)) -> dict:
    started = time.perf_counter()
    machine = machine_info()
    revision = server_revision()
    files = [resolve_file(name) for name in options.files]
    cursors = {str(path): pick_cursors(path, options.cursors, options.seed) for path in files}
    line_counts = {str(path): len(path.read_text(encoding="utf-8").splitlines()) for path in files}
    threads = options.threads or os.cpu_count() or 1
    llama = {"binary": None, "build": None, "endpoint": None, "note": None}
    binary = None
    if options.llama_server:
        from .llama_server import ensure_built

        echo("llama-server: building or finding it (a first build takes many minutes)...")
        binary, build = ensure_built(echo=echo)
        llama.update(binary=str(binary), build=build)
    samples: list[Sample] = []
    total = sum(len(c) for c in cursors.values()) * (len(options.delays) + options.full_window + options.llama_server)
    done = 0

    def record(sample: Sample) -> None:
        nonlocal done
        done += 1
        samples.append(sample)
        what = f"{sample.run} D={sample.delay_s:g}s" if sample.run == "codegen-lsp" else sample.run
        result = sample.error or (f"{sample.seconds:.2f} s, window {sample.window or '-'}, "
                                  f"{'exact' if sample.exact else 'miss'}: {first_line(sample.suggestion)[:50]!r}")
        echo(f"[{done}/{total}] {Path(sample.file).name}:{sample.line + 1} {what}: {result}")

    endpoint = ["/infill"]
    log_dir = Path("bench-results")
    for path in files:
        for cursor in cursors[str(path)]:
            for delay in options.delays:
                record(asyncio.run(codegen_lsp_sample(cursor, delay, server_options(
                    options.model, options.threads, options.settings))))
            if options.full_window:
                record(asyncio.run(codegen_lsp_sample(cursor, 0.0, server_options(
                    options.model, options.threads, options.settings, firstSuggestionMs=0), "full-window")))
            if binary is not None:
                log_dir.mkdir(parents=True, exist_ok=True)
                record(llama_server_sample(binary, options.model, threads, options.n_ctx, cursor, endpoint,
                                           log_dir / "first-suggestion-llama-server.log"))
    if options.llama_server:
        llama["endpoint"] = endpoint[0]
        llama["note"] = endpoint[1] if len(endpoint) > 1 else None
    report = {
        "options": {"model": str(options.model), "files": options.files, "cursors_per_file": options.cursors,
                    "delays_s": list(options.delays), "seed": options.seed, "threads": options.threads,
                    "full_window": options.full_window, "llama_server": options.llama_server,
                    "server_settings": server_options(options.model, options.threads, options.settings)},
        "machine": {**machine, "load_1min_at_end": round(os.getloadavg()[0], 2)},
        "server": revision,
        "llama_server": {**llama, "llama_vim": LLAMA_VIM, "n_ctx": options.n_ctx, "threads": threads}
        if options.llama_server else None,
        "files": [{"path": str(p), "lines": line_counts[str(p)], "cursors": [c.brief() for c in cursors[str(p)]]}
                  for p in files],
        "samples": [asdict(s) for s in samples],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    return score(report)


def score(report: dict) -> dict:
    """The summary, ratios and verdicts of a report's samples (also for a saved report: `--from-json`)."""
    report["summary"] = summarize(report)
    report["ratios"] = ratios(report["summary"])
    report["targets"] = targets(report)
    return report


# -- summary, ratios, targets -----------------------------------------------------------------------------------

def _group(samples: list[dict], file: str | None, run: str, delay: float | None) -> list[dict]:
    return [s for s in samples if (file is None or s["file"] == file) and s["run"] == run
            and (delay is None or s["delay_s"] == delay)]


def _stats(group: list[dict]) -> dict:
    timed = sorted(s["seconds"] for s in group if s["seconds"] is not None and not s["error"])

    def median_of(key: str) -> float | None:
        values = [s[key] for s in group if s.get(key) is not None and not s["error"]]
        return statistics.median(values) if values else None

    windows: dict[str, int] = {}
    for s in group:
        if s["window"]:
            windows[s["window"]] = windows.get(s["window"], 0) + 1
    return {"n": len(group), "answered": len(timed), "p50_s": statistics.median(timed) if timed else None,
            "max_s": timed[-1] if timed else None, "windows": windows,
            "window_reported": sum(bool(s["window_reported"]) for s in group),
            "exact": sum(bool(s["exact"]) for s in group), "empty": sum(not s["suggestion"] for s in group),
            "late": sum((s.get("reason") or "").startswith("the model did not answer") for s in group),
            "same_as_full": sum(bool(s.get("same_as_full")) for s in group)
            if any(s.get("same_as_full") is not None for s in group) else None,
            "prompt_tokens_p50": median_of("prompt_tokens"), "evaluated_p50": median_of("evaluated_prompt_tokens"),
            "prompt_ms_p50": median_of("prompt_ms"), "generated_tokens_p50": median_of("generated_tokens"),
            "generate_ms_p50": median_of("generate_ms"),
            "errors": sum(bool(s["error"]) for s in group),
            "exact_percent": round(100 * sum(bool(s["exact"]) for s in group) / len(group), 2) if group else None}


def run_keys(report: dict) -> list[tuple[str, float | None]]:
    keys: list[tuple[str, float | None]] = [("codegen-lsp", d) for d in report["options"]["delays_s"]]
    if report["options"]["full_window"]:
        keys.append(("full-window", 0.0))
    if report["options"]["llama_server"]:
        keys.append(("llama-server", 0.0))
    return keys


def run_label(run: str, delay: float | None) -> str:
    if run == "codegen-lsp":
        return f"codegen-lsp D={delay:g}s"
    return {"full-window": "full window (firstSuggestionMs 0) D=0s", "llama-server": "llama-server (llama.vim)"}[run]


def summarize(report: dict) -> dict:
    samples = report["samples"]
    full = {(s["file"], s["line"]): first_line(s["suggestion"]) for s in samples if s["run"] == "full-window"}
    for s in samples:  # does a codegen-lsp answer begin with the line the full window gave at the same cursor?
        key = (s["file"], s["line"])
        s["same_as_full"] = first_line(s["suggestion"]) == full[key] if s["run"] == "codegen-lsp" and key in full \
            else None
    out: dict = {"files": {}, "all": {}}
    for f in report["files"]:
        out["files"][f["path"]] = {run_label(r, d): _stats(_group(samples, f["path"], r, d)) for r, d in run_keys(report)}
    out["all"] = {run_label(r, d): _stats(_group(samples, None, r, d)) for r, d in run_keys(report)}
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def ratios(summary: dict) -> dict:
    """p50 ratios within this run: each delay against the full window at D=0 and against llama-server, and the
    settled delays against D=0; per file and pooled."""
    out: dict = {}
    for scope, rows in [*summary["files"].items(), ("all files", summary["all"])]:
        full = rows.get(run_label("full-window", 0.0), {}).get("p50_s")
        llama = rows.get(run_label("llama-server", 0.0), {}).get("p50_s")
        at_open = rows.get(run_label("codegen-lsp", 0.0), {}).get("p50_s")
        entry = {}
        for label, row in rows.items():
            if not label.startswith("codegen-lsp"):
                continue
            entry[label] = {"vs_full_window": _ratio(row["p50_s"], full), "vs_llama_server": _ratio(row["p50_s"], llama),
                            "vs_D0": _ratio(row["p50_s"], at_open)}
        if full is not None and llama is not None:
            entry["full window vs llama-server"] = _ratio(full, llama)
        out[Path(scope).name if scope != "all files" else scope] = entry
    return out


def targets(report: dict) -> list[dict]:
    """The issue's targets as verdicts: per file up to TARGET_LINES lines (bigger files are reported beside them,
    marked informational), and exact match pooled over every cursor."""
    out = []
    summary = report["summary"]
    for f in report["files"]:
        rows = summary["files"][f["path"]]
        informational = f["lines"] > TARGET_LINES
        for delay in report["options"]["delays_s"]:
            row = rows[run_label("codegen-lsp", delay)]
            limit = TARGET_SETTLED_S if delay >= TARGET_SETTLED_DELAY_S else TARGET_AT_OPEN_S if delay == 0 else None
            if limit is None:
                continue
            what = ("2 s or more after opening" if delay >= TARGET_SETTLED_DELAY_S else "right after opening")
            ok = row["p50_s"] is not None and row["p50_s"] <= limit and not row["errors"]
            out.append({"target": f"first suggestion {what}: p50 <= {limit:g} s", "file": Path(f["path"]).name,
                        "lines": f["lines"], "delay_s": delay, "value": row["p50_s"], "limit": limit, "pass": ok,
                        "informational": informational})
    full = summary["all"].get(run_label("full-window", 0.0))
    if full and full["n"]:
        for delay in report["options"]["delays_s"]:
            row = summary["all"][run_label("codegen-lsp", delay)]
            gap = round(full["exact_percent"] - row["exact_percent"], 2)
            out.append({"target": f"exact match within {TARGET_EXACT_POINTS:g} points of the full window's",
                        "file": "all", "delay_s": delay, "value": row["exact_percent"],
                        "full_window": full["exact_percent"], "points_below_full": gap,
                        "pass": gap <= TARGET_EXACT_POINTS, "informational": False})
    return out


# -- printing ---------------------------------------------------------------------------------------------------

def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _windows(row: dict) -> str:
    if not row["windows"]:
        return "-"
    text = ", ".join(f"{k} {v}" for k, v in sorted(row["windows"].items()))
    return text if row["window_reported"] else text + " (not reported)"


def _same(row: dict) -> str:
    return "-" if row.get("same_as_full") is None else f"{row['same_as_full']}/{row['n']}"


def _empty(row: dict) -> str:
    """Empty answers, and how many of them were the server giving up at requestTimeoutMs."""
    return f"{row['empty']} ({row['late']})" if row.get("late") else str(row["empty"])


def _medians(row: dict) -> list[str]:
    """Medians per answer: prompt tokens, of them evaluated, prompt ms, generated tokens, generation ms."""
    keys = ("prompt_tokens_p50", "evaluated_p50", "prompt_ms_p50", "generated_tokens_p50", "generate_ms_p50")
    return ["-" if row.get(k) is None else f"{row[k]:.0f}" for k in keys]


def table_lines(report: dict) -> list[str]:
    header = ["file (lines)", "run", "n", "p50 s", "max s", "windows", "exact", "= full", "empty (late)", "errors",
              "prompt tok", "evaluated", "prompt ms", "gen tok", "gen ms"]
    rows = [header]
    for f in report["files"]:
        name = f"{Path(f['path']).name} ({f['lines']:,})"
        for label, row in report["summary"]["files"][f["path"]].items():
            rows.append([name, label, str(row["n"]), _s(row["p50_s"]), _s(row["max_s"]), _windows(row),
                         f"{row['exact']}/{row['n']}", _same(row), _empty(row), str(row["errors"]), *_medians(row)])
            name = ""
    for label, row in report["summary"]["all"].items():
        rows.append(["all files", label, str(row["n"]), _s(row["p50_s"]), _s(row["max_s"]), _windows(row),
                     f"{row['exact']}/{row['n']} ({row['exact_percent']:.0f}%)", _same(row), _empty(row),
                     str(row["errors"]),
                     *_medians(row)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(widths[i]) if i < 2 or i == 5 else c.rjust(widths[i]) for i, c in enumerate(r))
            for r in rows]


def print_first_suggestion(report: dict) -> None:
    m, o, srv = report["machine"], report["options"], report["server"]
    print(f"first suggestion after opening a file: model {Path(o['model']).name}, {o['cursors_per_file']} cursors "
          f"per file (seed {o['seed']}), delays {', '.join(f'{d:g}' for d in o['delays_s'])} s, a fresh server each")
    loads = sorted(s["load_1min"] for s in report["samples"] if s.get("load_1min") is not None)
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {_s(m['load_1min_at_start'])} at start, "
          f"{_s(m['load_1min_at_end'])} at the end" + (f", {_s(statistics.median(loads))} median and {_s(loads[-1])} "
                                                       f"max at a sample's start" if loads else "")
          + f"; {report['wall_seconds']:.0f} s")
    known = "known" if srv["knows_first_suggestion_ms"] else "NOT known (the full-window run is then the same as D=0)"
    print(f"server: {srv.get('commit')}; {srv.get('server_uncommitted_files', '?')} uncommitted files in server/; "
          f"firstSuggestionMs {known}")
    print("files: " + ", ".join(f"{f['path']} ({f['lines']:,} lines; cursors at lines "
                                f"{', '.join(str(c['line'] + 1) for c in f['cursors'])})" for f in report["files"]))
    if ls := report.get("llama_server"):
        print(f"llama-server: {ls['binary']}, cold per cursor, llama.vim's first request (n_prefix "
              f"{ls['llama_vim']['n_prefix']}, n_suffix {ls['llama_vim']['n_suffix']}, t_max_prompt_ms "
              f"{ls['llama_vim']['t_max_prompt_ms']}, t_max_predict_ms {ls['llama_vim']['t_max_predict_ms']}) to "
              f"{ls['endpoint']}" + (f"; {ls['note']}, so /completion gets the prefix as /infill would cut it "
                                     f"({3 * ls['llama_vim']['n_batch'] // 4} tokens)" if ls.get("note") else ""))
    for line in table_lines(report):
        print("  " + line)
    print("  (seconds: request to answer; windows: the stats' window per answer; = full: first line the same as "
          "the full window's at that cursor; empty (late): answers without text, "
          "(of them given up at requestTimeoutMs); prompt tok ... gen ms: medians per answer, from the server's "
          "stats, llama-server's timings)")
    print("ratios of p50 (this run):")
    for scope, entry in report["ratios"].items():
        parts = []
        for label, r in entry.items():
            if isinstance(r, dict):
                bits = [f"{k.replace('_', ' ')} {v:.2f}" for k, v in r.items() if v is not None and k != "vs_D0"
                        or (k == "vs_D0" and v is not None and not label.endswith("D=0s"))]
                if bits:
                    parts.append(f"{label.removeprefix('codegen-lsp ')}: {', '.join(bits)}")
            elif r is not None:
                parts.append(f"{label} {r:.2f}")
        if parts:
            print(f"  {scope}: " + "; ".join(parts))
    print("targets:")
    for t in report["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        if "full_window" in t:
            print(f"  {verdict} {t['target']}, D={t['delay_s']:g}s: {t['value']:.1f}% vs {t['full_window']:.1f}% "
                  f"({t['points_below_full']:+.1f} points below)")
        else:
            note = f" (informational: over {TARGET_LINES:,} lines)" if t["informational"] else ""
            print(f"  {verdict} {t['target']}, {t['file']} ({t['lines']:,} lines), D={t['delay_s']:g}s: "
                  f"p50 {_s(t['value'])} s{note}")
