"""llama-cpp-python's own OpenAI-compatible server, `python -m llama_cpp.server`, on a loopback port: for the
remote-backend tests (tests/e2e/test_remote_backend.py, test_remote_parity.py) and `bench remote-healing`.
llama.cpp's C++ llama-server is bench/llama_server.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InferenceServer:
    """`python -m llama_cpp.server` for `model` on a free loopback port (its own process group)."""

    def __init__(self, model: Path, log_path: Path, n_ctx: int = 512) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", "2"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self, timeout: float = 60) -> "InferenceServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=1) as response:
                    json.load(response)
            except OSError:
                time.sleep(0.1)
                continue
            # One tiny completion: the first one is slow (allocations), and the tests time theirs.
            warm = json.dumps({"prompt": "def", "max_tokens": 2, "temperature": 0}).encode()
            request = urllib.request.Request(f"{self.url}/v1/completions", data=warm,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                json.load(response)
            return self
        raise RuntimeError(f"llama_cpp.server not up after {timeout}s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def completions_served(self) -> int:
        return self.log().count("POST /v1/completions")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._log.close()
