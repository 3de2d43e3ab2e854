"""Read a local Hugging Face checkpoint folder: config, weights (safetensors first), modeling file.

Tensors are loaded one at a time as float32 numpy arrays so converting a large model needs about
one tensor's worth of extra memory. No torch: safetensors through the safetensors library (bf16 widened
in numpy), pytorch_model.bin through a restricted unpickler that runs nothing (`torch_zip`).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ConversionError
from .torch_zip import load_tensor, read_state_dict, to_float32

FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}
# safetensors refuses larger headers itself; ours is only read for bf16 offsets.
MAX_SAFETENSORS_HEADER = 100 << 20


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], np.ndarray]


def read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ConversionError(path, "file not found") from None
    except PermissionError:
        raise ConversionError(path, "permission denied") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConversionError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConversionError(path, "expected a JSON object")
    return data


class Checkpoint:
    """A checkpoint folder: `config.json`, weights, tokenizer files, optional remote modeling code."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.exists():
            raise ConversionError(self.folder, "checkpoint folder not found")
        if not self.folder.is_dir():
            raise ConversionError(self.folder, "not a folder (expected a Hugging Face checkpoint folder)")
        self.config = read_json(self.folder / "config.json")
        self._tensors = self._index_tensors()

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def entry(self, name: str) -> TensorEntry:
        try:
            return self._tensors[name]
        except KeyError:
            raise ConversionError(self.folder, f"tensor {name!r} is missing from the weights") from None

    def load(self, name: str) -> np.ndarray:
        """Load one tensor as float32 (planning has already checked its shape with check_shape)."""
        return self.entry(name).load()

    def check_shape(self, name: str, expected_shape: tuple[int, ...]) -> None:
        entry = self.entry(name)
        if tuple(entry.shape) != tuple(expected_shape):
            raise ConversionError(
                self.folder,
                f"tensor {name!r} has shape {tuple(entry.shape)} but config.json implies {tuple(expected_shape)}",
            )

    def modeling_source(self) -> str | None:
        """The checkpoint's own modeling code (CodeGen2 ships one), if any."""
        for path in sorted(self.folder.glob("modeling_*.py")):
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConversionError(path, f"cannot read ({exc})") from None
        return None

    # -- weights -------------------------------------------------------------------------------
    def _index_tensors(self) -> dict[str, TensorEntry]:
        safetensors_files = _weight_files(self.folder, "model.safetensors")
        if safetensors_files:
            return _index_safetensors(safetensors_files)
        bin_files = _weight_files(self.folder, "pytorch_model.bin")
        if bin_files:
            return _index_torch_bin(bin_files)
        raise ConversionError(self.folder, "no weights found (expected model.safetensors or pytorch_model.bin)")


def _weight_files(folder: Path, base: str) -> list[Path]:
    index = folder / f"{base}.index.json"
    if index.exists():
        weight_map = read_json(index).get("weight_map", {})
        files = sorted({folder / name for name in weight_map.values()})
        for path in files:
            if not path.exists():
                raise ConversionError(path, f"listed in {index.name} but missing")
        return files
    single = folder / base
    return [single] if single.exists() else []


def _index_safetensors(files: list[Path]) -> dict[str, TensorEntry]:
    from safetensors import SafetensorError, safe_open

    entries: dict[str, TensorEntry] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as fh:
                for name in fh.keys():
                    piece = fh.get_slice(name)
                    dtype = piece.get_dtype()
                    entries[name] = TensorEntry(name, tuple(piece.get_shape()), dtype,
                                                _safetensors_loader(path, name, dtype))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ConversionError(path, f"cannot read safetensors ({exc})") from None
    return entries


def _safetensors_loader(path: Path, name: str, dtype: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from safetensors import safe_open

        _require_float(path, name, dtype)
        if dtype == "BF16":  # numpy has no bfloat16: the raw bits, widened in numpy
            return _safetensors_bf16(path, name)
        with safe_open(str(path), framework="numpy") as fh:
            return np.asarray(fh.get_tensor(name), dtype=np.float32)

    return load


def _safetensors_bf16(path: Path, name: str) -> np.ndarray:
    """One bf16 tensor as float32. The safetensors library cannot hand bf16 to numpy, so its bytes are
    found from the file's header (8-byte length, then JSON with each tensor's byte offsets)."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        if size > MAX_SAFETENSORS_HEADER:
            raise ConversionError(path, f"safetensors header of {size} bytes is too large")
        header = json.loads(fh.read(size))
        info = header[name]
        begin, end = (int(v) for v in info["data_offsets"])
        shape = tuple(int(v) for v in info["shape"])
        if end - begin != 2 * int(np.prod(shape)):
            raise ConversionError(path, f"tensor {name!r}: its bytes do not match its shape {shape}")
        fh.seek(8 + size + begin)
        raw = fh.read(end - begin)
    if len(raw) != end - begin:
        raise ConversionError(path, f"tensor {name!r} is cut short (truncated file)")
    return to_float32(np.frombuffer(raw, dtype="<u2").reshape(shape), "BF16")


def _index_torch_bin(files: list[Path]) -> dict[str, TensorEntry]:
    entries: dict[str, TensorEntry] = {}
    for path in files:
        for name, tensor in read_state_dict(path).items():
            entries[name] = TensorEntry(name, tensor.shape, tensor.dtype, _torch_loader(path, name, tensor))
    return entries


def _torch_loader(path: Path, name: str, tensor) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        _require_float(path, name, tensor.dtype)
        return load_tensor(path, tensor)

    return load


def _require_float(path: Path, name: str, dtype: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise ConversionError(path, f"tensor {name!r} has unsupported dtype {dtype} (expected F32, F16 or BF16)")


def find_mp_num(source: str | None) -> int | None:
    """The `mp_num = N` a CodeGen modeling file hard-codes (CodeGen2 uses 4 or 8 per size)."""
    if source is None:
        return None
    found = {int(m) for m in re.findall(r"^\s*mp_num\s*=\s*(\d+)\s*$", source, flags=re.MULTILINE)}
    if len(found) == 1:
        return found.pop()
    return None


