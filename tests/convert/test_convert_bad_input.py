"""Bad input to `codegen-lsp convert`: one clear line naming the file, non-zero exit, no partial output."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def run_convert(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", "convert", *args, "--quiet"],
                          capture_output=True, text=True, timeout=300, **kwargs)


def assert_clean_failure(result: subprocess.CompletedProcess, out: Path, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("codegen-lsp: error: ")
    for needle in needles:
        assert needle in last, last
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if ".partial" in p.name or p.name.startswith(".convert-")]
    assert leftovers == []


@pytest.fixture
def checkpoint(tmp_path, tiny_codegen1) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_codegen1.hf_dir, folder)
    return folder


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_missing_folder(tmp_path):
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(tmp_path / "nope"), str(out)), out, "nope", "not found")


def test_missing_config(checkpoint, tmp_path):
    (checkpoint / "config.json").unlink()
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "config.json", "not found")


def test_config_not_json(checkpoint, tmp_path):
    (checkpoint / "config.json").write_text("{ this is not json")
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "config.json", "not valid JSON")


def test_unknown_model_type(checkpoint, tmp_path):
    edit_config(checkpoint, model_type="gpt_neox")
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "unknown model_type 'gpt_neox'")


def test_shapes_that_do_not_fit_the_config(checkpoint, tmp_path):
    edit_config(checkpoint, n_embd=256)
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "has shape", "config.json implies")


def test_unsupported_dtype(checkpoint, tmp_path):
    from safetensors.numpy import load_file, save_file

    path = checkpoint / "model.safetensors"
    tensors = load_file(str(path))
    tensors["transformer.h.0.mlp.fc_in.weight"] = tensors["transformer.h.0.mlp.fc_in.weight"].astype(np.int8)
    save_file(tensors, str(path))
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "fc_in.weight", "unsupported dtype I8")


def test_truncated_weights(checkpoint, tmp_path):
    path = checkpoint / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "model.safetensors")


def test_missing_weights(checkpoint, tmp_path):
    (checkpoint / "model.safetensors").unlink()
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(checkpoint), str(out)), out, "no weights found")


def test_output_folder_missing(checkpoint, tmp_path):
    out = tmp_path / "no" / "such" / "out.gguf"
    result = run_convert(str(checkpoint), str(out))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not out.exists()


def test_output_location_full(checkpoint, tmp_path):
    """A file-size limit makes writes fail midway like a full disk: clean error, nothing left behind."""
    out = tmp_path / "out.gguf"

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    result = run_convert(str(checkpoint), str(out), preexec_fn=limit_file_size)
    assert_clean_failure(result, out, "out.gguf", "disk full or file-size limit")


def test_codegen2_without_mp_num_asks_for_it(tmp_path, tiny_codegen2):
    folder = tmp_path / "cg2"
    shutil.copytree(tiny_codegen2.hf_dir, folder)
    (folder / "modeling_codegen.py").unlink()
    out = tmp_path / "out.gguf"
    assert_clean_failure(run_convert(str(folder), str(out)), out, "--mp-num")
    ok = run_convert(str(folder), str(out), "--mp-num", "8", "--outtype", "f32")
    assert ok.returncode == 0, ok.stderr
    from gguf import GGUFReader

    ours, reference = GGUFReader(str(out)), GGUFReader(str(tiny_codegen2.gguf_path))
    assert [t.name for t in ours.tensors] == [t.name for t in reference.tensors]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(ours.tensors, reference.tensors))


def test_ctrl_c_midway_leaves_nothing(tmp_path):
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model

    big = build_test_model(TinyModelSpec(n_embd=768, n_head=12, rotary_dim=32, n_layer=8, seed=21))
    out = tmp_path / "out.gguf"
    # SIGINT as a terminal delivers it, even when the suite itself runs in the background (a shell starts
    # background jobs with SIGINT ignored, and the child would inherit that).
    proc = subprocess.Popen([sys.executable, "-m", "codegen_lsp", "convert", str(big.hf_dir), str(out),
                             "--outtype", "q8_0", "--quiet"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(".partial" in p.name or p.name.startswith(".convert-") for p in tmp_path.iterdir()):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "conversion finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_success_writes_one_file_and_reports(checkpoint, tmp_path):
    out = tmp_path / "out.gguf"
    result = run_convert(str(checkpoint), str(out), "--outtype", "q4_k_m", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "out.gguf"]


@pytest.mark.parametrize("taken_by", ["main thread", "another thread"])
def test_ctrl_c_while_the_scratch_folder_is_made_leaves_nothing(tmp_path, monkeypatch, taken_by):
    """The moment the suite caught twice: Ctrl-C right after mkdtemp made the folder, before anyone
    owns it; the signal may reach any thread of the process (the suite has several)."""
    import os
    import tempfile
    import threading

    from codegen_lsp import convert

    made, idle = tempfile.mkdtemp, threading.Event()
    other = threading.Thread(target=idle.wait, daemon=True)
    other.start()

    def mkdtemp_then_ctrl_c(*args, **kwargs):
        folder = made(*args, **kwargs)
        if taken_by == "main thread":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            signal.pthread_kill(other.ident, signal.SIGINT)
            time.sleep(0.05)  # that thread takes it; Python runs the handler here, in the main thread
        return folder

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp_then_ctrl_c)
    # As in a terminal, whatever this suite inherited (a background job starts with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with convert._scratch_folder(tmp_path):
                pass
    finally:
        signal.signal(signal.SIGINT, previous)
        idle.set()
    assert sorted(p.name for p in tmp_path.iterdir()) == []

