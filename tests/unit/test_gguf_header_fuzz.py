"""gguf/header.py on mutated real headers (the suite's tiny test model, a big-endian file gguf-py writes, and
SmolLM2's when it is in .cache/real-models): bits flipped, counts overwritten with huge or edge values, cuts,
splices. Whatever the bytes, read_header gives a GGUFHeader or raises HeaderError, nothing else.
The same mutations, 10,000 of them with timings and memory, are `codegen-lsp bench gguf-fuzz`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from support import REPO_ROOT

from codegen_lsp.gguf.header import GGUFHeader, HeaderError, read_header
from codegen_lsp_devtools.bench.gguf_fuzz import EDGE_COUNTS, apply, count_offsets

gguf = pytest.importorskip("gguf")

SMOLLM2 = REPO_ROOT / ".cache" / "real-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def source(path: Path) -> tuple[bytes, st.SearchStrategy[list[tuple]]]:
    """The header of the GGUF at `path` and the mutations of it to draw."""
    with open(path, "rb") as fh:
        data = fh.read(read_header(path).data_offset)
    return data, mutations(data)


@pytest.fixture(scope="module")
def tiny_header(tiny_codegen1):
    return source(tiny_codegen1.gguf_path)


@pytest.fixture(scope="module")
def big_endian_header(tmp_path_factory):
    path = tmp_path_factory.mktemp("big-endian") / "be.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_uint32("t.u32", 7)
    writer.add_string("t.str", "naïve")
    writer.add_array("t.floats", [0.25, -2.0, 3.5])
    writer.add_token_list(["<s>", " the", "日本"])
    writer.add_token_merges(["a b", "c d"])
    writer.add_tensor("a", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return source(path)


@pytest.fixture(scope="module")
def smollm2_header():
    if not SMOLLM2.is_file():
        pytest.skip(f"{SMOLLM2} is not there (the smollm2 fixture fetches it)")
    return source(SMOLLM2)


def mutations(data: bytes) -> st.SearchStrategy[list[tuple]]:
    """One to three of the ops that `apply` knows, anywhere in `data`; counts at the offsets where `data`
    keeps its counts and lengths."""
    # Hypothesis favours small integers: a fraction of the length reaches the vocabulary's megabytes as often.
    anywhere = st.integers(0, len(data)) | st.floats(0, 1).map(lambda f: int(f * len(data)))
    op = st.one_of(
        st.tuples(st.just("flip"), anywhere, st.integers(0, 7)),
        st.tuples(st.just("count"), st.sampled_from(count_offsets(data)),
                  st.sampled_from(EDGE_COUNTS + (len(data),)) | st.integers(0, (1 << 64) - 1)),
        st.tuples(st.just("cut"), anywhere),
        st.tuples(st.just("splice"), anywhere, st.sampled_from((1, 4, 8, 12, 64, 4096)), anywhere, st.booleans()),
    )
    return st.lists(op, min_size=1, max_size=3)


def header_or_header_error(path: Path, source: tuple[bytes, st.SearchStrategy], data: st.DataObject) -> None:
    header, ops = source
    path.write_bytes(apply(header, data.draw(ops)))
    try:
        got = read_header(path, string_arrays=("tokenizer.ggml.tokens",))
    except HeaderError:
        return
    assert isinstance(got, GGUFHeader)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mutated_tiny_model_header_gives_a_header_or_a_header_error(tiny_header, tmp_path_factory, data):
    header_or_header_error(tmp_path_factory.getbasetemp() / "tiny-mutant.gguf", tiny_header, data)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_mutated_big_endian_header_gives_a_header_or_a_header_error(big_endian_header, tmp_path_factory, data):
    header_or_header_error(tmp_path_factory.getbasetemp() / "be-mutant.gguf", big_endian_header, data)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_mutated_smollm2_header_gives_a_header_or_a_header_error(smollm2_header, tmp_path_factory, data):
    header_or_header_error(tmp_path_factory.getbasetemp() / "smollm2-mutant.gguf", smollm2_header, data)
