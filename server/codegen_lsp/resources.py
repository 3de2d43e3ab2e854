"""The one place that knows where codegen-lsp's files are, the same way in a checkout and in an installed wheel.

- `resource_dir("grammars")`, `resource_dir("models")`: the data folders. In a checkout
  `codegen_lsp/_resources/` holds links to the top-level `grammars/` and `models/`; building a wheel
  copies what they point to into `codegen_lsp/_resources/` (package-data in pyproject.toml), so the
  same path works in both.
- `package_path(...)`: a file or folder inside the package itself (`package_path("engine")`).
- `checkout_root()`: the source checkout this code runs from, or None in an installed wheel (only for
  things that are never shipped, such as `../shared/` data beside a checkout).
- `cache_dir()`: the per-user cache (platformdirs).

Nothing else in the package finds a data file by its own `__file__`, `parents[...]` or importlib.resources
(engine/process.py puts the package's own root on the engine process's PYTHONPATH from `__file__`).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

PACKAGE_DIR = Path(__file__).resolve().parent
_RESOURCES = PACKAGE_DIR / "_resources"
RESOURCE_NAMES = ("grammars", "models")


def resource_dir(name: str) -> Path:
    """A shipped data folder (`grammars` or `models`)."""
    if name not in RESOURCE_NAMES:
        raise ValueError(f"unknown resource folder {name!r} (known: {', '.join(RESOURCE_NAMES)})")
    return (_RESOURCES / name).resolve()


def resource_path(name: str, *parts: str) -> Path:
    """A file inside a shipped data folder, e.g. `resource_path("grammars", "python", "comments.scm")`."""
    return resource_dir(name).joinpath(*parts)


def package_path(*parts: str) -> Path:
    """A file inside the package itself, e.g. `package_path("engine")`."""
    return PACKAGE_DIR.joinpath(*parts)


def checkout_root() -> Path | None:
    """The repository this code runs from (an editable install or PYTHONPATH=server), else None."""
    root = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR == root / "server" / "codegen_lsp" and (root / "pyproject.toml").is_file():
        return root
    return None


def cache_dir() -> Path:
    """The per-user cache for pulled models (override with CODEGEN_LSP_CACHE)."""
    override = os.environ.get("CODEGEN_LSP_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("codegen-lsp"))
