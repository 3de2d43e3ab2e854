"""gguf/header.py against gguf-py's own reader and writer: the same metadata and tensor table for files
gguf-py writes (every value type, both byte orders, a custom alignment), and a clear HeaderError,
never another exception, for a file cut anywhere inside its header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codegen_lsp.gguf.header import HeaderError, read_header

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
