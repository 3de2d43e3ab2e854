"""The artifacts the packaging tests share, built once per session: the sdist and the wheel built from it
(`built`, what `make dist` makes), and that wheel installed into a fresh venv (`installed`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from support import REPO_ROOT

INSTALL_TIMEOUT_S = 7 * 60  # a compiled llama-cpp-python takes about that long on 2 cores; ours is a copy
LLAMA_HINT = "run `make llama-wheel` (or `make test`) to build the portable llama-cpp-python wheel"


def llama_wheel() -> Path:
    """The portable llama-cpp-python wheel: $CODEGEN_LSP_LLAMA_WHEELS (set by the Makefile), else the newest
    one in the Makefile's default wheel cache ($XDG_CACHE_HOME or ~/.cache, codegen-lsp/wheels/llama-*/)."""
    folder = os.environ.get("CODEGEN_LSP_LLAMA_WHEELS")
    if folder:
        found = sorted(Path(folder).glob("llama_cpp_python-*.whl"))
        where = f"CODEGEN_LSP_LLAMA_WHEELS={folder}"
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codegen-lsp" / "wheels"
        found = sorted(cache.glob("llama-*/llama_cpp_python-*.whl"), key=lambda p: p.stat().st_mtime)
        where = f"{cache}/llama-*/"
    if not found:
        pytest.fail(f"no llama_cpp_python-*.whl in {where}: {LLAMA_HINT}")
    return found[-1]


def source_copy(target: Path) -> Path:
    """The files git knows (tracked, or new and not ignored) copied to `target`: a build that cannot pick
    up stale build/ or egg-info folders, caches or virtual environments. Links stay links."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, copy = REPO_ROOT / name, target / name
        if not source.is_symlink() and not source.is_file():
            continue  # deleted in the working tree, or a submodule
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)
    return target


def run(command: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass(frozen=True)
class Built:
    root: Path
    source: Path  # the copy of the checkout they were built from
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Iterator[Built]:
    """`python -m build` on a copy of the checkout: the sdist, then the wheel from that sdist."""
    root = tmp_path_factory.mktemp("user-install")
    source = source_copy(root / "src")
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, source], 300)
    wheels, sdists = sorted(dist.glob("codegen_lsp-*.whl")), sorted(dist.glob("codegen_lsp-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
    yield Built(root, source, wheels[0], sdists[0])
    shutil.rmtree(root, ignore_errors=True)  # a few hundred MB once installed


class Installed:
    def __init__(self, root: Path, wheel: Path, sdist: Path, source: Path, llama: Path) -> None:
        self.root, self.wheel, self.sdist, self.source, self.llama = root, wheel, sdist, source, llama
        self.venv = root / "venv"
        self.bin = self.venv / "bin"
        self.work = root / "work"  # the working directory of every installed command
        self.work.mkdir()
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV") and not k.startswith("CODEGEN_LSP_")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["CODEGEN_LSP_CACHE"] = str(root / "user-cache")  # not the person's own cache
        self.env = env

    def cli(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "codegen-lsp"), *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.work, env={**self.env, **(env or {})})

    def python(self, code: str) -> str:
        return run([self.bin / "python", "-c", code], 60, cwd=self.work, env=self.env).stdout


@pytest.fixture(scope="session")
def installed(built: Built) -> Iterator[Installed]:
    """A fresh venv with the built wheel and the portable llama-cpp-python wheel installed."""
    llama = llama_wheel()
    target = Installed(built.root, built.wheel, built.sdist, built.source, llama)
    run([sys.executable, "-m", "venv", target.venv], 120)
    try:
        run([target.bin / "python", "-m", "pip", "install", "--only-binary", "llama-cpp-python",
             "--find-links", llama.parent, target.wheel, llama], INSTALL_TIMEOUT_S, cwd=target.work, env=target.env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"installing the wheel took over {INSTALL_TIMEOUT_S} s: was llama-cpp-python compiled? {LLAMA_HINT}")
    yield target
