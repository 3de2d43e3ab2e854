"""Run one untrusted Python program the way the MTPB paper's harness does, in its own locked-down process.

The parent (`run_program`) starts `python -I <this file>` in a new session with a fresh temporary working
directory, a minimal environment and stdin from /dev/null, drains its output (keeping only a tail) and
kills the whole process group at the wall-clock deadline. The child (`_runner_main`, stdlib only) leaves
the network namespace, sets resource limits, disables process creation, signalling, sockets and
destructive file operations (the "reliability guard" idea of OpenAI's human-eval), runs the program and
sends the captured value back over a private pipe.

Capture follows the paper: `print` is overridden in the program's globals (library prints do not count)
and the first positional argument of the last call is the program's value; a last statement that is not
a print call has its value wrapped in `print(...)`. As in the paper, the value is taken even when the
program fails or times out after printing it.

This is containment for model-written benchmark programs, not a security boundary: code using ctypes
can get around the guard; the limits, the network namespace and the process-group kill still hold.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STDOUT_TAIL = 64 * 1024
_STDERR_TAIL = 64 * 1024
_MAX_RESULT = 16 * 1024 * 1024  # bytes of JSON the parent accepts from the runner
_MAX_TEXT = 256 * 1024  # characters of str(value) kept for string comparisons
_FILE_SIZE_LIMIT = 64 * 1024 * 1024
_STARTUP_GRACE_S = 3.0  # interpreter start + numpy import + reporting, on top of the program's own limit
_DETAIL_CHARS = 400


@dataclass(frozen=True)
class Execution:
    status: str  # "ok" | "error" | "timeout" | "killed" | "no-output"
    value: object  # the captured value converted to plain JSON types; None when nothing was captured
    detail: str  # a short reason: the exception line, the signal, the last stderr lines
    seconds: float
    has_value: bool = False  # tells a captured None from no capture at all
    text: str | None = None  # str() of the value as the paper's harness would see it (for str/bool outputs)
    stdout_tail: str = ""


# ----------------------------------------------------------------------------------------------- parent


def _minimal_env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(tmp),
        "TMPDIR": str(tmp / "work"),
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(data: bytearray, limit: int) -> str:
    return bytes(data[-limit:]).decode("utf-8", errors="replace")


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[-_DETAIL_CHARS:]


def _collect(proc: subprocess.Popen, result_fd: int, deadline: float) -> tuple[bytearray, bytearray, bytearray, bool]:
    """Drain stdout, stderr and the result pipe until all close or the deadline passes."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), result_fd: bytearray()}
    caps = {proc.stdout.fileno(): _STDOUT_TAIL, proc.stderr.fileno(): _STDERR_TAIL}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return buffers[proc.stdout.fileno()], buffers[proc.stderr.fileno()], buffers[result_fd], True
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk
                if key.fd in caps and len(buffer) > 2 * caps[key.fd]:
                    del buffer[: len(buffer) - caps[key.fd]]  # keep a tail: a print flood costs no memory
                elif key.fd == result_fd and len(buffer) > _MAX_RESULT:
                    del buffer[_MAX_RESULT:]
    return buffers[proc.stdout.fileno()], buffers[proc.stderr.fileno()], buffers[result_fd], False


def run_program(program: str, timeout_s: float = 20.0, memory_mb: int = 2048) -> Execution:
    """Execute `program` in a fresh sandboxed process and return what it printed last (see module doc)."""
    runner = Path(__file__)  # run with -I: as a script it imports nothing of ours
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mtpb-run-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "work"
        work.mkdir()
        program_path = tmp / "program.py"  # outside the program's working directory
        program_path.write_text(program, encoding="utf-8")
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(runner), str(program_path), str(write_fd),
                 repr(float(timeout_s)), str(int(memory_mb))],
                cwd=work, env=_minimal_env(tmp), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            deadline = start + timeout_s + _STARTUP_GRACE_S
            out, err, result, timed_out = _collect(proc, read_fd, deadline)
            if not timed_out:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
            if timed_out:
                _kill_group(proc.pid)
            proc.wait()
            _kill_group(proc.pid)  # anything the program left behind in its session
        finally:
            os.close(read_fd)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    return _execution(proc.returncode, out, err, result, timed_out, timeout_s, time.monotonic() - start)


def _execution(returncode: int, out: bytearray, err: bytearray, result: bytearray, timed_out: bool,
               timeout_s: float, seconds: float) -> Execution:
    stdout_tail = _tail(out, _STDOUT_TAIL)
    report: dict[str, Any] | None = None
    if result:
        try:
            report = json.loads(bytes(result).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            report = None
    if isinstance(report, dict) and report.get("status") in {"ok", "error", "timeout", "no-output"}:
        return Execution(status=report["status"], value=report.get("value"), detail=str(report.get("detail", "")),
                         seconds=seconds, has_value=bool(report.get("has_value")), text=report.get("text"),
                         stdout_tail=stdout_tail)
    stderr_text = _tail(err, _STDERR_TAIL)
    if timed_out:
        status, detail = "timeout", f"still running after {timeout_s:g} s; process group killed"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        status, detail = "killed", f"killed by {name}"
        if stderr_text.strip():
            detail += f": {_last_lines(stderr_text)}"
    else:
        status = "error"
        detail = _last_lines(stderr_text) or f"the process exited with code {returncode} without reporting a result"
    return Execution(status=status, value=None, detail=detail, seconds=seconds, stdout_tail=stdout_tail)


# ------------------------------------------------------------------------------------------------ child
# Everything below runs inside the sandboxed process (stdlib only, plus numpy when it is installed).


class _ProgramTimeout(BaseException):
    """Raised by SIGALRM inside the program; a BaseException so `except Exception` does not swallow it."""


_NO_ARGS = object()  # the last print() call had no positional argument


def _isolate_network() -> None:
    """Move into an empty network namespace (only a loopback that is down) when the kernel lets us."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare(0x40000000)  # CLONE_NEWNET; failure (no privilege) leaves the socket guard alone
    except (OSError, AttributeError):
        pass


def _user_task_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def _limit_resources(timeout_s: float, memory_mb: int) -> None:
    import resource

    def cap(limit: int, value: int) -> None:
        soft, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    cap(resource.RLIMIT_FSIZE, _FILE_SIZE_LIMIT)
    cap(resource.RLIMIT_CORE, 0)
    cpu = math.ceil(timeout_s) + 2
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second later
    except (ValueError, OSError):
        pass
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC (hence the fork guard below); it counts all the user's tasks
        try:
            cap(resource.RLIMIT_NPROC, _user_task_count() + 8)
        except OSError:
            pass


def _blocked(name: str):
    def blocked(*args: object, **kwargs: object):
        raise PermissionError(f"{name} is disabled in the MTPB sandbox")

    blocked.__name__ = name.rsplit(".", 1)[-1]
    return blocked


_OS_BLOCKED = (
    "system", "popen", "fork", "forkpty", "vfork", "kill", "killpg", "_exit", "abort",
    "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
    "posix_spawn", "posix_spawnp", "pidfd_open",
    "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "truncate",
    "chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "chroot", "chflags", "lchflags",
    "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
    "setsid", "setpgid", "setpgrp", "unshare", "setns", "mount",
)


def _install_guard() -> None:
    """Disable what a benchmark program never needs and could harm the machine or the run with."""
    import _posixsubprocess
    import _socket
    import builtins
    import multiprocessing.process
    import posix
    import resource
    import shutil
    import socket

    for module in (os, posix):
        for name in _OS_BLOCKED:
            if hasattr(module, name):
                setattr(module, name, _blocked(f"os.{name}"))
    for name in ("setrlimit", "prlimit"):
        if hasattr(resource, name):
            setattr(resource, name, _blocked(f"resource.{name}"))
    for name in ("rmtree", "move", "chown"):
        setattr(shutil, name, _blocked(f"shutil.{name}"))
    subprocess.Popen.__init__ = _blocked("subprocess.Popen")  # keeps isinstance checks working
    _posixsubprocess.fork_exec = _blocked("subprocess")
    multiprocessing.process.BaseProcess.start = _blocked("multiprocessing")

    class NoNetworkSocket(socket.socket):
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise PermissionError("network access is disabled in the MTPB sandbox")

    socket.socket = socket.SocketType = NoNetworkSocket  # type: ignore[misc]
    _socket.socket = _socket.SocketType = NoNetworkSocket  # type: ignore[attr-defined]
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo",
                 "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        if hasattr(socket, name):
            setattr(socket, name, _blocked(f"socket.{name}"))
    builtins.help = _blocked("help")  # pydoc would start a pager


def _wrap_last_statement(tree: Any) -> None:
    """The paper's rewrite: a last statement that is not a `print...(...)` call gets its value printed.

    Like the paper's harness this also applies to a final assignment (`x = f()` becomes `x = print(f())`).
    """
    import ast

    if not tree.body:
        return
    last = tree.body[-1]
    value = getattr(last, "value", None)
    if not isinstance(value, ast.expr):
        return
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id.startswith("print"):
        return
    last.value = ast.copy_location(ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[value], keywords=[]),
                                   value)
    ast.fix_missing_locations(tree)


def _is_numpy_scalar(value: object) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.generic)


def to_plain(value: object, depth: int = 0) -> Any:
    """A value as JSON types: numpy/pandas to Python, tuples and sets to lists, dict keys to str.

    Used in the sandbox on the captured value, and by the scorer on values it is handed directly.
    """
    if depth > 64:
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _is_numpy_scalar(value):
        return to_plain(value.item(), depth + 1)  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple, set, frozenset, range)) or type(value).__name__ in {
            "dict_keys", "dict_values", "dict_items", "deque"}:
        return [to_plain(item, depth + 1) for item in value]  # type: ignore[union-attr]
    if isinstance(value, dict):
        return {_key(key): to_plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, bytes):
        return str(value)
    module = type(value).__module__ or ""
    if module.startswith(("numpy", "pandas")):
        if hasattr(value, "tolist"):  # ndarray, Series, Index, Categorical
            return to_plain(value.tolist(), depth + 1)
        if type(value).__name__ == "DataFrame":
            return to_plain(value.to_numpy().tolist(), depth + 1)
    return str(value)


def _key(key: object) -> str:
    if _is_numpy_scalar(key):
        key = key.item()  # type: ignore[attr-defined]
    return key if isinstance(key, str) else str(key)


def paper_text(value: object) -> str:
    """str() of the value after the paper's own normalisation (numpy scalars and arrays to Python)."""
    numpy = sys.modules.get("numpy")
    if type(value).__name__ == "Series" and hasattr(value, "to_numpy"):
        value = value.to_numpy()  # type: ignore[attr-defined]
    elif isinstance(value, list) and value and isinstance(value[0], tuple):
        value = [list(item) for item in value]
    elif _is_numpy_scalar(value):
        value = value.item()  # type: ignore[attr-defined]
    elif numpy is not None and isinstance(value, numpy.ndarray):
        value = value.tolist()
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "...[truncated]"


def _error_detail(exc: BaseException, source_lines: list[str]) -> str:
    import traceback

    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "program.py":
            line = frame.lineno
    message = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if line and 0 < line <= len(source_lines):
        message += f" (line {line}: {source_lines[line - 1].strip()})"
    return message[:_DETAIL_CHARS]


def _execute(source: str, timeout_s: float) -> dict[str, Any]:
    import ast
    import builtins

    captured: list[object] = []

    def capture_print(*args: object, **kwargs: object) -> None:
        captured[:] = [args[0] if args else _NO_ARGS]
        builtins.print(*args, **kwargs)

    try:
        tree = ast.parse(source, filename="program.py")
        _wrap_last_statement(tree)
        code = compile(tree, "program.py", "exec")
    except (SyntaxError, ValueError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return {"status": "error", "has_value": False, "detail": f"{type(exc).__name__}: {msg}{where}"}

    def on_alarm(signum: int, frame: object) -> None:
        raise _ProgramTimeout()

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "print": capture_print}
    status, detail = "ok", ""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        try:
            exec(code, namespace)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _ProgramTimeout:
        status, detail = "timeout", f"still running after {timeout_s:g} s"
    except SystemExit as exc:
        if exc.code not in (None, 0):
            status, detail = "error", f"SystemExit: {exc.code}"
    except BaseException as exc:  # noqa: BLE001 - anything the program raises is its failure
        status, detail = "error", _error_detail(exc, source.splitlines())

    if not captured or captured[0] is _NO_ARGS:
        if status == "ok":
            status = "no-output"
            detail = "the last print() had no argument" if captured else "the program printed nothing"
        return {"status": status, "has_value": False, "detail": detail}
    value = captured[0]
    try:
        plain, text = to_plain(value), paper_text(value)
    except BaseException as exc:  # noqa: BLE001 - a hostile __str__ or tolist
        return {"status": "error", "has_value": False, "detail": f"cannot convert the printed value: {exc!r}"[:400]}
    return {"status": status, "has_value": True, "value": plain, "text": text, "detail": detail}


def _runner_main(argv: list[str]) -> None:
    program_path, result_fd, timeout_s, memory_mb = argv[0], int(argv[1]), float(argv[2]), int(argv[3])
    write, real_exit = os.write, os._exit  # kept before the guard replaces them
    source = Path(program_path).read_text(encoding="utf-8", errors="replace")
    _isolate_network()
    _limit_resources(timeout_s, memory_mb)
    try:
        import numpy  # every MTPB program starts with it; loaded before the guard

        # The paper ran numpy 1.x: print scalars as "2", not numpy 2's "np.int64(2)", so that strings the
        # program builds from numpy values (and str() of a printed list) read as they did there.
        numpy.set_printoptions(legacy="1.25")
    except (ImportError, ValueError, TypeError):
        pass
    _install_guard()
    try:
        result = _execute(source, timeout_s)
        payload = json.dumps(result, allow_nan=True).encode("utf-8")
    except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError while converting
        payload = json.dumps({"status": "error", "has_value": False, "detail": f"runner: {exc!r}"[:400]}).encode()
    if len(payload) > _MAX_RESULT:
        payload = json.dumps({"status": "error", "has_value": False,
                              "detail": f"the printed value is too large to compare ({len(payload)} bytes)"}).encode()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have closed or replaced them
            pass
    view = memoryview(payload)
    while view:
        view = view[write(result_fd, view):]
    real_exit(0)  # skip the program's atexit hooks and non-daemon threads


if __name__ == "__main__":
    _runner_main(sys.argv[1:])
