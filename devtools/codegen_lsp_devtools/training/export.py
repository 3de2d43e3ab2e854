"""A checkpoint packed for a machine that hands back at most 8 files of at most 16 MiB each.

`pack` copies the fp16 safetensors shards (each at most 15 MB) and puts everything else (config, shard
index, tokenizer, run state, corpus manifest) into one `meta.tar`, which also records each shard's
size and sha256. Shards are replaced first and `meta.tar` last, each through a temporary name, so a run
killed midway leaves either the last whole checkpoint or one that `unpack` refuses by name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

META = "meta.tar"
SHARDS = "shards.json"


class ExportError(Exception):
    """A packed checkpoint that is missing, cut off or mixed from two checkpoints."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace(src_bytes_or_path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    if isinstance(src_bytes_or_path, bytes):
        tmp.write_bytes(src_bytes_or_path)
    else:
        with src_bytes_or_path.open("rb") as src, tmp.open("wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
    os.replace(tmp, dest)


def pack(folder: Path, dest: Path, extra: list[Path] = ()) -> None:
    """Pack the checkpoint `folder` (and `extra` files, e.g. the corpus manifest) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    shards = sorted(folder.glob("*.safetensors"))
    for shard in shards:
        _replace(shard, dest / shard.name)
    for stale in set(dest.glob("*.safetensors")) - {dest / s.name for s in shards}:
        stale.unlink()
    record = {s.name: {"bytes": s.stat().st_size, "sha256": _sha256(s)} for s in shards}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".safetensors") + list(extra):
            tar.add(path, arcname=path.name)
        data = json.dumps(record, indent=1).encode()
        info = tarfile.TarInfo(SHARDS)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _replace(buffer.getvalue(), dest / META)


def unpack(src: Path, folder: Path) -> dict:
    """Check and unpack what `pack` wrote into the checkpoint folder `folder`; returns the run state."""
    meta = src / META
    if not meta.is_file():
        raise ExportError(f"{src}: no {META}; this is not a packed checkpoint (or the run wrote none)")
    try:
        with tarfile.open(meta) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and "/" not in m.name and m.name != ".."]
            files = {m.name: tar.extractfile(m).read() for m in members}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ExportError(f"{meta}: unreadable ({exc}); the copy is cut off or corrupt") from None
    if SHARDS not in files:
        raise ExportError(f"{meta}: has no {SHARDS}; not written by this packer")
    record = json.loads(files.pop(SHARDS))
    for name, expected in record.items():
        shard = src / name
        if not shard.is_file():
            raise ExportError(f"{shard}: missing; {META} lists it (a partial copy?)")
        if shard.stat().st_size != expected["bytes"] or _sha256(shard) != expected["sha256"]:
            raise ExportError(f"{shard}: does not match {META} (cut off, corrupt, or from another checkpoint)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in record:
        _replace(src / name, folder / name)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    state = folder / "train_state.json"
    return json.loads(state.read_text()) if state.exists() else {}
