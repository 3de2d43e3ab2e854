"""Quantize a GGUF with llama.cpp's own quantizer (`llama_model_quantize`), never a hand-written one.

This and engine/ are the only modules that import llama_cpp.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from ..outtypes import QUANT_TYPES
from .errors import ConversionError
from .writer import atomic_output



def quantize(src: Path, out: Path, qtype: str, threads: int | None = None, progress: bool = True) -> None:
    import llama_cpp

    if qtype not in QUANT_TYPES:
        raise ConversionError(out, f"unknown quantization {qtype!r} (choose from {', '.join(QUANT_TYPES)})")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[qtype])
    params.nthread = threads or os.cpu_count() or 1
    with atomic_output(out) as tmp, tqdm(total=1, desc=f"quantize {qtype}", disable=not progress, leave=False) as bar:
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if status != 0:
            raise ConversionError(src, f"llama.cpp's quantizer failed (status {status})")
        bar.update(1)
