"""Write a ConversionPlan as a GGUF file with gguf-py's writer, one tensor at a time, atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

import gguf
import numpy as np
from tqdm import tqdm

from .errors import ConversionError
from .plan import ConversionPlan

FLOAT_OUTTYPES = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}  # outtypes.FLOAT_OUTTYPES


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "not writable (permission denied)"
    if exc.errno == errno.EFBIG or (exc.errno is None and "written" in str(exc)):
        return f"write failed: disk full or file-size limit reached ({exc.strerror or exc})"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside `out`; rename it over `out` only if the block succeeds.
    Any failure, Ctrl-C included, removes the temporary file, so no partial OUT is ever left."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ConversionError(out, f"output folder {parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise ConversionError(out, describe_os_error(exc)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise ConversionError(out, describe_os_error(exc)) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_gguf(plan: ConversionPlan, out: Path, outtype: str = "f32", progress: bool = True) -> None:
    if outtype not in FLOAT_OUTTYPES:
        raise ValueError(f"write_gguf writes f32 or f16, not {outtype!r}")
    matrix_dtype = np.float16 if outtype == "f16" else np.float32
    with atomic_output(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), plan.architecture)
        try:
            _add_metadata(writer, plan, FLOAT_OUTTYPES[outtype])
            dtypes = [matrix_dtype if t.is_matrix else np.float32 for t in plan.tensors]
            for tensor, dtype in zip(plan.tensors, dtypes):
                nbytes = int(np.prod(tensor.shape)) * np.dtype(dtype).itemsize
                writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(dtype), nbytes)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for tensor, dtype in tqdm(list(zip(plan.tensors, dtypes)), desc=f"write {outtype}", unit="tensor",
                                      disable=not progress, leave=False):
                data = np.ascontiguousarray(tensor.produce(), dtype=dtype)
                if data.shape != tensor.shape:
                    raise ConversionError(out, f"tensor {tensor.name} came out {data.shape}, planned {tensor.shape}")
                writer.write_tensor_data(data)
        finally:
            writer.close()


def _add_metadata(writer: gguf.GGUFWriter, plan: ConversionPlan, file_type: int) -> None:
    arch = plan.architecture
    writer.add_name(plan.name or "codegen")
    writer.add_file_type(int(file_type))
    for key, value in plan.hparams.items():
        full = f"{arch}.{key}"
        if isinstance(value, float):
            writer.add_float32(full, value)
        else:
            writer.add_uint32(full, int(value))
    vocab = plan.vocab
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id, "unk": writer.add_unk_token_id,
              "eom": writer.add_eom_token_id}
    for role, token_id in plan.special_ids.items():
        adders[role](token_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    for key, value in plan.prompt.as_metadata().items():
        if isinstance(value, list):
            writer.add_array(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, str(value))
