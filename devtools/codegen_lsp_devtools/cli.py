"""The development tools' `codegen-lsp` commands: bench, train-default, test-model.

The runtime CLI finds these through the `codegen_lsp.commands` entry points (see devtools/pyproject.toml)
and loads one only when its command is run, so `codegen-lsp serve` never imports this package. Each
function adds its subcommand to the runtime's subparsers and returns the exceptions that are user errors
(printed as one line, exit status 1).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from codegen_lsp.cli import CliError
from codegen_lsp.outtypes import OUTTYPES

from .bench.mtpb_data import MtpbDataError


# -- test models -----------------------------------------------------------------------------------

def cmd_test_model(args: argparse.Namespace) -> int:
    from .test_models import TinyModelSpec, build_test_model

    spec = TinyModelSpec(family=args.family, n_layer=args.layers, n_embd=args.embd, n_head=args.heads,
                         rotary_dim=args.rotary_dim, mp_num=args.mp_num, seed=args.seed, outtype=args.outtype)
    model = build_test_model(spec, Path(args.cache) if args.cache else None)
    print(model.gguf_path if args.quantize is None else model.quantized(args.quantize))
    return 0


# -- the default model -----------------------------------------------------------------------------

def cmd_train_default(args: argparse.Namespace) -> int:
    from .training.command import run

    return run(args)


def _model_file(args: argparse.Namespace) -> Path:
    model = Path(args.model)
    if not model.is_file():
        raise CliError(f"{model}: model file not found")
    return model


def _write_report(report: dict, out: str) -> None:
    import json

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


def cmd_bench_engine(args: argparse.Namespace) -> int:
    import asyncio

    from .bench.engine import print_engine_report, run_engine_bench

    try:
        report = asyncio.run(run_engine_bench(_model_file(args), args.rounds, args.max_tokens))
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    print_engine_report(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_checkpoint_formats(args: argparse.Namespace) -> int:
    from .bench.checkpoint_formats import print_checkpoint_formats, run_checkpoint_formats

    try:
        report = run_checkpoint_formats(args.rounds, args.threads)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    print_checkpoint_formats(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_gguf_fuzz(args: argparse.Namespace) -> int:
    from .bench.gguf_fuzz import print_gguf_fuzz, run_gguf_fuzz

    try:
        report = run_gguf_fuzz(args.files, args.seed, args.attack_mb)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    print_gguf_fuzz(report)
    _write_report(report, args.out)
    return 1 if report["others"] else 0  # an exception other than HeaderError: a bug


def cmd_bench_candidates(args: argparse.Namespace) -> int:
    from .bench.candidates import main_sync, print_candidates_report

    report = main_sync(_model_file(args), args.rounds, args.candidates, args.max_tokens)
    print_candidates_report(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_speculation(args: argparse.Namespace) -> int:
    from .bench.speculation import print_speculation_report, run_speculation

    report = run_speculation(_model_file(args), args.max_tokens, args.prompts, threads=args.threads)
    print_speculation_report(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_load(args: argparse.Namespace) -> int:
    from .bench.load import LoadSpec, main_sync, print_load_report

    reports = []
    for variant in args.variants.split(","):
        if variant not in ("never-read", "drained", "log-file"):
            raise CliError(f"unknown variant {variant!r}: never-read, drained, log-file")
        log_file = Path(args.out).with_suffix(".server.log") if variant == "log-file" else None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.unlink(missing_ok=True)
        spec = LoadSpec(requests=args.requests, seed=args.seed, in_flight=args.in_flight,
                        drain_stderr=variant == "drained", log_file=log_file, log_level=args.log_level)
        try:
            report = main_sync(_model_file(args), spec)
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
        print_load_report(report)
        reports.append(report)
    _write_report({"variants": reports}, args.out)
    failed = [r for r in reports if r["unanswered"] or r["requests"] < r["planned"] or r["shutdown_s"] is None]
    return 1 if failed else 0


def cmd_bench_doc_churn(args: argparse.Namespace) -> int:
    from .bench.doc_churn import command

    return command(_model_file(args) if args.model else None, args.seed, Path(args.out))


def cmd_bench_context(args: argparse.Namespace) -> int:
    from .bench.context import main_sync, print_context_report

    report = main_sync(_model_file(args), args.keys, args.cross_file_tokens, args.threads)
    print_context_report(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_loop_lag(args: argparse.Namespace) -> int:
    from .bench.loop_lag import default_model, main_sync, print_loop_lag

    model = _model_file(args) if args.model else default_model()
    report = main_sync(model, args.phase_s, args.threads, args.synthesis_max_tokens, args.max_tokens)
    print_loop_lag(report)
    _write_report(report, args.out)
    return 0


def _model_or_smollm2(args: argparse.Namespace) -> Path:
    """--model, else SmolLM2-135M-Instruct Q4_1 (fetched into .cache/real-models if missing)."""
    if args.model:
        return _model_file(args)
    from .real_models import RealModelError, smollm2_gguf

    try:
        return smollm2_gguf(Path.cwd() / ".cache" / "real-models")
    except RealModelError as exc:
        raise CliError(str(exc)) from None


def cmd_bench_preempt(args: argparse.Namespace) -> int:
    from .bench.preempt import print_preempt_report, run_preempt

    if args.repeats < 1:
        raise CliError(f"--repeats: at least 1 (got {args.repeats})")
    report = run_preempt(_model_or_smollm2(args), args.repeats, args.threads)
    print_preempt_report(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_remote_healing(args: argparse.Namespace) -> int:
    from .bench.remote_healing import print_remote_healing, run_remote_healing

    report = run_remote_healing(_model_or_smollm2(args), args.threads or 2)
    print_remote_healing(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_exclusion(args: argparse.Namespace) -> int:
    from .bench.exclusion import print_exclusion, run_exclusion

    if args.files < 1 or args.checks < 1:
        raise CliError(f"--files and --checks: at least 1 (got {args.files}, {args.checks})")
    report = run_exclusion(args.files, args.checks, args.seed)
    print_exclusion(report)
    _write_report(report, args.out)
    return 0


def cmd_bench_first_suggestion(args: argparse.Namespace) -> int:
    import json
    import sys

    from .bench.first_suggestion import DEFAULT_FILES, Options, print_first_suggestion, run_first_suggestion, score
    from .bench.llama_server import LlamaServerError

    if args.from_json:
        try:
            report = score(json.loads(Path(args.from_json).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f"{args.from_json}: not a first-suggestion report ({exc})") from None
        if args.json:
            json.dump(report, sys.stdout, indent=1)
            print()
        else:
            print_first_suggestion(report)
        return 0
    model = _model_or_smollm2(args)
    try:
        delays = tuple(float(d) for d in args.delays.split(",") if d.strip())
    except ValueError:
        raise CliError(f"--delays: seconds separated by commas (got {args.delays!r})") from None
    if not delays or any(d < 0 for d in delays):
        raise CliError(f"--delays: at least one, none negative (got {args.delays!r})")
    if args.cursors < 1:
        raise CliError(f"--cursors: at least 1 (got {args.cursors})")
    files = [f.strip() for f in args.files.split(",") if f.strip()] if args.files else list(DEFAULT_FILES)
    settings = {}
    for item in args.setting:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--setting: KEY=VALUE (got {item!r})")
        try:
            settings[key.strip()] = json.loads(value)
        except ValueError:
            settings[key.strip()] = value
    options = Options(model=model, files=files, cursors=args.cursors, delays=delays, seed=args.seed,
                      threads=args.threads, full_window=not args.no_full_window,
                      llama_server=not args.no_llama_server, settings=settings)
    try:
        report = run_first_suggestion(options)
    except (FileNotFoundError, LlamaServerError) as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_first_suggestion(report)
        print(f"wrote {out}")
    return 0


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from .bench.latency import print_report, run_latency
    from .bench.llama_server import LlamaServerError
    from .bench.trace import TraceError, limit_trace, load_trace

    try:
        trace = limit_trace(load_trace(Path(args.trace) if args.trace else None), args.keystrokes)
    except TraceError as exc:
        raise SystemExit(f"codegen-lsp: error: {exc}") from None
    backends = args.backends
    if args.no_llama_server:
        backends = ",".join(b for b in backends.split(",") if b.strip() != "c")
    if args.model:
        model = Path(args.model)
        if not model.is_file():
            raise SystemExit(f"codegen-lsp: error: {model}: model file not found")
    else:
        from .test_models import build_test_model, codegen_350m_shape

        print("building a random-weight model of CodeGen-350M's shape (cached after the first run)...")
        model = build_test_model(codegen_350m_shape()).quantized(args.quantization)
    try:
        report = run_latency(model, trace, args.threads, args.max_tokens, args.context_tokens, backends,
                             args.request_pause_ms, Path(args.out), token_healing=not args.no_token_healing,
                             llama_server_args=shlex.split(args.llama_server_args))
    except (LlamaServerError, ValueError) as exc:
        raise SystemExit(f"codegen-lsp: error: {exc}") from None
    print_report(report)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")
    return 0


def cmd_bench_remote(args: argparse.Namespace) -> int:
    import json

    from .bench.llama_server import LlamaServerError
    from .bench.remote import print_remote_report, run_remote
    from .bench.trace import TraceError, limit_trace, load_trace

    try:
        trace = limit_trace(load_trace(Path(args.trace) if args.trace else None), args.keystrokes)
        clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
        settings = json.loads(args.settings) if args.settings else {}
    except (TraceError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.max_tokens is not None:
        settings["maxTokens"] = args.max_tokens
    try:
        report = run_remote(_model_or_smollm2(args), trace, clients, args.threads, args.context_tokens, settings,
                            args.poll_ms, Path(args.out), llama_server_args=shlex.split(args.llama_server_args),
                            llama_server_binary=Path(args.llama_server) if args.llama_server else None,
                            editor_nice=args.editor_nice)
    except (LlamaServerError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print_remote_report(report)
    print(f"wrote {args.out}")
    return 0


def cmd_bench_make_trace(args: argparse.Namespace) -> int:
    from .bench.trace import TraceError, default_trace_path, make_trace, stdlib_path, write_trace

    try:
        source = Path(args.source) if args.source else None
        if source is not None and not source.is_file():
            source = stdlib_path(args.source)  # a module name: textwrap, argparse, ...
        trace = make_trace(source, args.function or None, args.keystrokes, args.seed)
    except (TraceError, SyntaxError, OSError) as exc:
        raise SystemExit(f"codegen-lsp: error: {exc}") from None
    out = default_trace_path() if args.default else Path(args.out)
    write_trace(trace, out)
    print(f"wrote {out}: {len(trace['events'])} keys of {trace['name']} ({trace['function']})")
    return 0


def cmd_bench_mtpb(args: argparse.Namespace) -> int:
    from .bench.mtpb import MtpbOptions, run_mtpb
    from .bench.mtpb_score import print_summary

    report = run_mtpb(MtpbOptions(
        model=Path(args.model) if args.model else None, data=Path(args.data) if args.data else None,
        limit=args.limit, samples=args.samples, greedy=args.greedy, single_turn=args.single_turn,
        out_dir=Path(args.out), jobs=args.jobs, timeout_s=args.timeout, threads=args.threads,
        progress=not args.quiet))
    print_summary(report)
    return 0


def cmd_bench_mtpb_exec(args: argparse.Namespace) -> int:
    from .bench.mtpb_score import print_summary, run_mtpb_exec

    try:
        report = run_mtpb_exec(Path(args.samples), Path(args.out), Path(args.data) if args.data else None,
                               jobs=args.jobs, timeout_s=args.timeout, progress=not args.quiet)
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print_summary(report)
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    import json

    from .bench.quality import run_quality

    report = run_quality(Path(args.model), files=args.files, per_file=args.lines_per_file, seed=args.seed,
                         threads=args.threads, compare=tuple(args.compare))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"single-line infill exact match {report['infill_exact_match']:.2f}% "
          f"(baseline, repeat the line above: {report['infill_baseline_repeat_line_above']:.2f}%) over "
          f"{report['infill_cases']} lines of {report['held_out_files']} held-out files")
    print(f"line edit similarity: infill {report['infill_edit_similarity']:.1f} (baseline "
          f"{report['infill_baseline_edit_similarity']:.1f}), after a space {report['after_space_edit_similarity']:.1f}")
    print(f"after a space: exact match {report['after_space_exact_match']:.2f}%, sensible "
          f"{report['after_space_sensible']:.2f}% over {report['after_space_cases']} cursors; "
          f"degenerate {report['degenerate']:.2f}%")
    for name in args.compare:
        key = name.replace("-", "_")
        print(f"without {name}: infill exact match {report[f'infill_exact_match_without_{key}']:.2f}% "
              f"(similarity {report[f'infill_edit_similarity_without_{key}']:.1f}), after a "
              f"space exact match {report[f'after_space_exact_match_without_{key}']:.2f}%, sensible "
              f"{report[f'after_space_sensible_without_{key}']:.2f}%; degenerate "
              f"{report[f'degenerate_without_{key}']:.2f}%")
    return 0



# -- registration (entry points) --------------------------------------------------------------------

def add_bench(sub: argparse._SubParsersAction) -> tuple[type[BaseException], ...]:
    bench = sub.add_parser("bench", help="benchmarks that print numbers").add_subparsers(
        dest="bench_command", required=True)
    p = bench.add_parser("latency", help="keystroke-trace replay: codegen-lsp vs raw llama-cpp-python vs llama-server")
    p.add_argument("--trace", default=None, help="a trace from `bench make-trace` (default: the shipped textwrap trace)")
    p.add_argument("--model", default=None, help="a .gguf (default: random CodeGen-350M shape, q4_k_m)")
    p.add_argument("--quantization", default="q4_k_m")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads for every backend (default: all cores)")
    p.add_argument("--context-tokens", type=int, default=2048, help="n_ctx for every backend")
    p.add_argument("--keystrokes", type=int, default=None, help="replay only the first N keys of the trace")
    p.add_argument("--backends", default="a,b,c", help="a: codegen-lsp, b: raw llama-cpp-python, c: llama-server")
    p.add_argument("--no-llama-server", action="store_true", help="same as leaving c out of --backends")
    p.add_argument("--request-pause-ms", type=float, default=None,
                   help="request after pauses at least this long (default: the server's adaptive debounce for the trace)")
    p.add_argument("--llama-server-args", default="", metavar="ARGS",
                   help="more llama-server arguments, e.g. its own speculation: "
                        "'--spec-type ngram-simple --spec-ngram-simple-size-n 3'")
    p.add_argument("--no-token-healing", action="store_true",
                   help="codegen-lsp without token healing: the same tokens evaluated and decoded as b and c")
    p.add_argument("--out", default="bench-results/latency.json", help="JSON report (Markdown beside it)")
    p.set_defaults(func=cmd_bench_latency)

    p = bench.add_parser("remote", help="one llama-server (--parallel N) shared by N codegen-lsp servers typing a "
                                        "keystroke trace at once: p50/p95 per N, tokens decoded after cancels")
    p.add_argument("--clients", default="1,2,4", help="editor counts, one llama-server each (default 1,2,4)")
    p.add_argument("--trace", default=None, help="a trace from `bench make-trace` (default: the shipped textwrap trace)")
    p.add_argument("--keystrokes", type=int, default=60, help="type only the first N keys of the trace")
    p.add_argument("--model", default=None, help="a .gguf (default: SmolLM2-135M-Instruct Q4_1 in .cache/real-models)")
    p.add_argument("--threads", type=int, default=2, help="llama-server threads (-t and -tb)")
    p.add_argument("--context-tokens", type=int, default=1024,
                   help="contextTokens of each codegen-lsp server, and each llama-server slot's context (-c is N "
                        "times it); default 1024, half the server's default, so 4 cold prompts fit in a short run")
    p.add_argument("--max-tokens", type=int, default=None, help="maxTokens (default: the server's)")
    p.add_argument("--settings", default="", metavar="JSON", help="more codegen-lsp settings, e.g. '{\"debounceMs\": 50}'")
    p.add_argument("--poll-ms", type=float, default=5.0, help="the /slots poller's pause between polls")
    p.add_argument("--editor-nice", type=int, default=10,
                   help="niceness of the codegen-lsp servers, so llama-server gets the cores first as it would with "
                        "the editors on their own machines (0: same priority)")
    p.add_argument("--llama-server-args", default="", metavar="ARGS", help="more llama-server arguments")
    p.add_argument("--llama-server", default=None, metavar="PATH",
                   help="this llama-server binary (default: the one `bench latency` builds and caches)")
    p.add_argument("--out", default="bench-results/remote.json", help="JSON report (llama-server logs beside it)")
    p.set_defaults(func=cmd_bench_remote)

    p = bench.add_parser("engine", help="the engine process: cancel → answer, kill → first suggestion, RSS per process")
    p.add_argument("--model", required=True, help="a .gguf that decodes for seconds at --max-tokens")
    p.add_argument("--rounds", type=int, default=5, help="cancels and kills, each")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--out", default="bench-results/engine.json", help="JSON report")
    p.set_defaults(func=cmd_bench_engine)

    p = bench.add_parser("checkpoint-formats", help="a pull's convert+quantize+check from pytorch_model.bin "
                                                   "(read without torch) against model.safetensors: time ratio, "
                                                   "peak RSS")
    p.add_argument("--rounds", type=int, default=2, help="conversions of each, alternating")
    p.add_argument("--threads", type=int, default=None, help="quantizer threads")
    p.add_argument("--out", default="bench-results/checkpoint-formats.json", help="JSON report")
    p.set_defaults(func=cmd_bench_checkpoint_formats)

    p = bench.add_parser("gguf-fuzz", help="gguf/header.py on mutated real headers and crafted hostile files: "
                                           "headers vs HeaderError (any other exception fails), time, peak RSS")
    p.add_argument("--files", type=int, default=10_000, help="mutated headers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attack-mb", type=int, default=100, help="MiB of the crafted files that fill up their file")
    p.add_argument("--out", default="bench-results/gguf-fuzz.json", help="JSON report")
    p.set_defaults(func=cmd_bench_gguf_fuzz)

    p = bench.add_parser("candidates", help="several suggestions (Invoked) next to one (Automatic): engine time ratio")
    p.add_argument("--model", required=True, help="a .gguf")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--out", default="bench-results/candidates.json", help="JSON report")
    p.set_defaults(func=cmd_bench_candidates)

    p = bench.add_parser("speculation", help="greedy decoding with prompt-lookup drafts against without, same "
                                             "prompts (trace, code edits, all-miss), one run")
    p.add_argument("--model", required=True, help="a .gguf")
    p.add_argument("--prompts", type=int, default=12, help="prompts per set")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="bench-results/speculation.json", help="JSON report")
    p.set_defaults(func=cmd_bench_speculation)

    p = bench.add_parser("load", help="a seeded storm of good and bad requests (cancels, stale edits, unknown "
                                      "methods) from a client that never reads the server's stderr")
    p.add_argument("--model", required=True, help="a .gguf")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-flight", type=int, default=24, help="requests outstanding at once")
    p.add_argument("--variants", default="never-read,drained,log-file",
                   help="comma-separated: never-read (stderr is a pipe nobody reads), drained, log-file")
    p.add_argument("--log-level", default="info")
    p.add_argument("--out", default="bench-results/load.json", help="JSON report (and .server.log beside it)")
    p.set_defaults(func=cmd_bench_load)

    p = bench.add_parser("doc-churn", help="server RSS before and after opening and closing 200 documents and "
                                           "2,000 didChange for URIs never opened (target: within 10 MB)")
    p.add_argument("--model", default=None, help="a .gguf (default: the built-in demo model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench-results/doc-churn.json", help="JSON report")
    p.set_defaults(func=cmd_bench_doc_churn)

    p = bench.add_parser("loop-lag", help="the server's event-loop responsiveness (round trip of a codeAction that "
                                          "needs no model, every 20 ms): idle, during completions for a 2 MB "
                                          "document, during a long synthesis turn; p50/p99/max and ratios to idle")
    p.add_argument("--model", default=None, help="a .gguf (default: SmolLM2 if cached in .cache/real-models, "
                                                 "else the tiny test model)")
    p.add_argument("--phase-s", type=float, default=5.0, help="seconds of probing per phase")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 leaves the server a core)")
    p.add_argument("--max-tokens", type=int, default=16, help="maxTokens of the completions")
    p.add_argument("--synthesis-max-tokens", type=int, default=600, help="synthesisMaxTokens of the turn")
    p.add_argument("--out", default="bench-results/loop-lag.json", help="JSON report")
    p.set_defaults(func=cmd_bench_loop_lag)

    p = bench.add_parser("first-suggestion", help="seconds from opening a real file to the first suggestion (a "
                                                  "fresh server per cursor and delay), next to the full window "
                                                  "and llama-server as llama.vim drives it; PASS/MISS per target")
    p.add_argument("--model", default=None, help="a .gguf (default: SmolLM2-135M-Instruct Q4_1, fetched into "
                                                 ".cache/real-models if missing)")
    p.add_argument("--files", default=None, help="comma-separated paths or standard-library names (default: "
                                                 "bisect.py, heapq.py, argparse.py, pydoc_data/topics.py)")
    p.add_argument("--cursors", type=int, default=5, help="cursors per file")
    p.add_argument("--delays", default="0,2,10", help="seconds between opening and asking, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    p.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                   help="one more server setting for every codegen-lsp server, VALUE as JSON where it parses "
                        "(repeatable; e.g. requestTimeoutMs=60000)")
    p.add_argument("--no-full-window", action="store_true", help="skip the firstSuggestionMs 0 runs")
    p.add_argument("--no-llama-server", action="store_true", help="skip llama-server (and its build)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the tables")
    p.add_argument("--out", default="bench-results/first-suggestion.json", help="JSON report")
    p.add_argument("--from-json", default=None, metavar="REPORT", help="run nothing: print a saved report again")
    p.set_defaults(func=cmd_bench_first_suggestion)

    p = bench.add_parser("preempt", help="how long a running warm-up holds up a request (added wait against an "
                                         "idle engine), next to one decode step of that request")
    p.add_argument("--model", default=None, help="a .gguf (default: SmolLM2-135M-Instruct Q4_1)")
    p.add_argument("--repeats", type=int, default=7, help="requests sent into a running warm-up")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    p.add_argument("--out", default="bench-results/preempt.json", help="JSON report")
    p.set_defaults(func=cmd_bench_preempt)

    p = bench.add_parser("remote-healing", help="token healing over the API, each way (grammar, check, off) on "
                                                "llama-server and llama_cpp.server, against the in-process engine")
    p.add_argument("--model", default=None, help="a .gguf (default: SmolLM2-135M-Instruct Q4_1)")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: 2)")
    p.add_argument("--out", default="bench-results/remote-healing.json", help="JSON report")
    p.set_defaults(func=cmd_bench_remote_healing)

    p = bench.add_parser("exclusion", help="what deciding whether a file may reach a model costs per request, "
                                           "in a git workspace of 10,000 files")
    p.add_argument("--files", type=int, default=10000, help="files in the temporary workspace")
    p.add_argument("--checks", type=int, default=2000, help="checks timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench-results/exclusion.json", help="JSON report")
    p.set_defaults(func=cmd_bench_exclusion)

    p = bench.add_parser("context", help="per-keystroke cost of context from other files: two servers, with and "
                                         "without, same keys")
    p.add_argument("--model", required=True, help="a .gguf")
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--cross-file-tokens", type=int, default=1024)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="bench-results/context.json", help="JSON report")
    p.set_defaults(func=cmd_bench_context)

    p = bench.add_parser("make-trace", help="a keystroke trace: typing part of a standard-library function")
    p.add_argument("--source", default=None, help="a .py file or stdlib module name (default: textwrap)")
    p.add_argument("--function", default="dedent", help="the function whose body is typed ('' = the first one)")
    p.add_argument("--keystrokes", type=int, default=80, help="at least this many keys (whole lines)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench-results/trace.json")
    p.add_argument("--default", action="store_true", help="write the package's default trace instead of --out")
    p.set_defaults(func=cmd_bench_make_trace)

    def mtpb_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default=None, help="mtpb.jsonl (default: $CODEGEN_LSP_MTPB or ../shared/mtpb/mtpb.jsonl)")
        p.add_argument("--out", default="bench-results", help="folder for the JSON and Markdown reports")
        p.add_argument("--jobs", type=int, default=2, help="programs executed at once")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds per program (the paper: 20)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = bench.add_parser("mtpb", help="MTPB pass rate: synthesize each problem through the server, run it sandboxed")
    p.add_argument("--model", default=None, help="a .gguf (default: the server's default model)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--samples", type=int, default=1, help="programs sampled per test case")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of the paper's sampling")
    p.add_argument("--single-turn", action="store_true", help="all prompts as one comment block (the paper's baseline)")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    mtpb_common(p)
    p.set_defaults(func=cmd_bench_mtpb)

    p = bench.add_parser("quality", help="held-out single-line infill exact match (through the server) and "
                                        "perplexity, each next to a trivial baseline")
    p.add_argument("--model", required=True, help="a .gguf")
    p.add_argument("--files", type=int, default=40, help="held-out files")
    p.add_argument("--lines-per-file", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compare", action="append", default=[], choices=["healing", "repetition-filter", "suffix-fit"],
                   help="also score the same cursors with that setting off, in the same run (repeatable)")
    p.add_argument("--out", default="bench-results/quality.json")
    p.set_defaults(func=cmd_bench_quality)

    p = bench.add_parser("mtpb-exec", help="score programs produced elsewhere (JSONL: id, input, program[, sample])")
    p.add_argument("samples")
    mtpb_common(p)
    p.set_defaults(func=cmd_bench_mtpb_exec)

    return (MtpbDataError,)


def add_train_default(sub: argparse._SubParsersAction) -> tuple[type[BaseException], ...]:
    from .training.command import TrainCommandError, add_arguments

    p = sub.add_parser("train-default", help="train the default model (CodeGen architecture, CodeGen2 recipe) "
                                             "on permissively licensed source found on this machine; resumable")
    add_arguments(p, OUTTYPES)
    p.set_defaults(func=cmd_train_default)
    return (TrainCommandError,)


def add_test_model(sub: argparse._SubParsersAction) -> tuple[type[BaseException], ...]:
    p = sub.add_parser("test-model", help="build (or reuse) a tiny random-weight CodeGen test model")
    p.add_argument("--family", choices=["codegen1", "codegen2"], default="codegen1")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embd", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--rotary-dim", type=int, default=16)
    p.add_argument("--mp-num", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--outtype", choices=["f32", "f16"], default="f32")
    p.add_argument("--quantize", choices=["q8_0", "q4_k_m", "q5_k_m"], default=None)
    p.add_argument("--cache", default=None, help="cache folder (default: ./.cache/test-models)")
    p.set_defaults(func=cmd_test_model)
    return ()
