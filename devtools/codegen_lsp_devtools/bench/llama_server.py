"""llama.cpp's own `llama-server`, built from the llama.cpp sources inside the llama-cpp-python sdist
of the installed version (so it is the same llama.cpp as the server's), for `bench latency` and the remote
parity tests (tests/e2e/test_remote_parity.py).

Build (once per machine, like the llama-cpp-python wheel: cached in the user cache,
`~/.cache/codegen-lsp/llama-server/`, rebuilt when the binary is missing or was built with other flags,
another llama-cpp-python version or on another CPU):
`pip download --no-deps --no-binary :all: llama-cpp-python==VERSION`, unpack, then
`cmake -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF
-DGGML_NATIVE=ON` plus the AMX-free C/C++ flags and `cmake --build --target llama-server -j2`, under `nice`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from codegen_lsp.engine.crash import NO_AMX_FLAGS

DEFAULT_DIR = Path(platformdirs.user_cache_dir("codegen-lsp")) / "llama-server"


class LlamaServerError(RuntimeError):
    pass


def llama_cpp_python_version() -> str:
    from importlib.metadata import version

    return version("llama_cpp_python")


def binary_path(cache_dir: Path = DEFAULT_DIR) -> Path:
    return cache_dir / "build" / "bin" / "llama-server"


def _run(cmd: list[str], log: Path, what: str) -> None:
    with log.open("w") as fh:
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise LlamaServerError(f"{what} failed (exit {rc}); see {log}:\n" + "\n".join(tail))


def ensure_built(cache_dir: Path = DEFAULT_DIR, jobs: int = 2, echo=print) -> tuple[Path, dict]:
    """The llama-server binary and what is known about its build (version, seconds, flags)."""
    cache_dir = cache_dir.resolve()
    binary, info_file = binary_path(cache_dir), cache_dir / "build-info.json"
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DGGML_NATIVE=ON",
             f"-DCMAKE_C_FLAGS={NO_AMX_FLAGS}", f"-DCMAKE_CXX_FLAGS={NO_AMX_FLAGS}"]  # runs where AMX is refused
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    version, cpu = llama_cpp_python_version(), _cpu()
    if binary.exists() and (info.get("cmake_flags"), info.get("llama_cpp_python"), info.get("cpu")) == \
            (flags, version, cpu):  # GGML_NATIVE: a build for another CPU may not run on this one
        return binary, {**info, "cached": True}
    if not shutil.which("cmake"):
        raise LlamaServerError("cmake is needed to build llama-server")
    cache_dir.mkdir(parents=True, exist_ok=True)
    sdist_dir, src_dir, build_dir = cache_dir / "sdist", cache_dir / "src", cache_dir / "build"
    started = time.perf_counter()
    sdists = sorted(sdist_dir.glob(f"llama_cpp_python-{version}.tar.gz"))
    if not sdists:
        echo(f"downloading the llama-cpp-python {version} sdist...")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              f"llama-cpp-python=={version}", "-d", str(sdist_dir)], cache_dir / "download.log", "pip download")
        sdists = sorted(sdist_dir.glob(f"llama_cpp_python-{version}.tar.gz"))
        if not sdists:
            raise LlamaServerError(f"pip download left no llama_cpp_python-{version}.tar.gz in {sdist_dir}")
    source = src_dir / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").exists():
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(src_dir, filter="data")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    echo(f"building llama-server from {source} (several minutes)...")
    build_started = time.perf_counter()
    _run(nice + ["cmake", "-S", str(source), "-B", str(build_dir), *generator, *flags],
         cache_dir / "configure.log", "cmake configure")
    _run(nice + ["cmake", "--build", str(build_dir), "--target", "llama-server", f"-j{jobs}"],
         cache_dir / "build.log", "cmake build")
    if not binary.exists():
        raise LlamaServerError(f"the build finished without {binary}")
    info = {"llama_cpp_python": version, "cpu": cpu, "source": str(source), "cmake_flags": flags, "jobs": jobs,
            "build_seconds": round(time.perf_counter() - build_started, 1),
            "total_seconds": round(time.perf_counter() - started, 1)}
    info_file.write_text(json.dumps(info, indent=1))
    return binary, {**info, "cached": False}


def _cpu() -> str:
    """This CPU's model and flags (what -march=native compiled for), as the Makefile keys the wheel."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform

        return platform.machine()
    return " | ".join(next((line for line in lines if line.startswith(key)), "") for key in ("model name", "flags"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of a live process, KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class LlamaServer:
    binary: Path
    model: Path
    threads: int
    n_ctx: int
    cache_reuse: int = 256
    n_batch: int = 512
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)  # e.g. its own speculation: --spec-type ngram-simple
    parallel: int = 1  # slots (--parallel); n_ctx is the whole context, shared by them
    port: int = 0
    process: subprocess.Popen | None = None
    command: list[str] = field(default_factory=list)

    def start(self, timeout: float = 300) -> None:
        self.port = _free_port()
        # Same threads, context, batch sizes and attention kernel as llama-cpp-python's defaults
        # (flash attention off, n_batch = n_ubatch = 512), one slot unless asked for more.
        self.command = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
                        "-t", str(self.threads), "-tb", str(self.threads), "-c", str(self.n_ctx),
                        "--parallel", str(self.parallel),
                        "--cache-reuse", str(self.cache_reuse), "-b", str(self.n_batch), "-ub", str(self.n_batch),
                        "-fa", "off", "--no-webui", *self.extra_args]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        # Its shared libraries lie beside it (a build tree copied elsewhere still finds them).
        env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
            p for p in (str(self.binary.parent), os.environ.get("LD_LIBRARY_PATH", "")) if p)}
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LlamaServerError(f"llama-server exited with {self.process.returncode}"
                                       + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LlamaServerError("llama-server did not become healthy in time")

    def completion(self, tokens: list[int], n_predict: int, stop: list[str]) -> dict:
        """POST /completion with the prompt as token ids (exactly the tokens codegen-lsp evaluates)."""
        body = {"prompt": tokens, "n_predict": n_predict, "cache_prompt": True, "temperature": 0.0, "top_k": 1,
                "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0, "stop": stop, "stream": False,
                "return_tokens": False}
        return self.post("/completion", body)

    def get(self, path: str, timeout: float = 10) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return r.read()

    def post(self, path: str, body: dict, timeout: float = 600) -> dict:
        """POST `body` as JSON to `path`; the JSON answer (urllib.error.HTTPError for an error status)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())

    def peak_rss_kib(self) -> int | None:
        return peak_rss_kib(self.process.pid) if self.process else None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
