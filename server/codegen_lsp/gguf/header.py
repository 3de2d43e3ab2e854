"""A GGUF file's metadata and tensor table, read without reading what is not asked for.

gguf-py's `GGUFReader` builds numpy views for every element of every array when it opens a file:
for a 49k-token vocabulary with its 49k merges that is ~250k small arrays, 2.2 s of every cold start
(SmolLM2-135M; 0.6 s for the default model). Here string arrays nobody asked for are only stepped
over, and the rest is `struct` on a memory map (no numpy): ~40 ms for the same file. The layout
and the type tables are gguf-py's (`gguf.constants`); the converter still writes with gguf-py.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# GGUFValueType → struct code of the scalar types (gguf.constants.GGUFValueType numbering).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class HeaderError(ValueError):
    """Not a GGUF this reader understands, or one that ends too early; the message says which."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # as stored (ggml's order: the fastest-moving first)
    ggml_type: int
    offset: int  # from the start of the file
    n_bytes: int


@dataclass
class GGUFHeader:
    version: int
    fields: dict[str, Any] = field(default_factory=dict)  # a string array not asked for: its length
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0


def read_header(path: Path | str, string_arrays: Iterable[str] = ()) -> GGUFHeader:
    """The metadata (scalars, numeric arrays, and the string arrays named in `string_arrays` as lists of
    str) and the tensor table of the GGUF at `path`. Raises HeaderError, or OSError if unreadable."""
    wanted = set(string_arrays)
    with open(path, "rb") as fh:
        try:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise HeaderError("empty file") from None
    with data:
        try:
            return _Reader(data).read(wanted)
        except (struct.error, IndexError, OverflowError) as exc:
            raise HeaderError(f"truncated or corrupt ({type(exc).__name__}: {exc})") from None


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at, self.order = data, 0, "<"

    def take(self, code: str) -> Any:
        fmt = self.order + code
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("Q")
        if self.at + n > len(self.data):
            raise HeaderError("truncated or corrupt (a string runs past the end of the file)")
        # GGUF strings are UTF-8; a token that is not should not keep llama.cpp from deciding on the file.
        text = self.data[self.at:self.at + n].decode("utf-8", "replace")
        self.at += n
        return text

    def read(self, wanted: set[str]) -> GGUFHeader:
        if self.data[:4] != GGUF_MAGIC:
            raise HeaderError("not a GGUF file")
        self.at = 4
        version = self.take("I")
        if version & 0xFFFF == 0:  # written on a machine of the other byte order
            self.order = ">"
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in SUPPORTED_VERSIONS:
            raise HeaderError(f"GGUF version {version} is not supported")
        n_tensors, n_fields = self.take("Q"), self.take("Q")
        header = GGUFHeader(version)
        for _ in range(n_fields):
            key = self.string()
            header.fields[key] = self.value(self.take("I"), key in wanted)
        from gguf.constants import GGML_QUANT_SIZES

        infos = []
        for _ in range(n_tensors):
            name = self.string()
            dims = tuple(self.take("Q") for _ in range(self.take("I")))
            infos.append((name, dims, self.take("I"), self.take("Q")))
        alignment = header.fields.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise HeaderError(f"invalid general.alignment {alignment!r}")
        header.data_offset = -(-self.at // alignment) * alignment
        for name, dims, ggml_type, offset in infos:
            if ggml_type not in GGML_QUANT_SIZES:
                raise HeaderError(f"tensor {name} has an unknown type {ggml_type}")
            block, size = GGML_QUANT_SIZES[ggml_type]
            n_elements = 1
            for d in dims:
                n_elements *= d
            header.tensors.append(TensorInfo(name, dims, ggml_type, header.data_offset + offset,
                                             n_elements // block * size))
        return header

    def value(self, kind: int, keep_strings: bool) -> Any:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise HeaderError(f"unknown metadata value type {kind}")
        item, count = self.take("I"), self.take("Q")
        if item in _SCALARS:
            fmt = f"{self.order}{count}{_SCALARS[item]}"
            values = list(struct.unpack_from(fmt, self.data, self.at))
            self.at += struct.calcsize(fmt)
            return values
        if item == _STRING:
            if keep_strings:
                return [self.string() for _ in range(count)]
            for _ in range(count):  # stepped over: only the lengths are read
                (n,) = struct.unpack_from(self.order + "Q", self.data, self.at)
                self.at += 8 + n
            if self.at > len(self.data):
                raise HeaderError("truncated or corrupt (an array runs past the end of the file)")
            return count
        return [self.value(item, keep_strings) for _ in range(count)]  # arrays of arrays
