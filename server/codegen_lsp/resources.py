"""Where the project's data folders (grammars/, models/) are, in a checkout or an installed wheel.

`_resources/` holds links to the top-level folders; building a wheel copies what they point to.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

_RESOURCES = Path(__file__).resolve().parent / "_resources"


def resource_dir(name: str) -> Path:
    return (_RESOURCES / name).resolve()


def cache_dir() -> Path:
    """The per-user cache for pulled models (override with CODEGEN_LSP_CACHE)."""
    override = os.environ.get("CODEGEN_LSP_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("codegen-lsp"))
