"""The default model's training corpus: permissively licensed Python source found on this machine.

The running interpreter's standard library (PSF) and installed distributions whose metadata names an
MIT, BSD, Apache, ISC or PSF licence. Files are deduplicated by content hash and split by file:
a stable 2 % (by hash) is held out for evaluation. A manifest records every package, its version,
its licence and its file count, so the model card can say exactly what the model saw.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import sysconfig
from dataclasses import asdict, dataclass, field
from pathlib import Path

PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|ISC|PSF|Python Software Foundation|0BSD|Unlicense)\b", re.IGNORECASE)
HELD_OUT_PER_MILLE = 20  # 2 % of files, chosen by content hash (stable across machines and runs)
MAX_FILE_BYTES = 256 * 1024  # generated tables and vendored blobs teach nothing useful


@dataclass(frozen=True)
class SourceFile:
    path: str
    package: str
    sha256: str
    held_out: bool


@dataclass
class PackageEntry:
    name: str
    version: str
    licence: str
    files: int = 0


@dataclass
class Corpus:
    files: list[SourceFile] = field(default_factory=list)
    packages: dict[str, PackageEntry] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # package → why it was left out

    def split(self, held_out: bool) -> list[SourceFile]:
        return [f for f in self.files if f.held_out == held_out]

    def manifest(self) -> dict:
        return {"packages": [asdict(p) for p in sorted(self.packages.values(), key=lambda p: p.name)],
                "skipped": dict(sorted(self.skipped.items())),
                "files": len(self.files), "held_out_files": len(self.split(True)),
                "held_out_rule": f"sha256 of the file's bytes mod 1000 < {HELD_OUT_PER_MILLE}"}

    def write_manifest(self, path: Path) -> None:
        path.write_text(json.dumps(self.manifest(), indent=1) + "\n", encoding="utf-8")


def licence_of(dist: importlib.metadata.Distribution) -> str:
    """The licence a distribution declares: License-Expression, License, or its licence classifiers."""
    meta = dist.metadata
    declared = [meta.get("License-Expression") or "", (meta.get("License") or "").split("\n")[0][:100]]
    declared += [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(d for d in declared if d.strip()) or "unknown"


def _is_permissive(licence: str) -> bool:
    return bool(PERMISSIVE.search(licence)) and not re.search(r"\b(GPL|AGPL|LGPL|MPL|EPL|CDDL)\b", licence)


def _python_files(root: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not any(part in exclude for part in p.parts))


def _add(corpus: Corpus, seen: set[str], path: Path, package: str) -> bool:
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not data.strip() or len(data) > MAX_FILE_BYTES:
        return False
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:
        return False
    seen.add(digest)
    held_out = int(digest, 16) % 1000 < HELD_OUT_PER_MILLE
    corpus.files.append(SourceFile(str(path), package, digest, held_out))
    return True


def build_corpus(include_packages: bool = True) -> Corpus:
    """Collect the corpus (file list and manifest; the text is read when training)."""
    corpus, seen = Corpus(), set()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    import platform

    entry = PackageEntry("python-stdlib", platform.python_version(), "PSF-2.0")
    for path in _python_files(stdlib, exclude=("site-packages", "dist-packages")):
        entry.files += _add(corpus, seen, path, entry.name)
    corpus.packages[entry.name] = entry
    if not include_packages:
        return corpus
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        name = dist.metadata["Name"] or "?"
        if name in corpus.packages or name in corpus.skipped:
            continue
        licence = licence_of(dist)
        if not _is_permissive(licence):
            corpus.skipped[name] = f"licence not known to be permissive: {licence}"
            continue
        entry = PackageEntry(name, dist.version, licence)
        for file in dist.files or []:
            if file.suffix == ".py":
                entry.files += _add(corpus, seen, Path(dist.locate_file(file)), name)
        if entry.files:
            corpus.packages[name] = entry
    return corpus
