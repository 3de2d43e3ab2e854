"""Hugging Face CodeGen checkpoints → GGUF files llama.cpp runs (see convert_checkpoint)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..outtypes import OUTTYPES
from .checkpoint import Checkpoint
from .codegen import plan_codegen
from .errors import ConversionError
from .plan import ConversionPlan
from .quantize import QUANT_TYPES, quantize
from .writer import FLOAT_OUTTYPES, write_gguf

# Quantize from f32 while that stays small; from f16 for big models (as llama.cpp's own flow does).
F32_INTERMEDIATE_MAX_PARAMS = 1_000_000_000

__all__ = ["ConversionError", "ConversionReport", "OUTTYPES", "convert_checkpoint", "plan_checkpoint"]


@dataclass(frozen=True)
class ConversionReport:
    out: Path
    outtype: str
    n_params: int
    seconds: float
    bytes_written: int


def plan_checkpoint(src: Path, mp_num: int | None = None) -> ConversionPlan:
    ckpt = Checkpoint(Path(src))
    if ckpt.model_type == "codegen":
        return plan_codegen(ckpt, mp_num)
    if ckpt.model_type == "llama":
        from .llama import plan_codegen25

        return plan_codegen25(ckpt)
    raise ConversionError(ckpt.folder / "config.json",
                          f"unknown model_type {ckpt.model_type!r} (supported: codegen, llama for CodeGen 2.5)")


@contextlib.contextmanager
def _scratch_folder(parent: Path | None) -> Iterator[str]:
    """A temporary folder for the intermediate file, removed however the conversion ends. A Ctrl-C
    while mkdtemp runs is only recorded, and raised once the folder is ours to remove: raised inside
    mkdtemp, after the folder exists but before it is returned, it left the folder behind (the suite
    caught it). Blocking SIGINT is not enough: another thread may take the signal."""
    interrupted: list[int] = []
    swapped = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if swapped:
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    folder = None
    try:
        try:
            folder = tempfile.mkdtemp(prefix=".convert-", dir=parent)
        finally:
            if swapped:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        if interrupted:
            raise KeyboardInterrupt
        yield folder
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def convert_checkpoint(src: Path, out: Path, outtype: str = "f16", mp_num: int | None = None,
                       progress: bool = True, threads: int | None = None) -> ConversionReport:
    if outtype not in OUTTYPES:
        raise ConversionError(out, f"unknown output type {outtype!r} (choose from {', '.join(OUTTYPES)})")
    started = time.perf_counter()
    out = Path(out)
    plan = plan_checkpoint(src, mp_num)
    if outtype in FLOAT_OUTTYPES:
        write_gguf(plan, out, outtype, progress=progress)
    else:
        inter = "f32" if plan.n_params <= F32_INTERMEDIATE_MAX_PARAMS else "f16"
        parent = out.parent if str(out.parent) else Path(".")
        with _scratch_folder(parent if parent.is_dir() else None) as tmp:
            intermediate = Path(tmp) / f"model-{inter}.gguf"
            write_gguf(plan, intermediate, inter, progress=progress)
            quantize(intermediate, out, outtype, threads=threads, progress=progress)
    return ConversionReport(out, outtype, plan.n_params, time.perf_counter() - started, out.stat().st_size)
