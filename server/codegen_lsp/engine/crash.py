"""Words for how an engine process ended, shared by the supervisor and `codegen-lsp doctor`."""

from __future__ import annotations

import signal

# ggml's AMX kernels die with SIGILL where the CPU reports AMX but the VM or container does not grant it;
# every llama.cpp build the project makes leaves them out (the Makefile has the same flags).
NO_AMX_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

# What a person can do about a build that this CPU refuses (README "Installing with plain pip").
REBUILD_HINT = ("rebuild llama-cpp-python for this machine: `make llama-wheel` in a checkout, or "
                f"CMAKE_ARGS=\"-DCMAKE_C_FLAGS='{NO_AMX_FLAGS}' -DCMAKE_CXX_FLAGS='{NO_AMX_FLAGS}'\" "
                "pip install --no-cache-dir --force-reinstall llama-cpp-python==0.3.36")


def signal_name(exitcode: int | None) -> str | None:
    """SIGILL for -4 (multiprocessing) or 132 (a shell's 128 + n); None for a normal exit."""
    if exitcode is None:
        return None
    number = -exitcode if exitcode < 0 else exitcode - 128 if exitcode > 128 else None
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(exitcode: int | None) -> str:
    """One sentence a person understands: what killed the engine and, where it helps, what to do."""
    if exitcode is None:
        return "the engine process stopped answering"
    name = signal_name(exitcode)
    if name == "SIGILL":
        return f"the engine died with SIGILL: llama.cpp used a CPU instruction this machine refuses; {REBUILD_HINT}"
    if name == "SIGABRT":
        return "the engine died with SIGABRT: llama.cpp aborted (an assertion failed, often a malformed model file)"
    if name == "SIGSEGV":
        return "the engine died with SIGSEGV: llama.cpp crashed (invalid memory access)"
    if name == "SIGKILL":
        return "the engine was killed (SIGKILL; out of memory, or killed by hand)"
    if name == "SIGBUS":
        return "the engine died with SIGBUS: the model file changed or vanished while mapped"
    if name is not None:
        return f"the engine died with {name}"
    return f"the engine exited with status {exitcode}"
