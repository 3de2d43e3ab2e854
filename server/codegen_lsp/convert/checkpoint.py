"""Read a local Hugging Face checkpoint folder: config, weights (safetensors first), modeling file.

Tensors are loaded one at a time as float32 numpy arrays so converting a large model needs about
one tensor's worth of extra memory. torch is only needed for pytorch_model.bin and bf16 weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ConversionError

FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}
_TORCH_FLOAT_DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16", "torch.float64": "F64"}


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
        if dtype == "BF16":  # numpy has no bfloat16: go through torch
            torch = _import_torch(path, "bf16 weights")
            with safe_open(str(path), framework="pt") as fh:
                return fh.get_tensor(name).to(torch.float32).numpy()
        with safe_open(str(path), framework="numpy") as fh:
            return np.asarray(fh.get_tensor(name), dtype=np.float32)

    return load


def _index_torch_bin(files: list[Path]) -> dict[str, TensorEntry]:
    torch = _import_torch(files[0], "pytorch_model.bin checkpoints")
    entries: dict[str, TensorEntry] = {}
    for path in files:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # torch raises many types for corrupt pickles
            raise ConversionError(path, f"cannot read PyTorch weights ({type(exc).__name__}: {exc})") from None
        for name, tensor in state.items():
            dtype = _TORCH_FLOAT_DTYPES.get(str(tensor.dtype), str(tensor.dtype))
            entries[name] = TensorEntry(name, tuple(tensor.shape), dtype, _torch_loader(path, name, dtype, tensor))
    return entries


def _torch_loader(path: Path, name: str, dtype: str, tensor: Any) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        _require_float(path, name, dtype)
        return tensor.float().numpy()

    return load


def _require_float(path: Path, name: str, dtype: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise ConversionError(path, f"tensor {name!r} has unsupported dtype {dtype} (expected F32, F16 or BF16)")


def _import_torch(path: Path, why: str) -> Any:
    try:
        import torch
    except ImportError:
        raise ConversionError(path, f"{why} need torch: pip install 'codegen-lsp[convert]'") from None
    return torch


def find_mp_num(source: str | None) -> int | None:
    """The `mp_num = N` a CodeGen modeling file hard-codes (CodeGen2 uses 4 or 8 per size)."""
    if source is None:
        return None
    found = {int(m) for m in re.findall(r"^\s*mp_num\s*=\s*(\d+)\s*$", source, flags=re.MULTILINE)}
    if len(found) == 1:
        return found.pop()
    return None


