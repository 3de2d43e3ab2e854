"""Read `pytorch_model.bin` without torch and without running the pickle's code.

Since torch 1.6 such a file is a zip: `<root>/data.pkl` (a pickle of the state dict) and one record per
storage (`<root>/data/<key>`, raw little-endian bytes). The pickle names the functions that rebuild
tensors; a hostile one can name `os.system` instead, and `pickle.load` would call it. Here the pickle is
read by an unpickler that resolves only the globals a state dict needs, onto our own harmless
stand-ins, and refuses any other global by name before anything of it runs. Tensors come out as numpy
views of the storage records, read one at a time when the converter asks (never all held at once).
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConversionError

# data.pkl of a state dict is a few hundred kB even for 16B-parameter models; anything bigger is not one.
MAX_PICKLE_BYTES = 64 << 20

# torch's storage classes → (our dtype name, numpy dtype of the raw bytes). bf16 is read as uint16 and
# widened by `to_float32`, as numpy has no bfloat16.
STORAGE_DTYPES: dict[str, tuple[str, str]] = {
    "FloatStorage": ("F32", "<f4"),
    "HalfStorage": ("F16", "<f2"),
    "BFloat16Storage": ("BF16", "<u2"),
    "DoubleStorage": ("F64", "<f8"),
    "LongStorage": ("I64", "<i8"),
    "IntStorage": ("I32", "<i4"),
    "ShortStorage": ("I16", "<i2"),
    "CharStorage": ("I8", "i1"),
    "ByteStorage": ("U8", "u1"),
    "BoolStorage": ("BOOL", "?"),
}


class UnsafeCheckpoint(ConversionError):
    """The pickle names something a state dict never needs: refused before it could run."""


@dataclass(frozen=True)
class StorageType:
    name: str  # e.g. "FloatStorage"


@dataclass(frozen=True)
class StorageRef:
    """A storage record in the zip (not read yet)."""

    record: str
    dtype: str
    np_dtype: str
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """What `_rebuild_tensor_v2` would have made: a strided view of a storage, read on `load`."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return self.storage.dtype


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage record")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(strides):
        raise pickle.UnpicklingError(f"tensor size {shape} and stride {strides} differ in length")
    offset = _ints((storage_offset,), "storage offset")[0]
    return TensorRef(storage, offset, shape, strides)


def _rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    return data  # an nn.Parameter is its tensor, for our purposes


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise pickle.UnpicklingError(f"tensor {what} is not a list of non-negative integers: {values!r}"[:200])
    return tuple(values)


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    return collections.OrderedDict(*args)


# The only globals resolved; each maps to a function of ours that builds plain data.
_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def _resolve(module: str, name: str) -> Any:
    """A fresh object per lookup, so that a pickle's BUILD on it changes nothing shared."""
    if module == "torch" and name in STORAGE_DTYPES:
        return StorageType(name)
    function = _FUNCTIONS.get((module, name))
    if function is None:
        return None
    return lambda *args: function(*args)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, path: Path, root: str, records: dict[str, int]) -> None:
        super().__init__(io.BytesIO(data))
        self._path, self._root, self._records = path, root, records

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 (torch's) spells Python 3 modules the Python 2 way (`__builtin__`), as pickle maps them.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _resolve(module, name)
        if found is None:
            raise UnsafeCheckpoint(
                self._path, f"refused: the pickle asks for {module}.{name}, which a state dict never needs "
                "(nothing of it was run); only tensors, storages and OrderedDict are read")
        return found

    def persistent_load(self, pid: Any) -> StorageRef:
        # ('storage', storage_type, key, location, numel), as torch.save writes it.
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}"[:200])
        _, kind, key, _location, numel = pid
        if not isinstance(kind, StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise pickle.UnpicklingError(f"unexpected storage reference {pid!r}"[:200])
        dtype, np_dtype = STORAGE_DTYPES[kind.name]
        record = f"{self._root}/data/{key}"
        if record not in self._records:
            raise ConversionError(self._path, f"storage record {record} is missing from the archive")
        need = numel * np.dtype(np_dtype).itemsize
        if self._records[record] < need:
            raise ConversionError(self._path, f"storage record {record} holds {self._records[record]} bytes, "
                                              f"shorter than its {numel} elements ({need} bytes)")
        return StorageRef(record, dtype, np_dtype, numel)


def read_state_dict(path: Path) -> dict[str, TensorRef]:
    """The tensors of a torch zip checkpoint, by name (nothing but the pickle is read yet)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            head = fh.read(2)
        if head[:1] == b"\x80":
            raise ConversionError(path, "a legacy (before torch 1.6) pickle file, which is not read: it cannot "
                                        "be checked without running it; use the model.safetensors copy, or "
                                        "re-save it with a current torch")
        raise ConversionError(path, "not a PyTorch checkpoint (expected a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
            if len(pickles) != 1:
                raise ConversionError(path, "not a PyTorch checkpoint (no single <root>/data.pkl in the zip)")
            info = pickles[0]
            if info.file_size > MAX_PICKLE_BYTES:
                raise ConversionError(path, f"data.pkl is {info.file_size} bytes, too large for a state dict")
            root = info.filename.split("/", 1)[0]
            byteorder = f"{root}/byteorder"
            if byteorder in archive.namelist() and archive.read(byteorder).strip() not in (b"little", b""):
                raise ConversionError(path, "a big-endian checkpoint, which is not supported")
            records = {i.filename: i.file_size for i in infos}
            data = archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ConversionError(path, f"cannot read the zip archive (truncated or corrupt: {exc})") from None
    try:
        state = _StateDictUnpickler(data, path, root, records).load()
    except ConversionError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RecursionError, MemoryError) as exc:
        raise ConversionError(path, f"cannot read data.pkl ({type(exc).__name__}: {exc})"[:300]) from None
    if not isinstance(state, dict):
        raise ConversionError(path, f"data.pkl holds a {type(state).__name__}, not a state dict")
    tensors = {name: value for name, value in state.items() if isinstance(value, TensorRef)}
    if not tensors:
        raise ConversionError(path, "the state dict holds no tensors")
    return tensors


def load_tensor(path: Path, tensor: TensorRef) -> np.ndarray:
    """One tensor as float32, read from its storage record (the record's bytes only)."""
    storage = tensor.storage
    itemsize = np.dtype(storage.np_dtype).itemsize
    extent = 1 + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride)) if all(tensor.shape) else 0
    if tensor.offset + extent > storage.numel:
        raise ConversionError(path, f"a tensor of shape {tensor.shape} reaches past its storage record "
                                    f"{storage.record} ({storage.numel} elements)")
    try:
        with zipfile.ZipFile(path) as archive, archive.open(storage.record) as fh:
            fh.seek(tensor.offset * itemsize)
            raw = fh.read(extent * itemsize)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ConversionError(path, f"cannot read storage record {storage.record} ({exc})") from None
    if len(raw) < extent * itemsize:
        raise ConversionError(path, f"storage record {storage.record} is shorter than its tensor")
    flat = np.frombuffer(raw, dtype=storage.np_dtype)
    strides = tuple(s * itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(flat, shape=tensor.shape, strides=strides, writeable=False)
    return to_float32(view, storage.dtype)


def to_float32(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 from F32/F16/F64, or from BF16 given as its raw uint16 bits (exact: bf16 is the top half
    of a float32)."""
    if dtype == "BF16":
        return (np.ascontiguousarray(values, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.ascontiguousarray(values, dtype=np.float32)
