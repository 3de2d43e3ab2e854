"""Test support code (importable as `support`, see pythonpath in pyproject.toml)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STDLIB_DIR = Path(os.path.dirname(os.__file__))
MTPB_PATH = REPO_ROOT.parent / "shared" / "mtpb" / "mtpb.jsonl"
