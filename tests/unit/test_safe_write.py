"""`replace_unchanged`: what `synthesize --write` rewrites a file with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codegen_lsp.safe_write import FileChanged, content_hash, replace_unchanged


def test_replaces_a_file_that_did_not_change_and_keeps_its_mode(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_bytes(b"old\r\n")
    path.chmod(0o640)
    replace_unchanged(path, b"new\r\n", content_hash(b"old\r\n"))
    assert path.read_bytes() == b"new\r\n"
    assert path.stat().st_mode & 0o7777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]  # no temporary file left


def test_refuses_a_file_changed_since_it_was_read(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_bytes(b"old\n")
    read = content_hash(path.read_bytes())
    path.write_bytes(b"old\nsaved by the editor meanwhile\n")
    with pytest.raises(FileChanged, match="changed since it was read; nothing was written"):
        replace_unchanged(path, b"new\n", read)
    assert path.read_bytes() == b"old\nsaved by the editor meanwhile\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]


def test_refuses_a_file_removed_since_it_was_read(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_bytes(b"old\n")
    read = content_hash(path.read_bytes())
    path.unlink()
    with pytest.raises(FileChanged, match="removed since it was read"):
        replace_unchanged(path, b"new\n", read)
    assert list(tmp_path.iterdir()) == []


def test_writes_through_a_symlink_and_keeps_the_link(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "a.py"
    target.write_bytes(b"old\n")
    target.chmod(0o600)
    link = tmp_path / "link.py"
    link.symlink_to(os.path.relpath(target, tmp_path))
    assert replace_unchanged(link, b"new\n", content_hash(b"old\n")) == target
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(target, tmp_path)
    assert target.read_bytes() == b"new\n" and target.stat().st_mode & 0o7777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.py", "real"]
    assert [p.name for p in real.iterdir()] == ["a.py"]
