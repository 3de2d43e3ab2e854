"""`codegen-lsp doctor`: what a bug report needs, and whether this machine can run the llama.cpp build.

This process never imports llama_cpp (a build this CPU refuses would kill it): everything llama-related
runs in a child Python that writes its findings as JSON to a file named by its last argument.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import TextIO

from . import __version__
from .engine.crash import REBUILD_HINT, describe_exit, signal_name

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16")
# llama.cpp's name for a compiled-in feature → the /proc/cpuinfo flag the CPU must report to run it.
BUILD_FEATURE_FLAGS = {"AVX2": "avx2", "AVX512": "avx512f", "AVX512_VNNI": "avx512_vnni", "AMX_INT8": "amx_int8"}
PACKAGES = ("codegen-lsp", "llama-cpp-python", "gguf", "pygls", "tree-sitter")
BUILD_TIMEOUT_S = 60.0
EVAL_TIMEOUT_S = 180.0
EVAL_PROMPT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"
INSTALL_HINT = ("install llama-cpp-python into this Python: `make install` in a checkout, or pip install it as "
                "the README's \"Installing with plain pip\" says")

_BUILD_CHILD = r"""
import json, sys
result = {}
try:
    import llama_cpp
except Exception as exc:
    result = {"imported": False, "error": f"{type(exc).__name__}: {exc}"}
else:
    info = llama_cpp.llama_print_system_info()
    result = {"imported": True, "version": getattr(llama_cpp, "__version__", None),
              "system_info": info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info),
              "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload())}
with open(sys.argv[-1], "w") as out:
    json.dump(result, out)
"""

# Loads the model as the server does (all cores, so OpenMP worker threads run too) and generates a few tokens.
_EVAL_CHILD = r"""
import json, os, sys, time
model, n_ctx, prompt, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[-1]
import llama_cpp
threads = os.cpu_count() or 1
started = time.perf_counter()
try:
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, verbose=False)
except (ValueError, RuntimeError, OSError) as exc:
    result = {"loaded": False, "error": str(exc)}
else:
    loaded = time.perf_counter()
    usage = llm.create_completion(prompt, max_tokens=4, temperature=0.0)["usage"]
    result = {"loaded": True, "threads": threads, "load_s": loaded - started,
              "eval_s": time.perf_counter() - loaded, "prompt_tokens": usage["prompt_tokens"],
              "generated_tokens": usage["completion_tokens"]}
    llm.close()
with open(out_path, "w") as out:
    json.dump(result, out)
"""


# -- the machine -------------------------------------------------------------------------------------

def parse_cpuinfo(text: str) -> dict:
    """The CPU's model name, the SIMD flags that matter to llama.cpp, and whether it runs under a hypervisor."""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags_line = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    return {"model": model.group(1).strip() if model else platform.processor() or platform.machine(),
            "flags": {name: name in flags for name in CPU_FLAGS} if flags_line else {},
            "hypervisor": "hypervisor" in flags}


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> dict:
    try:
        return parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        return parse_cpuinfo("")


def os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return release.get("PRETTY_NAME") or release.get("NAME", "")
    except (OSError, AttributeError):
        return platform.platform(terse=True)


def package_versions() -> dict[str, str | None]:
    """Versions from installed metadata: readable even when a package's import would crash."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["codegen-lsp"] = versions["codegen-lsp"] or __version__
    return versions


def platform_info() -> dict:
    return {"python": platform.python_version(), "executable": sys.executable, "os": os_name(),
            "kernel": f"{platform.system()} {platform.release()}", "machine": platform.machine()}


def directories() -> dict[str, dict]:
    """Where codegen-lsp keeps things on this machine (path and whether it exists)."""
    import platformdirs

    from .resources import cache_dir, resource_dir

    paths = {"model cache (CODEGEN_LSP_CACHE)": cache_dir(),
             "user config": Path(platformdirs.user_config_dir("codegen-lsp")),
             "user data": Path(platformdirs.user_data_dir("codegen-lsp")),
             "user log": Path(platformdirs.user_log_dir("codegen-lsp")),
             "embedded models": resource_dir("models"),
             "grammars": resource_dir("grammars")}
    for label, env in (("test models (CODEGEN_LSP_TEST_MODELS)", "CODEGEN_LSP_TEST_MODELS"),
                       ("llama wheels (CODEGEN_LSP_LLAMA_WHEELS)", "CODEGEN_LSP_LLAMA_WHEELS")):
        if os.environ.get(env):
            paths[label] = Path(os.environ[env])
    return {label: {"path": str(path), "exists": path.exists()} for label, path in paths.items()}


# -- child processes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChildRun:
    returncode: int | None  # None: timed out (and killed)
    result: dict | None     # what the child wrote, None when it wrote nothing readable
    stderr_tail: str


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_child(argv: list[str], timeout: float) -> ChildRun:
    """Run argv plus a result-file path as its last argument; llama.cpp may print anything on stdout/stderr."""
    with tempfile.TemporaryDirectory(prefix="codegen-lsp-doctor-") as tmp:
        out = Path(tmp) / "result.json"
        try:
            done = subprocess.run([*argv, str(out)], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, preexec_fn=_no_core_dump,
                                  # ggml's crash handler would attach gdb and bury the assertion in a backtrace.
                                  env={**os.environ, "GGML_NO_BACKTRACE": "1"})
        except subprocess.TimeoutExpired as exc:
            return ChildRun(None, None, _tail(exc.stderr))
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError):
            result = None
        return ChildRun(done.returncode, result if isinstance(result, dict) else None, _tail(done.stderr))


def _tail(data: bytes | str | None, lines: int = 15) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def python_child(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def parse_system_info(text: str) -> dict[str, str]:
    """`CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | ...` → {"SSE3": "1", ...} (every backend's features)."""
    return {name: value for name, value in re.findall(r"([A-Za-z0-9_]+) = ([^|\s]+)", text)}


def llama_build(argv: list[str] | None = None, timeout: float = BUILD_TIMEOUT_S) -> dict:
    """llama-cpp-python's version, system info and GPU offload, as a child process sees them."""
    run = run_child(argv or python_child(_BUILD_CHILD), timeout)
    spec = util.find_spec("llama_cpp")  # finds the package without running it
    report: dict = {"imported": False, "location": str(Path(spec.origin).parent) if spec and spec.origin else None}
    if run.result is not None and run.returncode == 0:
        report.update(run.result)
        if report.get("imported"):
            report["features"] = parse_system_info(report.get("system_info", ""))
        return report
    if run.returncode is None:
        report["error"] = f"importing llama_cpp did not finish within {timeout:.0f} s"
    elif run.returncode == 0:
        report["error"] = "the child wrote no result"
    else:
        report["error"] = f"importing llama_cpp killed the process: {describe_exit(run.returncode)}"
    report["signal"] = signal_name(run.returncode)
    report["stderr_tail"] = run.stderr_tail
    return report


def evaluation_check(model: Path, n_ctx: int, argv: list[str] | None = None, timeout: float = EVAL_TIMEOUT_S) -> dict:
    """Load `model` in a child and generate a few tokens: proves this CPU and OS can run the build.
    `argv` replaces the child's command (its last argument is still the result file)."""
    run = run_child(argv or python_child(_EVAL_CHILD, str(model), str(n_ctx), EVAL_PROMPT), timeout)
    report: dict = {"model": str(model), "ok": False, "exit": run.returncode, "signal": signal_name(run.returncode)}
    if run.returncode is None:
        report["error"] = f"loading and evaluating the model did not finish within {timeout:.0f} s"
    elif run.returncode != 0 or run.result is None:
        report["error"] = describe_exit(run.returncode) if run.returncode != 0 else "the check wrote no result"
    elif not run.result.get("loaded"):
        report["error"] = f"llama.cpp could not load the model ({run.result.get('error')})"
    else:
        report.update(run.result, ok=True)
    if not report["ok"]:
        report["stderr_tail"] = run.stderr_tail
    return report


# -- the model ---------------------------------------------------------------------------------------

def model_report(setting: str | None) -> dict:
    """The GGUF the `model` setting (or the embedded default) resolves to, and its metadata."""
    from .gguf.inspect import ModelFileError, inspect_model_file
    from .models.resolve import ModelNotConfigured, resolve_model

    report: dict = {"setting": setting or "(none: the best model on this machine)"}
    try:
        resolved = resolve_model(setting)
        path = resolved.path
        report["path"] = str(path)
        report["origin"] = resolved.origin
        info = inspect_model_file(path)
    except (ModelNotConfigured, ModelFileError) as exc:
        report["error"] = str(exc)
        return report
    report.update(size_bytes=info.size_bytes, name=info.name, architecture=info.architecture, family=info.family,
                  context_length=info.context_length, prompt_format=info.prompt_format.value)
    return report


# -- the whole report --------------------------------------------------------------------------------

def _finding(problem: str, fix: str) -> dict:
    return {"problem": problem, "fix": fix}


def build_warnings(features: dict[str, str], cpu: dict) -> list[dict]:
    """What about this build can break on this or another machine, though the check may have passed."""
    warnings = []
    amx = sorted(name for name, value in features.items() if name.startswith("AMX") and value != "0")
    if amx:
        warnings.append(_finding(
            f"this llama.cpp build has AMX kernels compiled in ({', '.join(amx)}): on Intel CPUs inside VMs and "
            "containers they can die with SIGILL at the first evaluation (ggml asks for tile permission on the "
            "main thread only)", REBUILD_HINT))
    if cpu.get("flags"):
        missing = [name for name, flag in BUILD_FEATURE_FLAGS.items()
                   if features.get(name, "0") != "0" and not cpu["flags"].get(flag, False)]
        if missing:
            warnings.append(_finding(f"the build uses {', '.join(missing)}, which this CPU does not report "
                                     "(it was built for another machine)", REBUILD_HINT))
    return warnings


def gather(model_setting: str | None = None) -> dict:
    """Everything the doctor reports, as one JSON-ready dict; `problems` empty means all is well."""
    report: dict = {"versions": package_versions(), "platform": platform_info(), "cpu": cpu_info()}
    problems: list[dict] = []
    llama = report["llama"] = llama_build()
    if not llama.get("imported"):
        fix = INSTALL_HINT if report["versions"]["llama-cpp-python"] is None else REBUILD_HINT
        problems.append(_finding(f"llama_cpp cannot be imported: {llama.get('error')}", fix))
    model = report["model"] = model_report(model_setting)
    if "error" in model:
        problems.append(_finding(f"the model is not usable: {model['error']}",
                                 "point --model (the `model` setting) at a .gguf written by `codegen-lsp convert` "
                                 "or `codegen-lsp models pull`, or leave it unset for the embedded default"))
    if llama.get("imported"):
        report["evaluation"] = _evaluate(model, problems)
    report["directories"] = directories()
    report["warnings"] = build_warnings(llama.get("features", {}), report["cpu"])
    report["problems"] = problems
    report["ok"] = not problems
    return report


def _evaluate(model: dict, problems: list[dict]) -> dict:
    """The evaluation check on the resolved model (on the embedded default when that one is unusable). When
    another model fails, the default one is tried too: whether it runs tells a bad file from a bad build."""
    from .models.resolve import default_model_path

    builtin = default_model_path()
    default = model_report(str(builtin)) if builtin is not None else {"error": "no embedded default model"}
    target = default if "error" in model else model
    if "error" in target:
        return {"ok": False, "skipped": "no usable model to evaluate"}
    check = evaluation_check(Path(target["path"]).resolve(), min(128, target["context_length"]))
    if target is not model:
        check["note"] = "on the embedded default model, the chosen one being unusable"
    if check["ok"]:
        return check
    if check["signal"] != "SIGILL" and target is model and "error" not in default and default["path"] != model["path"]:
        check["default_model_ok"] = evaluation_check(Path(default["path"]), min(128, default["context_length"]))["ok"]
    if check.get("default_model_ok"):
        fix = "the model file is at fault (the embedded default model runs here): convert or pull it again"
    else:
        fix = REBUILD_HINT
    problems.append(_finding(f"this machine cannot run {check['model']} with this llama.cpp build: {check['error']}",
                             fix))
    return check


# -- printing ----------------------------------------------------------------------------------------

def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def print_report(report: dict, out: TextIO | None = None) -> None:
    out = out or sys.stdout

    def row(label: str, value: object) -> None:
        print(f"  {label:<18} {value}", file=out)

    versions, plat, cpu, llama = report["versions"], report["platform"], report["cpu"], report["llama"]
    print("codegen-lsp doctor", file=out)
    row("codegen-lsp", versions["codegen-lsp"])
    row("llama-cpp-python", versions["llama-cpp-python"] or "not installed")
    row("Python", f"{plat['python']} ({plat['executable']})")
    row("OS", f"{plat['os']}; {plat['kernel']} {plat['machine']}")
    flags = cpu["flags"]
    present = " ".join(name for name in CPU_FLAGS if flags.get(name)) or "none"
    absent = " ".join(name for name in CPU_FLAGS if not flags.get(name))
    row("CPU", f"{cpu['model']}" + (f"; {present}" + (f" (not: {absent})" if absent else "") if flags else "")
        + ("; under a hypervisor" if cpu.get("hypervisor") else ""))
    others = ", ".join(f"{name} {version}" for name, version in versions.items()
                       if name not in ("codegen-lsp", "llama-cpp-python") and version)
    row("packages", others)

    print("llama.cpp build (in a child process)", file=out)
    if llama.get("imported"):
        row("system info", llama.get("system_info", "").strip())
        row("GPU offload", "yes" if llama.get("gpu_offload") else "no (CPU-only build)")
        row("location", llama.get("location"))
    else:
        row("import", llama.get("error"))
    evaluation = report.get("evaluation")
    if evaluation:
        if evaluation.get("ok"):
            row("evaluation", f"ok: loaded in {evaluation['load_s']:.2f} s, {evaluation['prompt_tokens']} prompt "
                              f"tokens + {evaluation['generated_tokens']} generated in {evaluation['eval_s']:.2f} s "
                              f"({evaluation['threads']} threads)")
        else:
            row("evaluation", evaluation.get("error") or evaluation.get("skipped"))
        if "model" in evaluation:
            row("evaluated model", evaluation["model"] + (f" ({evaluation['note']})" if "note" in evaluation else ""))
        if "default_model_ok" in evaluation:
            row("default model", "runs" if evaluation["default_model_ok"] else "fails too")

    model = report["model"]
    print("model", file=out)
    row("setting", model["setting"])
    if "path" in model:
        row("path", model["path"])
    if "origin" in model:
        row("from", model["origin"])
    if "error" in model:
        row("error", model["error"])
    else:
        row("size", f"{_mib(model['size_bytes'])} ({model['size_bytes']:,} bytes)")
        row("metadata", f"{model['name']}: architecture {model['architecture']}, family {model['family']}, "
                        f"context {model['context_length']}, prompt format {model['prompt_format']}")

    print("directories", file=out)
    for label, entry in report["directories"].items():
        print(f"  {label:<40} {entry['path']}{'' if entry['exists'] else ' (not created yet)'}", file=out)

    for title, findings in (("warnings", report["warnings"]), ("problems", report["problems"])):
        if findings:
            print(title, file=out)
            for finding in findings:
                print(f"  - {finding['problem']}\n    fix: {finding['fix']}", file=out)
    tails = [(name, part.get("stderr_tail")) for name, part in (("import", llama), ("evaluation", evaluation or {}))
             if part.get("stderr_tail")]
    for name, tail in tails:
        print(f"{name} child's last stderr lines:", file=out)
        print("  " + tail.replace("\n", "\n  "), file=out)
    problems = report["problems"]
    print("all checks passed" if not problems else f"{len(problems)} problem{'s' * (len(problems) > 1)} found",
          file=out)


def run_doctor(model: str | None = None, as_json: bool = False, out: TextIO | None = None) -> int:
    report = gather(model)
    if as_json:
        print(json.dumps(report, indent=1), file=out or sys.stdout)
    else:
        print_report(report, out)
    return 0 if report["ok"] else 1
