"""The default model's GPU recipe, run here on CPU at a tiny size, end to end: the same script the GPU
machine runs (corpus → shipped tokenizer → steps → packed fp16 shards), then our unpacking and converter
(→ GGUF), then a suggestion the real server computes with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from codegen_lsp_devtools.training.export import META
from support import REPO_ROOT
from support.lsp import inline, open_doc, start, wait_for_stats

SCRIPT = REPO_ROOT / "devtools" / "scripts" / "train-default-gpu.sh"
TINY = ["--device", "cpu", "--workers", "1", "--layers", "1", "--embd", "64", "--heads", "4", "--rotary-dim", "8",
        "--positions", "128", "--seq-len", "63", "--batch", "4", "--warmup", "1", "--checkpoint-every", "3",
        "--corpus-mb", "1", "--export-shard-mb", "3"]  # 2.1 M fp16 parameters: 2 or more shards


def cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def gpu_script(out: Path, work: Path, *args: str, budget_s: int = 540) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "TRAIN_DIR": str(work), "PYTHON": sys.executable, "BUDGET_S": str(budget_s)}
    return subprocess.run(["bash", str(SCRIPT), *TINY, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    """What travels to the GPU machine: the shipped vocabulary as a tokenizer.json."""
    path = tmp_path_factory.mktemp("device") / "tokenizer.json"
    done = cli("train-default", "--export-tokenizer", str(path))
    assert done.returncode == 0, done.stderr
    return path


def returned_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def gpu_run(tokenizer_json: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(what the script leaves in $OUT, the GGUF converted from it). Module-scoped, so it is set up
    before the LSP client: a failure here never leaves a server without a session to shut down."""
    root = tmp_path_factory.mktemp("gpu-run")
    out = root / "out"
    done = gpu_script(out, root / "work", "--tokenizer-json", str(tokenizer_json), "--steps", "6")
    assert done.returncode == 0, done.stdout + done.stderr
    gguf = root / "tiny.gguf"
    done = cli("train-default", "--from-device", str(out), "--out", str(root / "ckpt"), "--gguf", str(gguf))
    assert done.returncode == 0, done.stderr
    return out, gguf


def test_the_gpu_script_returns_what_the_machine_can_hand_back(gpu_run, tokenizer_json: Path):
    out, gguf = gpu_run
    log = (out / "train.log").read_text()
    assert "finished at step 6" in log and "corpus:" in log, log
    # What a GPU machine may hand back: at most 8 files of at most 16 MiB; here shards of at most 3 MB.
    files = returned_files(out)
    assert len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in files), files
    shards = [f for f in files if f.suffix == ".safetensors"]
    assert len(shards) >= 2 and all(f.stat().st_size <= 3_000_000 for f in shards), shards
    with tarfile.open(out / META) as tar:
        names = set(tar.getnames())
    assert {"config.json", "tokenizer.json", "corpus_manifest.json", "train_state.json"} <= names, names
    ckpt = gguf.parent / "ckpt"
    assert json.loads((ckpt / "train_state.json").read_text())["step"] == 6
    # The shipped vocabulary: the new model tokenizes as the embedded one does.
    shipped = json.loads(tokenizer_json.read_text())["model"]["vocab"]
    assert json.loads((ckpt / "tokenizer.json").read_text())["model"]["vocab"] == shipped


async def test_the_gpu_scripts_model_suggests_through_the_server(gpu_run, client: LanguageClient, tmp_path: Path):
    await start(client, gpu_run[1], tmp_path)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    await inline(client, uri, 1, 4)
    stats = await wait_for_stats(client, lambda s: s.kind == "request" and s.source == "model", timeout=60)
    assert stats.generated_tokens >= 1, stats  # the converted model ran in the server's engine


@pytest.mark.parametrize("fit, ending", [("--fit-schedule", "finished"), ("--no-fit-schedule", "stopped")])
def test_a_run_out_of_time_still_returns_its_last_checkpoint(tokenizer_json: Path, tmp_path: Path, fit, ending):
    """The wall-clock budget ends training long before 100,000 steps: fitted, the schedule finishes in
    time; not fitted, training stops there. Either way what comes back is whole and converts."""
    out = tmp_path / "out"
    done = gpu_script(out, tmp_path / "work", "--tokenizer-json", str(tokenizer_json), "--steps", "100000", fit,
                      budget_s=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ending} at step" in (out / "train.log").read_text()
    done = cli("train-default", "--from-device", str(out), "--out", str(tmp_path / "ckpt"),
               "--gguf", str(tmp_path / "m.gguf"))
    assert done.returncode == 0, done.stderr
    assert 0 < json.loads((tmp_path / "ckpt" / "train_state.json").read_text())["step"] < 100000


def test_a_missing_tokenizer_fails_before_the_corpus_is_built(tmp_path: Path):
    done = gpu_script(tmp_path / "out", tmp_path / "work", "--tokenizer-json", str(tmp_path / "none.json"))
    assert done.returncode != 0 and "none.json: no such tokenizer.json" in done.stdout, done.stdout
    assert "corpus:" not in done.stdout
