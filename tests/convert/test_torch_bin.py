"""pytorch_model.bin read without torch and without running its pickle (convert/torch_zip.py).

torch is used here only to write the checkpoints a user would download (as transformers' save does) and
as the reference for bf16; the conversion under test runs in a child process that cannot import torch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

# The conversion runs in a Python where `import torch` fails: what a base install has.
NO_TORCH = "import sys; sys.modules['torch'] = None; from codegen_lsp.cli import main; sys.exit(main())"


def convert(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, "convert", str(src), str(out), "--quiet", *extra],
                          capture_output=True, text=True, timeout=300)


def assert_clean_failure(result: subprocess.CompletedProcess, out: Path, *needles: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codegen-lsp: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if ".partial" in p.name or p.name.startswith(".convert-")] == []
    return lines[0]


def tensors_of(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def as_bin(folder: Path, tensors: dict, name: str = "pytorch_model.bin", **save) -> None:
    """The checkpoint folder with its weights as pytorch_model.bin (what torch.save writes), no safetensors."""
    import torch

    state = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    torch.save(state, folder / name, **save)
    (folder / "model.safetensors").unlink(missing_ok=True)


def copy_of(source: Path, tmp_path: Path, kind: str) -> Path:
    """A copy of the checkpoint folder under the same folder name (the GGUF's general.name comes from it)."""
    folder = tmp_path / kind / "ckpt"
    shutil.copytree(source, folder)
    return folder


@pytest.fixture
def checkpoint(tmp_path, tiny_codegen1) -> Path:
    return copy_of(tiny_codegen1.hf_dir, tmp_path, "safetensors")


@pytest.fixture
def bin_checkpoint(tmp_path, tiny_codegen1) -> Path:
    folder = copy_of(tiny_codegen1.hf_dir, tmp_path, "bin")
    as_bin(folder, tensors_of(folder))
    return folder


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_bin_and_safetensors_give_the_same_gguf_bit_for_bit(checkpoint, bin_checkpoint, tmp_path, outtype):
    from_st, from_bin = tmp_path / "st.gguf", tmp_path / "bin.gguf"
    assert convert(checkpoint, from_st, "--outtype", outtype).returncode == 0
    done = convert(bin_checkpoint, from_bin, "--outtype", outtype)
    assert done.returncode == 0, done.stderr
    assert from_st.read_bytes() == from_bin.read_bytes()


def test_sharded_bin_index_converts_like_one_file(checkpoint, tmp_path):
    tensors = tensors_of(checkpoint)
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    sharded = copy_of(checkpoint, tmp_path, "sharded")
    for shard, keys in shards.items():
        as_bin(sharded, {k: tensors[k] for k in keys}, shard)
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}))
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    assert convert(checkpoint, a, "--outtype", "f32").returncode == 0
    done = convert(sharded, b, "--outtype", "f32")
    assert done.returncode == 0, done.stderr
    assert a.read_bytes() == b.read_bytes()


def test_bf16_is_widened_exactly_as_torch_does(checkpoint, tmp_path):
    """bf16 weights (CodeGen 2.5 ships them) from .bin and from safetensors: the same GGUF, and each tensor
    equal to torch's own bf16 → float32."""
    import torch
    from gguf import GGUFReader
    from safetensors.torch import save_file

    bf16 = {k: torch.from_numpy(v.copy()).to(torch.bfloat16) for k, v in tensors_of(checkpoint).items()}
    st_folder, bin_folder = copy_of(checkpoint, tmp_path, "bf16-st"), copy_of(checkpoint, tmp_path, "bf16-bin")
    save_file(bf16, str(st_folder / "model.safetensors"))
    as_bin(bin_folder, bf16)
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    for folder, out in ((st_folder, a), (bin_folder, b)):
        done = convert(folder, out, "--outtype", "f32")
        assert done.returncode == 0, done.stderr
    assert a.read_bytes() == b.read_bytes()
    # The widening itself, against torch, on values that exercise every exponent and NaN/inf.
    from codegen_lsp.convert.torch_zip import to_float32

    bits = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    ours = to_float32(bits.view(torch.int16).numpy().view(np.uint16), "BF16")
    assert np.array_equal(ours.view(np.uint32), bits.float().numpy().view(np.uint32))
    # And the GGUF holds torch's values (the token embedding is stored as f32 in an f32 GGUF).
    name = "transformer.wte.weight"
    stored = next(t for t in GGUFReader(str(b)).tensors if t.name == "token_embd.weight")
    assert np.array_equal(np.asarray(stored.data).reshape(bf16[name].shape), bf16[name].float().numpy())


class Evil:
    """What a hostile checkpoint puts in its pickle: a call that runs when pickle.load meets it."""

    def __init__(self, call, *args) -> None:
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("how", ["os.system", "builtins.eval", "builtins.exec"])
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(checkpoint, tmp_path, how):
    import builtins
    import os

    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    payload = {"os.system": Evil(os.system, command),
               "builtins.eval": Evil(builtins.eval, f"__import__('os').system({command!r})"),
               "builtins.exec": Evil(builtins.exec, f"import os; os.system({command!r})")}[how]
    tensors = dict(tensors_of(checkpoint))
    import torch

    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    state["transformer.h.0.attn.evil"] = payload
    torch.save(state, checkpoint / "pytorch_model.bin")
    (checkpoint / "model.safetensors").unlink()
    expected = {"os.system": f"{os.system.__module__}.system", "builtins.eval": "builtins.eval",
                "builtins.exec": "builtins.exec"}[how]
    out = tmp_path / "out.gguf"
    line = assert_clean_failure(convert(checkpoint, out), out, "refused", expected, "pytorch_model.bin")
    assert "nothing of it was run" in line
    assert not marker.exists(), "the checkpoint's command ran"
    # The same file through torch's unrestricted load runs it: the test's payload is real.
    torch.load(checkpoint / "pytorch_model.bin", weights_only=False)
    assert marker.exists()


def test_legacy_non_zip_format_is_refused(checkpoint, tmp_path):
    as_bin(checkpoint, tensors_of(checkpoint), _use_new_zipfile_serialization=False)
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(checkpoint, out), out, "legacy", "pytorch_model.bin")


def rewrite_zip(path: Path, change) -> None:
    """Rewrite the archive with `change(name, data)` → new data, or None to drop the member."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            data = change(info.filename, data)
            if data is not None:
                archive.writestr(info, data)


def test_truncated_zip(bin_checkpoint, tmp_path):
    weights = bin_checkpoint / "pytorch_model.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(bin_checkpoint, out), out, "pytorch_model.bin")


def test_unknown_pickle_opcode(bin_checkpoint, tmp_path):
    rewrite_zip(bin_checkpoint / "pytorch_model.bin",
                lambda name, data: b"\x80\x02\xfe" + data[3:] if name.endswith("data.pkl") else data)
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(bin_checkpoint, out), out, "data.pkl", "pytorch_model.bin")


def test_missing_storage_record(bin_checkpoint, tmp_path):
    rewrite_zip(bin_checkpoint / "pytorch_model.bin", lambda name, data: None if name.endswith("/data/0") else data)
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(bin_checkpoint, out), out, "storage record", "missing")


def test_storage_record_shorter_than_its_tensor(bin_checkpoint, tmp_path):
    rewrite_zip(bin_checkpoint / "pytorch_model.bin",
                lambda name, data: data[: len(data) // 2] if name.endswith("/data/0") else data)
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(bin_checkpoint, out), out, "storage record", "shorter")


def test_a_weight_that_is_not_float_is_refused(checkpoint, tmp_path):
    tensors = dict(tensors_of(checkpoint))
    tensors["transformer.wte.weight"] = tensors["transformer.wte.weight"].astype(np.int64)
    as_bin(checkpoint, tensors)
    out = tmp_path / "out.gguf"
    assert_clean_failure(convert(checkpoint, out), out, "transformer.wte.weight", "unsupported dtype I64")


def test_a_strided_view_is_read_as_torch_reads_it(tmp_path):
    """Tensors saved as views (transposed, offset into a shared storage) come back as torch has them."""
    import torch

    from codegen_lsp.convert.torch_zip import load_tensor, read_state_dict

    base = torch.arange(60, dtype=torch.float16).reshape(6, 10)
    state = {"t": base.t(), "slice": base[2:5, 3:7], "whole": base}
    torch.save(state, tmp_path / "w.bin")
    refs = read_state_dict(tmp_path / "w.bin")
    for name, tensor in state.items():
        assert np.array_equal(load_tensor(tmp_path / "w.bin", refs[name]), tensor.float().numpy()), name
