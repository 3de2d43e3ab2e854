"""A GGUF file's metadata and tensor table, read without reading what is not asked for.

gguf-py's `GGUFReader` builds numpy views for every element of every array when it opens a file:
for a 49k-token vocabulary with its 49k merges that is ~250k small arrays, 2.2 s of every cold start
(SmolLM2-135M; 0.6 s for the default model). Here string arrays nobody asked for are only stepped
over, numeric arrays are copied whole into an `array.array`, and the rest is `struct` on a memory map
(no numpy): ~20 ms for the same file. The layout and the type tables are gguf-py's (`gguf.constants`);
the converter still writes with gguf-py.

Any file may be handed to this reader (it decides whether llama.cpp gets to see one), so it is bounded:
every count is checked against the bytes left before anything is allocated or looped over, and a header
may cost at most MAX_WORK steps and MAX_HEADER + MAX_KEPT bytes of memory (bench gguf-fuzz: any file
gives a header or a HeaderError in under 0.2 s).
"""

from __future__ import annotations

import mmap
import struct
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NoReturn

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS: llama.cpp refuses a tensor with more
# llama.cpp refuses arrays of arrays outright; gguf-py writes them, so a few levels are read for its files.
# A small limit keeps a hostile nesting far from Python's recursion limit.
MAX_ARRAY_DEPTH = 3
# Work: the loops over a header's items take at most MAX_WORK steps, charged as they cost (~0.08 µs a step
# here): 1 a string stepped over, 5 a string read, 32 a key, a tensor or an array in an array. The largest real
# vocabularies (~260k tokens read, as many merges stepped over) take ~1.6M, SmolLM2 0.3M; any header: ~0.2 s.
MAX_WORK = 2 << 20
# Memory: the file's pages read (mapped) plus the values kept stay under 64 MB. The largest real headers
# take ~10 MB of the file and keep ~30 MB (Gemma's 262k tokens, as charged); SmolLM2's: 1.7 and 5 MB.
MAX_HEADER = 24 << 20  # bytes: metadata and tensor table
MAX_KEPT = 40 << 20  # bytes of the values kept, as charged: roughly what they take in memory

# GGUFValueType → struct code of the scalar types (gguf.constants.GGUFValueType numbering). Numeric arrays
# use the same letters as array.array typecodes (these sizes hold wherever CPython runs), bools as "B".
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_BOOL, _STRING, _ARRAY = 7, 8, 9
# The fewest bytes an item takes in the file: a key (8) with its type (4) and a 1-byte value; a tensor's
# name (8), dimension count (4), type (4) and offset (8); a string's length; an array's type and count.
_MIN_FIELD, _MIN_TENSOR, _MIN_STRING, _MIN_ARRAY = 13, 24, 8, 12
_OBJECT = 80  # bytes a small Python object and a reference to it take, roughly


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
    # Scalars as Python values; strings as str; numeric arrays as array.array, in this machine's byte order
    # (bools as 0/1); string arrays named in `string_arrays` as lists of str, the others as their length.
    fields: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0


def read_header(path: Path | str, string_arrays: Iterable[str] = ()) -> GGUFHeader:
    """The metadata and the tensor table of the GGUF at `path` (GGUFHeader.fields says how values come).
    Raises HeaderError, or OSError if unreadable."""
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
        except (RecursionError, MemoryError) as exc:  # the bounds should keep these away; never let one out
            raise HeaderError(f"too large to read ({type(exc).__name__})") from None


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.end, self.at = data, min(len(data), MAX_HEADER), 0
        self.work = self.kept = 0
        self.byte_order("<")

    def byte_order(self, order: str) -> None:
        self.order, self.swapped = order, (order == "<") != (sys.byteorder == "little")
        self.scalars = {kind: struct.Struct(order + code) for kind, code in _SCALARS.items()}
        self.u32, self.u64 = self.scalars[4], self.scalars[10]

    def take(self, scalar: struct.Struct) -> Any:
        (value,) = scalar.unpack_from(self.data, self.at)
        self.at += scalar.size
        return value

    def fits(self, count: int, item_size: int, what: str) -> int:
        """`count` items of at least `item_size` bytes each fit in what is left (checked before anything is
        allocated or looped over), or HeaderError."""
        if count * item_size > self.end - self.at:
            self.past(what.format(count), self.at + count * item_size)
        return count

    def past(self, what: str, until: int) -> NoReturn:
        if until > len(self.data):
            raise HeaderError(f"truncated or corrupt ({what} runs past the end of the file)")
        raise HeaderError(f"{what} runs past the {MAX_HEADER >> 20} MB a header may take: no model's header")

    def spend(self, work: int = 0, kept: int = 0) -> None:
        self.work += work
        self.kept += kept
        if self.work > MAX_WORK:
            raise HeaderError("more strings, keys, tensors or arrays than any model's header has")
        if self.kept > MAX_KEPT:
            raise HeaderError(f"metadata values of more than {MAX_KEPT >> 20} MB: no model's header")

    def string(self) -> str:
        n = self.fits(self.take(self.u64), 1, "a string of {} bytes")
        self.spend(5, _OBJECT + 2 * n)  # the bytes copied, then the text: 1 byte a character if ASCII ...
        raw = self.data[self.at:self.at + n]
        self.at += n
        if not raw.isascii():
            self.spend(0, 3 * n)  # ... else up to 4 (UCS-4; an invalid byte becomes a U+FFFD)
        # GGUF strings are UTF-8; a token that is not should not keep llama.cpp from deciding on the file.
        return raw.decode("utf-8", "replace")

    def read(self, wanted: set[str]) -> GGUFHeader:
        if self.data[:4] != GGUF_MAGIC:
            raise HeaderError("not a GGUF file")
        self.at = 4
        version = self.take(self.u32)
        if version & 0xFFFF == 0:  # written on a machine of the other byte order
            self.byte_order(">")
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in SUPPORTED_VERSIONS:
            raise HeaderError(f"GGUF version {version} is not supported")
        n_tensors, n_fields = self.take(self.u64), self.take(self.u64)
        self.fits(n_fields, _MIN_FIELD, "a table of {} keys")
        self.fits(n_tensors, _MIN_TENSOR, "a table of {} tensors")
        self.spend(32 * (n_fields + n_tensors), 4 * _OBJECT * (n_fields + n_tensors))
        header = GGUFHeader(version)
        for _ in range(n_fields):
            key = self.string()
            header.fields[key] = self.value(self.take(self.u32), key in wanted, MAX_ARRAY_DEPTH)
        from gguf.constants import GGML_QUANT_SIZES

        self.fits(n_tensors, _MIN_TENSOR, "a table of {} tensors")
        infos = []
        for _ in range(n_tensors):
            name = self.string()
            n_dims = self.take(self.u32)
            if n_dims > MAX_DIMS:
                raise HeaderError(f"tensor {name!r} has {n_dims} dimensions (ggml allows at most {MAX_DIMS})")
            dims = struct.unpack_from(f"{self.order}{n_dims}Q", self.data, self.at)
            self.at += 8 * n_dims
            infos.append((name, dims, self.take(self.u32), self.take(self.u64)))
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

    def value(self, kind: int, keep_strings: bool, depth: int) -> Any:
        if kind in _SCALARS:
            return self.take(self.scalars[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise HeaderError(f"unknown metadata value type {kind}")
        item, count = self.take(self.u32), self.take(self.u64)
        if item in _SCALARS:
            return self.numbers(item, count)
        if item == _STRING:
            return self.strings(count, keep_strings)
        if item != _ARRAY:
            raise HeaderError(f"unknown metadata value type {item} (of an array's items)")
        if depth <= 1:
            raise HeaderError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
        self.fits(count, _MIN_ARRAY, "an array of {} arrays")
        self.spend(32 * count, _OBJECT * count)
        return [self.value(item, keep_strings, depth - 1) for _ in range(count)]

    def numbers(self, item: int, count: int) -> array:
        """A numeric array, copied once from the map (a list would take ~16 times its bytes)."""
        n = self.fits(count, self.scalars[item].size, "an array of {} numbers") * self.scalars[item].size
        self.spend(0, _OBJECT + n)
        values = array("B" if item == _BOOL else _SCALARS[item])
        with memoryview(self.data) as view:
            values.frombytes(view[self.at:self.at + n])
        self.at += n
        if self.swapped:
            values.byteswap()
        return values

    def strings(self, count: int, keep: bool) -> list[str] | int:
        """A string array's items, read as `string` reads one (inlined: most of a header's time goes here), or,
        not kept, its length: then only the items' lengths are read."""
        self.fits(count, _MIN_STRING, "an array of {} strings")
        data, at, end, length = self.data, self.at, self.end, self.u64.unpack_from
        if not keep:
            self.spend(count)
            for _ in range(count):
                at += 8 + length(data, at)[0]
                if at > end:  # checked at each step: nothing past the end is read
                    self.past(f"an array of {count} strings", at)
            self.at = at
            return count
        self.spend(5 * count)
        texts, kept, left = [], 0, MAX_KEPT - self.kept
        for _ in range(count):
            (n,) = length(data, at)
            at += 8
            if n > end - at:
                self.past(f"a string of {n} bytes", at + n)
            raw = data[at:at + n]
            at += n
            kept += _OBJECT + (n if raw.isascii() else 4 * n)
            if kept > left:
                self.spend(0, kept)
            texts.append(raw.decode("utf-8", "replace"))
        self.at = at
        self.spend(0, kept)
        return texts
