"""`codegen-lsp doctor` for real: the installed llama-cpp-python in child processes, the embedded default model."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import codegen_lsp
from codegen_lsp import doctor
from codegen_lsp.engine.crash import REBUILD_HINT
from codegen_lsp.models.resolve import default_model_path

LLAMA_VERSION = metadata.version("llama-cpp-python")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_doctor_reports_the_build_and_passes():
    done = cli("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"llama-cpp-python   {LLAMA_VERSION}" in out
    assert "system info        CPU : " in out and "AVX2 = 1" in out  # the SIMD features compiled in
    assert "GPU offload" in out
    assert "evaluation         ok: loaded in" in out
    assert default_model_path().name in out and "prompt format codegen2-infill" in out
    assert "model cache (CODEGEN_LSP_CACHE)" in out
    assert out.rstrip().endswith("all checks passed")


def test_doctor_json_and_llama_cpp_stays_out_of_the_doctor_process():
    code = ("import sys; from codegen_lsp.cli import main; rc = main(['doctor', '--json']); "
            "print('llama_cpp imported' if 'llama_cpp' in sys.modules else 'llama_cpp not imported', file=sys.stderr); "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip().endswith("llama_cpp not imported")
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["llama"]["imported"] is True and report["llama"]["version"] == LLAMA_VERSION
    assert report["llama"]["features"]["AVX2"] == "1" and isinstance(report["llama"]["gpu_offload"], bool)
    assert report["evaluation"]["ok"] is True and report["evaluation"]["generated_tokens"] >= 1
    assert report["model"]["architecture"] == "phi2" and report["model"]["prompt_format"] == "codegen2-infill"
    assert report["versions"]["codegen-lsp"] == codegen_lsp.__version__
    assert report["platform"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(report["cpu"]["flags"]) == set(doctor.CPU_FLAGS)


def test_doctor_with_a_corrupt_or_missing_model_fails_and_says_why(tmp_path: Path):
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"\x00garbage, not a model\xff" * 64)
    done = cli("doctor", "--model", str(garbage))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the model is not usable: {garbage}: not a GGUF file" in done.stdout
    assert "fix: point --model" in done.stdout
    # The machine check still ran, on the embedded default model.
    assert "evaluation         ok:" in done.stdout and "1 problem found" in done.stdout
    assert f"{default_model_path().name} (on the embedded default model, the chosen one being unusable)" in done.stdout
    missing = cli("doctor", "--model", str(tmp_path / "missing.gguf"), "--json")
    assert missing.returncode == 1
    report = json.loads(missing.stdout)
    assert report["ok"] is False and "model file not found" in report["problems"][0]["problem"]


def test_a_model_that_makes_llama_cpp_abort_is_blamed_not_the_build(tmp_path: Path):
    """A GGUF our inspection accepts, with a rotary dimension larger than a head: ggml asserts, the child dies."""
    from gguf import GGUFReader


    crafted = tmp_path / "rope.gguf"
    shutil.copyfile(default_model_path(), crafted)
    reader = GGUFReader(crafted, "r+")
    field = reader.fields["phi2.rope.dimension_count"]
    field.parts[field.data[0]][0] = 1000
    del reader, field
    done = cli("doctor", "--model", str(crafted))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"this machine cannot run {crafted} with this llama.cpp build: the engine died with SIGABRT" in done.stdout
    assert "GGML_ASSERT(n_dims <= ne0) failed" in done.stdout  # the child's stderr, without gdb's backtrace
    assert "default model      runs" in done.stdout
    assert "fix: the model file is at fault (the embedded default model runs here)" in done.stdout


def test_a_crashing_evaluation_fails_the_doctor_with_sigill_and_the_fix(monkeypatch):
    # The real build check runs; the evaluation child is replaced by one that dies as an AMX build does.
    monkeypatch.setattr(doctor, "_EVAL_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    out = io.StringIO()
    assert doctor.run_doctor(None, out=out) == 1
    text = out.getvalue()
    assert ("evaluation         the engine died with SIGILL: "
            "llama.cpp used a CPU instruction this machine refuses") in text
    assert f"{default_model_path().name} with this llama.cpp build: the engine died with SIGILL" in text
    assert f"fix: {REBUILD_HINT}" in text and text.rstrip().endswith("1 problem found")


def test_llama_cpp_that_cannot_be_imported_fails_the_doctor(monkeypatch):
    # The real build-check code, in a child where `import llama_cpp` raises ImportError.
    monkeypatch.setattr(doctor, "_BUILD_CHILD", "import sys; sys.modules['llama_cpp'] = None\n" + doctor._BUILD_CHILD)
    out = io.StringIO()
    assert doctor.run_doctor(None, as_json=True, out=out) == 1
    report = json.loads(out.getvalue())
    assert report["llama"]["imported"] is False and "evaluation" not in report
    assert [p["problem"] for p in report["problems"]] == [
        "llama_cpp cannot be imported: ModuleNotFoundError: import of llama_cpp halted; None in sys.modules"]
    assert report["problems"][0]["fix"] == REBUILD_HINT  # installed (metadata present) but not importable
