"""GGUFs that pass our own inspection (gguf.inspect.inspect_model_file) but make llama.cpp abort.

Each helper copies a working phi2 GGUF (a tiny test model from models.factory) with gguf-py, changing
one metadata value so that a GGML_ASSERT in llama.cpp (llama-cpp-python 0.3.36's vendored copy) fails:
llama.cpp then calls abort() and the process that loaded it dies with SIGABRT. Only metadata changes;
tensors, vocabulary and our own codegen_lsp.* keys are copied as they are, so the server's inspection
sees an ordinary model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def copy_gguf(src: Path, dst: Path, overrides: dict[str, tuple[Any, Any]]) -> Path:
    """Copy `src` to `dst` with gguf-py, replacing or adding the metadata in `overrides`
    (key → (value, GGUFValueType)); every other key and every tensor is copied unchanged."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    reader = GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(str(dst), arch)
    try:
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture" or key in overrides:
                continue
            vtype = field.types[0]
            sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), vtype, sub_type=sub_type)
        for key, (value, vtype) in overrides.items():
            writer.add_key_value(key, value, vtype)
        for tensor in reader.tensors:
            # GGUFReader gives numpy arrays in numpy order (ne reversed) for float tensors: pass them so.
            writer.add_tensor(tensor.name, np.array(tensor.data), raw_dtype=tensor.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return dst


def abort_at_first_eval(src: Path, dst: Path) -> Path:
    """An odd `<arch>.rope.dimension_count` (n_rot = head_dim - 1).

    llama.cpp loads it and creates a context (graph reservation only allocates), but the first
    llama_decode runs ggml-cpu's rope and trips `GGML_ASSERT(n_dims % 2 == 0)` in ggml_compute_forward_rope
    (ggml/src/ggml-cpu/ops.cpp:6356 in 0.3.36): SIGABRT at the first evaluation, every evaluation. Every
    compute thread runs the op, so with n_threads_batch > 1 several threads abort at once.
    (An n_rot above head_dim trips the assert above it instead, `GGML_ASSERT(n_dims <= ne0)`.)"""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    n_embd = int(reader.fields[f"{arch}.embedding_length"].contents())
    n_head = int(reader.fields[f"{arch}.attention.head_count"].contents())
    del reader
    return copy_gguf(src, dst, {f"{arch}.rope.dimension_count": (n_embd // n_head - 1, GGUFValueType.UINT32)})


def abort_at_load(src: Path, dst: Path) -> Path:
    """An unknown `<arch>.rope.scaling.type` ("bogus").

    llama_model::load_hparams maps the string with llama_rope_scaling_type_from_string, which returns
    LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED for a name it does not know, and then asserts
    `GGML_ASSERT(hparams.rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED)`
    (src/llama-model.cpp:1420 in 0.3.36): SIGABRT inside `Llama(...)`, on the loading thread only. No C++
    exception is thrown, so llama-cpp-python has nothing to turn into a ValueError."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    del reader
    return copy_gguf(src, dst, {f"{arch}.rope.scaling.type": ("bogus", GGUFValueType.STRING)})
