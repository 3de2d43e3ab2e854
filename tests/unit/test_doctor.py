"""`codegen-lsp doctor`'s parts: parsing /proc/cpuinfo and llama.cpp's system info, the build warnings,
and the child checks with the child's command replaced (a crash, a load error, a hang) so no llama.cpp runs."""

from __future__ import annotations

import io
import resource
import sys

from codegen_lsp import doctor
from codegen_lsp.engine.crash import REBUILD_HINT

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8 hypervisor

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8 hypervisor
"""
SYSTEM_INFO_AMX = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
                   "AVX512_VNNI = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")
SYSTEM_INFO_PORTABLE = SYSTEM_INFO_AMX.replace("AMX_INT8 = 1 | ", "")


def python_snippet(code: str) -> list[str]:
    """A child command for the checks; like the real ones, it gets the result file as its last argument."""
    return [sys.executable, "-c", code]


def test_cpuinfo_names_the_model_and_the_flags_that_matter():
    cpu = doctor.parse_cpuinfo(CPUINFO)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["flags"] == {"avx2": True, "avx512f": True, "avx512_vnni": True, "amx_tile": True, "amx_int8": True,
                            "amx_bf16": True}
    assert cpu["hypervisor"] is True
    amd = doctor.parse_cpuinfo("model name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    assert amd["flags"]["avx2"] and not amd["flags"]["avx512f"] and not amd["flags"]["amx_tile"]
    assert amd["hypervisor"] is False
    assert doctor.parse_cpuinfo("")["flags"] == {}  # not Linux: no flags, no guesses


def test_system_info_parses_every_feature():
    features = doctor.parse_system_info(SYSTEM_INFO_AMX)
    assert features["AVX2"] == "1" and features["AMX_INT8"] == "1" and features["REPACK"] == "1"
    assert "AMX_INT8" not in doctor.parse_system_info(SYSTEM_INFO_PORTABLE)


def test_amx_build_is_warned_about_with_the_rebuild_fix():
    cpu = doctor.parse_cpuinfo(CPUINFO)
    warnings = doctor.build_warnings(doctor.parse_system_info(SYSTEM_INFO_AMX), cpu)
    assert len(warnings) == 1
    assert "AMX_INT8" in warnings[0]["problem"] and "SIGILL" in warnings[0]["problem"]
    assert warnings[0]["fix"] == REBUILD_HINT and "-mno-amx-tile" in REBUILD_HINT
    assert doctor.build_warnings(doctor.parse_system_info(SYSTEM_INFO_PORTABLE), cpu) == []


def test_build_for_another_cpu_is_warned_about():
    cpu = doctor.parse_cpuinfo("model name\t: old\nflags\t\t: fpu sse2 avx avx2\n")
    warnings = doctor.build_warnings(doctor.parse_system_info(SYSTEM_INFO_PORTABLE), cpu)
    assert [w["problem"] for w in warnings] == [
        "the build uses AVX512, AVX512_VNNI, which this CPU does not report (it was built for another machine)"]


def test_evaluation_check_reports_sigill_and_the_rebuild_fix(tmp_path, monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    monkeypatch.chdir(tmp_path)  # where the kernel would write a core file ("core" pattern)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        crash = python_snippet("import os, signal; os.kill(os.getpid(), signal.SIGILL)")
        check = doctor.evaluation_check(tmp_path / "m.gguf", 64, argv=crash, timeout=60)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    assert check["ok"] is False and check["exit"] == -4 and check["signal"] == "SIGILL"
    assert "SIGILL" in check["error"] and REBUILD_HINT in check["error"]
    assert list(tmp_path.iterdir()) == []  # no core dump left in the user's folder


def test_evaluation_check_reports_an_abort_and_a_load_error(tmp_path):
    abort = doctor.evaluation_check(tmp_path / "m.gguf", 64, timeout=60, argv=python_snippet(
        "import os, sys; print('GGML_ASSERT(n_rot <= n_embd_head) failed', file=sys.stderr); os.abort()"))
    assert abort["signal"] == "SIGABRT" and "aborted" in abort["error"]
    assert "GGML_ASSERT(n_rot <= n_embd_head) failed" in abort["stderr_tail"]
    refused = doctor.evaluation_check(tmp_path / "m.gguf", 64, timeout=60, argv=python_snippet(
        "import json, sys; json.dump({'loaded': False, 'error': 'Failed to load model'}, open(sys.argv[-1], 'w'))"))
    assert refused["ok"] is False and refused["exit"] == 0
    assert refused["error"] == "llama.cpp could not load the model (Failed to load model)"


def test_evaluation_check_passes_on_a_result_and_times_out_on_a_hang(tmp_path):
    good = doctor.evaluation_check(tmp_path / "m.gguf", 64, timeout=60, argv=python_snippet(
        "import json, sys; print('llama.cpp chatter'); json.dump({'loaded': True, 'threads': 2, 'load_s': 0.1, "
        "'eval_s': 0.2, 'prompt_tokens': 9, 'generated_tokens': 4}, open(sys.argv[-1], 'w'))"))
    assert good["ok"] is True and good["prompt_tokens"] == 9 and "error" not in good
    hang = doctor.evaluation_check(tmp_path / "m.gguf", 64, timeout=1,
                                   argv=python_snippet("import time; time.sleep(30)"))
    assert hang["ok"] is False and hang["exit"] is None and "did not finish within 1 s" in hang["error"]


def test_build_check_reports_an_import_that_kills_the_child():
    killed = doctor.llama_build(python_snippet("import os, signal; os.kill(os.getpid(), signal.SIGILL)"), timeout=60)
    assert killed["imported"] is False and killed["signal"] == "SIGILL"
    assert "importing llama_cpp killed the process" in killed["error"] and REBUILD_HINT in killed["error"]
    fine = doctor.llama_build(python_snippet(
        "import json, sys; json.dump({'imported': True, 'version': '9.9', 'system_info': %r, 'gpu_offload': False}, "
        "open(sys.argv[-1], 'w'))" % SYSTEM_INFO_AMX), timeout=60)
    assert fine["imported"] is True and fine["version"] == "9.9" and fine["features"]["AMX_INT8"] == "1"


def test_report_prints_problems_with_their_fix_and_the_child_stderr():
    report = {
        "versions": {"codegen-lsp": "0.1.0", "llama-cpp-python": "0.3.36", "gguf": "0.17.1"},
        "platform": {"python": "3.11.7", "executable": "/venv/bin/python", "os": "Debian GNU/Linux 12",
                     "kernel": "Linux 6.18.44", "machine": "x86_64"},
        "cpu": doctor.parse_cpuinfo(CPUINFO),
        "llama": {"imported": True, "version": "0.3.36", "system_info": SYSTEM_INFO_AMX, "gpu_offload": False,
                  "location": "/venv/lib/llama_cpp"},
        "evaluation": {"ok": False, "exit": -4, "signal": "SIGILL", "error": "the engine died with SIGILL",
                       "stderr_tail": "Illegal instruction"},
        "model": {"setting": "(embedded default)", "path": "/m.gguf", "size_bytes": 2**20, "name": "m",
                  "architecture": "phi2", "family": "codegen2", "context_length": 1024,
                  "prompt_format": "codegen2-infill"},
        "directories": {"model cache": {"path": "/cache", "exists": False}},
        "warnings": doctor.build_warnings(doctor.parse_system_info(SYSTEM_INFO_AMX), doctor.parse_cpuinfo(CPUINFO)),
        "problems": [{"problem": "this machine cannot run the model", "fix": REBUILD_HINT}],
        "ok": False,
    }
    out = io.StringIO()
    doctor.print_report(report, out)
    text = out.getvalue()
    for expected in ("llama-cpp-python   0.3.36", "Intel(R) Xeon(R) Platinum 8480+; avx2 avx512f avx512_vnni amx_tile "
                     "amx_int8 amx_bf16; under a hypervisor", "AMX_INT8 = 1", "GPU offload        no",
                     "the engine died with SIGILL", "prompt format codegen2-infill", "/cache (not created yet)",
                     f"fix: {REBUILD_HINT}", "Illegal instruction", "1 problem found"):
        assert expected in text, expected
