"""Rewrite a file the user may be editing: atomically, and never over changes made since it was read."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path


class FileChanged(Exception):
    """The file is no longer what was read: writing would lose what changed it."""


def _removed(path: Path) -> FileChanged:
    return FileChanged(f"{path} was removed since it was read; nothing was written")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def replace_unchanged(path: Path, data: bytes, read_hash: str) -> Path:
    """Replace the contents of `path` with `data` unless its bytes no longer hash to `read_hash` (an editor
    saved it, or it was removed, since it was read): then FileChanged, and nothing is written.

    A symlink is followed (its target is replaced, the link stays a link); the target's mode is kept. The
    data goes to a temporary file in the target's folder, fsynced, then renamed over the target, and the
    folder is fsynced: a crash leaves the old file or the new one, never a mix. The last check is made just
    before the rename; only an edit saved within that instant can still be lost. Returns the target."""
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        raise _removed(path) from None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        try:
            now = content_hash(target.read_bytes())
        except FileNotFoundError:
            raise _removed(path) from None
        if now != read_hash:
            raise FileChanged(f"{path} changed since it was read; nothing was written (run it again on the "
                              f"new contents)")
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)
    return target
