"""gguf/header.py against gguf-py's own reader and writer: the same metadata and tensor table for files
gguf-py writes (every value type, both byte orders, a custom alignment), and a clear HeaderError,
never another exception, for a file cut anywhere inside its header; then hostile headers, one bound each
(test_gguf_header_fuzz.py mutates real ones)."""

from __future__ import annotations

import struct
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest

from codegen_lsp.gguf import header as gguf_header
from codegen_lsp.gguf.header import HeaderError, read_header
from codegen_lsp_devtools.bench.gguf_fuzz import (ARRAY, STRING, U8, U32, array_of, gguf as gguf_bytes, gstr, kv,
                                                  nested, strings_array, tensor)

gguf = pytest.importorskip("gguf")


def write(path: Path, endianess=None, alignment: int | None = None) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endianess or gguf.GGUFEndian.LITTLE)
    writer.add_uint8("t.u8", 200)
    writer.add_int8("t.i8", -5)
    writer.add_uint16("t.u16", 60000)
    writer.add_int16("t.i16", -300)
    writer.add_uint32("t.u32", 4_000_000_000)
    writer.add_int32("t.i32", -70000)
    writer.add_float32("t.f32", 0.5)
    writer.add_uint64("t.u64", 2 ** 40)
    writer.add_int64("t.i64", -(2 ** 40))
    writer.add_float64("t.f64", 1e-300)
    writer.add_bool("t.bool", True)
    writer.add_string("t.str", "naïve ☃")
    writer.add_array("t.ints", [3, 1, 4, 1, 5])
    writer.add_array("t.floats", [0.25, -2.0])
    writer.add_token_list(["<s>", " the", "日本", ""])
    writer.add_token_merges(["a b", "c d"])
    if alignment:
        writer.add_custom_alignment(alignment)
    writer.add_tensor("a", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.add_tensor("b", np.ones(64, dtype=np.float16))
    writer.add_tensor("c", np.zeros((2, 68), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("endianess,alignment", [("LITTLE", None), ("BIG", None), ("LITTLE", 64)])
def test_the_same_as_gguf_pys_reader(tmp_path: Path, endianess: str, alignment):
    path = write(tmp_path / "m.gguf", getattr(gguf.GGUFEndian, endianess), alignment)
    reference = gguf.GGUFReader(str(path))
    header = read_header(path, string_arrays=("tokenizer.ggml.tokens",))
    expected = {k: f.contents() for k, f in reference.fields.items() if not k.startswith("GGUF.")}
    merges = expected.pop("tokenizer.ggml.merges")
    got = dict(header.fields)
    assert got.pop("tokenizer.ggml.merges") == len(merges)  # not asked for: stepped over, counted
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(got[key], array):  # numeric arrays: compact, in this machine's byte order
            assert got[key].tolist() == pytest.approx(value), key
        else:
            assert got[key] == pytest.approx(value) if isinstance(value, float) else got[key] == value, key
    assert [(t.name, t.offset, t.n_bytes) for t in header.tensors] == [
        (t.name, int(t.data_offset), int(t.n_bytes)) for t in reference.tensors]
    assert header.data_offset == reference.data_offset


def test_a_file_cut_inside_its_header_is_a_header_error(tmp_path: Path):
    data = write(tmp_path / "m.gguf").read_bytes()
    whole = read_header(tmp_path / "m.gguf")
    cut, refused = tmp_path / "cut.gguf", 0
    for size in range(whole.data_offset):
        cut.write_bytes(data[:size])
        try:
            got = read_header(cut)
        except HeaderError:
            refused += 1
            continue
        # Only the padding before the tensor data may be missing (the data's own check is inspect's).
        assert whole.data_offset - size < 32 and got == whole, size
    assert refused > whole.data_offset - 32


@pytest.mark.parametrize("data,says", [
    (b"GGML" + bytes(40), "not a GGUF"),
    (b"GGUF" + (9).to_bytes(4, "little") + bytes(16), "version 9"),
    (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
     + (1).to_bytes(8, "little") + b"k" + (99).to_bytes(4, "little"), "value type 99"),
])
def test_what_is_not_a_gguf_it_reads_says_why(tmp_path: Path, data: bytes, says: str):
    path = tmp_path / "x.gguf"
    path.write_bytes(data)
    with pytest.raises(HeaderError, match=says):
        read_header(path)


def test_a_token_that_is_not_utf8_is_read_with_replacement(tmp_path: Path):
    """GGUF strings should be UTF-8; one that is not is llama.cpp's to judge, not a corrupt file."""
    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_token_list([b"\xff\xfe", "a"])
    writer.add_tensor("a", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_header(path, string_arrays=("tokenizer.ggml.tokens",)).fields["tokenizer.ggml.tokens"] == [
        "\ufffd\ufffd", "a"]


def test_the_end_token_ids_our_converter_writes_reach_inspect(tmp_path: Path):
    """inspect reads codegen_lsp.end_token_ids, a numeric array (an array.array), not the tokenizer's eos."""
    from codegen_lsp.gguf import meta
    from codegen_lsp.gguf.inspect import inspect_model_file

    path = tmp_path / "ends.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_token_list(["<s>", "</s>", "a", "<eom>"])
    writer.add_eos_token_id(1)
    writer.add_array(meta.KEY_END_TOKEN_IDS, [1, 3])
    writer.add_tensor("a", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert inspect_model_file(path).end_token_ids == (1, 3)


# -- hostile headers: each bound, on the smallest file that needs it ----------------------------------------

def read(tmp_path: Path, data: bytes, string_arrays=("tokenizer.ggml.tokens",)):
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data)
    return read_header(path, string_arrays=string_arrays)


@pytest.mark.parametrize("n_dims", [5, 1 << 20, (1 << 32) - 1])
def test_a_tensor_with_more_dimensions_than_ggml_allows_is_refused(tmp_path: Path, n_dims: int):
    dims = (1,) * min(n_dims, 1 << 20)  # there: the old reader spent 20 s on a million
    with pytest.raises(HeaderError, match=f"{n_dims} dimensions"):
        read(tmp_path, gguf_bytes(tensors=[tensor("t", dims, n_dims=n_dims)]))
    assert read(tmp_path, gguf_bytes(tensors=[tensor("t", (2, 3, 4, 5))])).tensors[0].n_bytes == 4 * 120


def test_arrays_nest_up_to_the_limit_and_no_deeper(tmp_path: Path):
    limit = gguf_header.MAX_ARRAY_DEPTH
    got = read(tmp_path, nested(limit)).fields["nested"]
    for _ in range(limit - 1):
        assert isinstance(got, list) and len(got) == 1
        got = got[0]
    assert got.tolist() == []
    for depth in (limit + 1, 100_000):  # the old reader: RecursionError
        with pytest.raises(HeaderError, match="nested"):
            read(tmp_path, nested(depth))


def test_a_recursion_error_is_a_header_error(tmp_path: Path, monkeypatch):
    """The depth limit keeps RecursionError away; were it gone, the reader would still say HeaderError."""
    monkeypatch.setattr(gguf_header, "MAX_ARRAY_DEPTH", 10 ** 9)
    with pytest.raises(HeaderError, match="RecursionError"):
        read(tmp_path, nested(sys.getrecursionlimit() + 10))


HUGE = (1 << 64) - 1


@pytest.mark.parametrize("data,says", [
    (gguf_bytes(n_fields=HUGE), "table of 18446744073709551615 keys"),
    (gguf_bytes(n_tensors=HUGE), "table of 18446744073709551615 tensors"),
    (gguf_bytes(n_fields=2, n_tensors=0) + bytes(25), "table of 2 keys"),  # 25 bytes: not two keys' 26
    (gguf_bytes([struct.pack("<Q", HUGE) + b"key" + bytes(16)]), "string of 18446744073709551615 bytes"),
    (gguf_bytes([kv("a", ARRAY, array_of(U32, HUGE))]), "array of 18446744073709551615 numbers"),
    (gguf_bytes([kv("a", ARRAY, array_of(U32, 3, bytes(11)))]), "array of 3 numbers"),
    (gguf_bytes([kv("a", ARRAY, array_of(STRING, HUGE))]), "array of 18446744073709551615 strings"),
    (gguf_bytes([kv("a", ARRAY, array_of(ARRAY, HUGE))]), "array of 18446744073709551615 arrays"),
    # an item's length past the end, inside an array: stepped over, then read
    (gguf_bytes([kv("tokenizer.ggml.merges", ARRAY, array_of(STRING, 2, gstr("a b") + struct.pack("<Q", HUGE)))]),
     "array of 2 strings"),
    (gguf_bytes([kv("tokenizer.ggml.tokens", ARRAY, array_of(STRING, 2, gstr("a") + struct.pack("<Q", 9)))]),
     "string of 9 bytes"),
])
def test_a_count_past_the_end_is_refused_before_it_is_used(tmp_path: Path, data: bytes, says: str):
    with pytest.raises(HeaderError, match=f"{says} runs past the end of the file"):
        read(tmp_path, data)


def test_a_huge_numeric_array_is_a_compact_array_not_a_list(tmp_path: Path):
    """The old reader made a list of Python ints: ~16 times the bytes."""
    values = np.arange(1 << 20, dtype=np.uint32)
    got = read(tmp_path, gguf_bytes([kv("a", ARRAY, array_of(U32, len(values), values.tobytes()))])).fields["a"]
    assert isinstance(got, array) and got.itemsize == 4 and len(got) == len(values)
    assert got[0] == 0 and got[-1] == len(values) - 1
    assert sys.getsizeof(got) < 1.1 * values.nbytes


def test_the_work_a_header_may_cost_is_bounded(tmp_path: Path, monkeypatch):
    """Charged as each item costs: a key 32 (and its name, a string read, 5), a string stepped over 1, read 5."""
    monkeypatch.setattr(gguf_header, "MAX_WORK", 1000)
    for fields, fits in [([strings_array("m", 960)], True), ([strings_array("m", 970)], False),
                         ([strings_array("tokenizer.ggml.tokens", 190)], True),
                         ([strings_array("tokenizer.ggml.tokens", 193)], False),
                         ([kv(f"k{i}", U8, b"\0") for i in range(27)], True),
                         ([kv(f"k{i}", U8, b"\0") for i in range(28)], False)]:
        if fits:
            read(tmp_path, gguf_bytes(fields))
        else:
            with pytest.raises(HeaderError, match="more strings"):
                read(tmp_path, gguf_bytes(fields))


def test_the_memory_values_may_take_is_bounded(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gguf_header, "MAX_KEPT", 50_000)
    assert len(read(tmp_path, gguf_bytes([kv("a", ARRAY, array_of(U8, 40_000, bytes(40_000)))])).fields["a"]) == 40_000
    with pytest.raises(HeaderError, match="metadata values of more than"):
        read(tmp_path, gguf_bytes([kv("a", ARRAY, array_of(U8, 60_000, bytes(60_000)))]))
    # Decoded, a string of invalid UTF-8 may take 4 times its bytes (U+FFFD each, UCS-4 with the emoji).
    token = "\U0001F600".encode() + b"\xff" * 96
    assert len(read(tmp_path, gguf_bytes([strings_array("tokenizer.ggml.tokens", 120, b"a" * 100)])).fields[
        "tokenizer.ggml.tokens"]) == 120
    with pytest.raises(HeaderError, match="metadata values of more than"):
        read(tmp_path, gguf_bytes([strings_array("tokenizer.ggml.tokens", 120, token)]))
    # One string: its bytes are copied before they are decoded.
    assert read(tmp_path, gguf_bytes([kv("s", STRING, gstr(b"a" * 20_000))])).fields["s"] == "a" * 20_000
    assert read(tmp_path, gguf_bytes([kv("s", STRING, gstr(b"\xff" * 9_000))])).fields["s"] == "\ufffd" * 9_000
    with pytest.raises(HeaderError, match="metadata values of more than"):
        read(tmp_path, gguf_bytes([kv("s", STRING, gstr(b"\xff" * 10_000))]))


def test_a_header_larger_than_the_bound_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gguf_header, "MAX_HEADER", 4096)
    assert read(tmp_path, gguf_bytes([kv("s", STRING, gstr("x" * 3000))]) + bytes(10_000)).fields["s"] == "x" * 3000
    with pytest.raises(HeaderError, match="MB a header may take"):
        read(tmp_path, gguf_bytes([kv("s", STRING, gstr("x" * 5000))]))
