"""A checkpoint packed for a machine that hands back few, small files: what comes back cut off, corrupt,
partial or mixed from two checkpoints is refused by name; a whole one unpacks as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegen_lsp_devtools.training.export import META, ExportError, pack, unpack


def checkpoint(folder: Path, step: int, shards: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        (folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors").write_bytes(bytes([step, i]) * 5000)
    (folder / "config.json").write_text(json.dumps({"n_layer": 1}))
    (folder / "train_state.json").write_text(json.dumps({"step": step, "loss": 1.5}))
    return folder


def test_a_whole_pack_unpacks_as_it_was(tmp_path: Path):
    manifest = tmp_path / "corpus_manifest.json"
    manifest.write_text("{}")
    pack(checkpoint(tmp_path / "a", 3), tmp_path / "out", [manifest])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        META, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    state = unpack(tmp_path / "out", tmp_path / "back")
    assert state == {"step": 3, "loss": 1.5}
    for path in (tmp_path / "a").iterdir():
        assert (tmp_path / "back" / path.name).read_bytes() == path.read_bytes()
    assert (tmp_path / "back" / "corpus_manifest.json").exists()


def test_a_later_pack_replaces_the_earlier_one_and_its_stale_shards(tmp_path: Path):
    pack(checkpoint(tmp_path / "a", 3, shards=3), tmp_path / "out")
    pack(checkpoint(tmp_path / "b", 6, shards=2), tmp_path / "out")
    assert len(list((tmp_path / "out").glob("*.safetensors"))) == 2
    assert unpack(tmp_path / "out", tmp_path / "back")["step"] == 6


@pytest.mark.parametrize("damage, words", [
    (lambda out: (out / "model-00002-of-00002.safetensors").write_bytes(b"\0" * 100), "does not match"),
    (lambda out: (out / "model-00001-of-00002.safetensors").unlink(), "missing"),
    (lambda out: (out / META).write_bytes((out / META).read_bytes()[:700]), "unreadable"),
    (lambda out: (out / META).unlink(), "not a packed checkpoint"),
])
def test_damaged_returns_are_refused_by_name(tmp_path: Path, damage, words):
    pack(checkpoint(tmp_path / "a", 3), tmp_path / "out")
    damage(tmp_path / "out")
    with pytest.raises(ExportError, match=words):
        unpack(tmp_path / "out", tmp_path / "back")
    assert not (tmp_path / "back").exists()  # nothing half-written where the converter looks


def test_shards_from_another_checkpoint_are_refused(tmp_path: Path):
    """A run killed between replacing the shards and replacing meta.tar: the shards are newer."""
    pack(checkpoint(tmp_path / "a", 3), tmp_path / "out")
    newer = checkpoint(tmp_path / "b", 6)
    (tmp_path / "out" / "model-00001-of-00002.safetensors").write_bytes(
        (newer / "model-00001-of-00002.safetensors").read_bytes())
    with pytest.raises(ExportError, match="from another checkpoint"):
        unpack(tmp_path / "out", tmp_path / "back")
