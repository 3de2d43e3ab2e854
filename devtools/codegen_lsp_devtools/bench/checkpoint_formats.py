"""`bench checkpoint-formats`: a pull's local work (convert, quantize to q8_0, check that it loads) on the
same checkpoint as `model.safetensors` and as `pytorch_model.bin`, each in a fresh process that cannot
import torch, alternating. Prints the time ratio bin / safetensors from this one run and each side's
peak RSS (the tensors are streamed: neither side should hold the model twice). The download is left
out: the same bytes over the same link for both.

The checkpoint is random weights in CodeGen-350M's shape, stored as f16 on both sides (the real
Salesforce/codegen-350M-mono ships an f16 `pytorch_model.bin`).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_TORCH = "import sys; sys.modules['torch'] = None; from codegen_lsp.cli import main; sys.exit(main())"


def _copies(source: Path, root: Path) -> dict[str, Path]:
    """The checkpoint as f16 safetensors and as f16 pytorch_model.bin, in folders of the same name."""
    import numpy as np
    import torch
    from safetensors.numpy import load_file, save_file

    tensors = {k: v.astype(np.float16) if v.dtype == np.float32 else v
               for k, v in load_file(str(source / "model.safetensors")).items()}
    folders = {}
    for kind in ("safetensors", "bin"):
        folder = root / kind / "codegen-350M-shape"
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
        if kind == "safetensors":
            save_file(tensors, str(folder / "model.safetensors"))
        else:
            torch.save({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, folder / "pytorch_model.bin")
        folders[kind] = folder
    return folders


# Peak RSS is read by a small wrapper process: a child forked straight from this one (which holds the
# checkpoint copies and torch) would report this process's size as its own (Linux carries the high-water
# mark across fork and exec).
MEASURE = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def _timed(folder: Path, out: Path, threads: int | None) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one conversion in a child process."""
    command = [sys.executable, "-c", NO_TORCH, "convert", str(folder), str(out), "--outtype", "q8_0", "--check",
               "--quiet"] + (["--threads", str(threads)] if threads else [])
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"convert {folder} failed: {done.stderr.strip()[-300:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) * 1024


def run_checkpoint_formats(rounds: int = 2, threads: int | None = None) -> dict:
    from ..test_models import build_test_model, codegen_350m_shape

    model = build_test_model(codegen_350m_shape())
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        root = Path(tmp)
        folders = _copies(model.hf_dir, root)
        sizes = {k: sum(p.stat().st_size for p in f.iterdir() if p.suffix in (".safetensors", ".bin"))
                 for k, f in folders.items()}
        times: dict[str, list[float]] = {"safetensors": [], "bin": []}
        peaks: dict[str, int] = {"safetensors": 0, "bin": 0}
        outputs: dict[str, bytes] = {}
        for i in range(rounds):
            for kind in (("safetensors", "bin") if i % 2 == 0 else ("bin", "safetensors")):
                out = root / f"{kind}.gguf"
                seconds, peak = _timed(folders[kind], out, threads)
                times[kind].append(seconds)
                peaks[kind] = max(peaks[kind], peak)
                outputs[kind] = out.read_bytes()
                out.unlink()
        same = outputs["safetensors"] == outputs["bin"]
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"rounds": rounds, "weights_bytes": sizes, "seconds": times, "median_seconds": median,
            "ratio_bin_over_safetensors": median["bin"] / median["safetensors"], "peak_rss_bytes": peaks,
            "same_gguf": same}


def print_checkpoint_formats(report: dict) -> None:
    mib = 1 << 20
    for kind in ("safetensors", "bin"):
        print(f"{kind:<12} weights {report['weights_bytes'][kind] / mib:7.0f} MiB  "
              f"convert+q8_0+check median {report['median_seconds'][kind]:6.1f} s  "
              f"({', '.join(f'{s:.1f}' for s in report['seconds'][kind])})  "
              f"peak RSS {report['peak_rss_bytes'][kind] / mib:6.0f} MiB")
    print(f"ratio bin / safetensors: {report['ratio_bin_over_safetensors']:.2f}  "
          f"(same GGUF bit for bit: {'yes' if report['same_gguf'] else 'NO'})")
