"""`models pull`: download a registry model with huggingface_hub, convert, quantize, check, cache.

Downloads are resumable and pinned: the commit a revision resolved to is recorded in
`models-lock.json` in the cache and reused by later pulls of the same model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..convert import convert_checkpoint
from ..convert.writer import atomic_output
from ..engine.loadcheck import check_model_loads
from .registry import RegistryEntry

CHECKPOINT_FILES = ["config.json", "*.json", "*.txt", "modeling_*.py", "tokenization_*.py", "*.tiktoken"]
LOCK_FILE = "models-lock.json"


class PullError(Exception):
    pass


@dataclass(frozen=True)
class PulledModel:
    name: str
    path: Path
    commit: str
    quantization: str


def model_path(cache: Path, entry: RegistryEntry, quantization: str | None = None) -> Path:
    return cache / "models" / f"{entry.name}-{quantization or entry.quantization}.gguf"


def _read_lock(cache: Path) -> dict[str, str]:
    try:
        return json.loads((cache / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_lock(cache: Path, lock: dict[str, str]) -> None:
    with atomic_output(cache / LOCK_FILE) as tmp:
        tmp.write_text(json.dumps(lock, indent=1, sort_keys=True), encoding="utf-8")


def download_checkpoint(entry: RegistryEntry, cache: Path, revision: str, endpoint: str | None) -> Path:
    """Fetch config, tokenizer and weights (safetensors when the repo has them, else .bin)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    kwargs = dict(repo_id=entry.repo_id, revision=revision, cache_dir=str(cache / "hub"), endpoint=endpoint)
    try:
        folder = Path(snapshot_download(allow_patterns=CHECKPOINT_FILES + ["*.safetensors"], **kwargs))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(allow_patterns=CHECKPOINT_FILES + ["*.bin"], **kwargs))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        where = endpoint or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise PullError(f"cannot download {entry.repo_id}@{revision} from {where}: {exc}") from None
    return folder


def pull_model(entry: RegistryEntry, cache: Path, quantization: str | None = None, endpoint: str | None = None,
               progress: bool = True, force: bool = False) -> PulledModel:
    quant = quantization or entry.quantization
    out = model_path(cache, entry, quant)
    lock = _read_lock(cache)
    if out.exists() and not force and entry.name in lock:
        return PulledModel(entry.name, out, lock[entry.name], quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    revision = lock.get(entry.name, entry.revision)
    folder = download_checkpoint(entry, cache, revision, endpoint)
    commit = folder.name  # huggingface_hub's snapshot folders are named by commit id
    convert_checkpoint(folder, out, quant, mp_num=entry.mp_num, progress=progress)
    try:
        check_model_loads(out)
    except Exception:
        out.unlink(missing_ok=True)
        raise
    lock[entry.name] = commit
    _write_lock(cache, lock)
    return PulledModel(entry.name, out, commit, quant)
