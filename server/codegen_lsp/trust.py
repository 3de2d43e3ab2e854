"""Workspace trust, as plain decisions: which values of a repository's `codegen-lsp.toml` may not take
effect before the person agrees, how the question names them, and how the answer is remembered.

A cloned repository is not the user: its file may set `remoteUrl` (the buffer, and chunks of other files,
would go to that host) or point `model` at any file on the machine (llama.cpp's native parser reads it).
Those values wait for a yes (features/trust.py asks); everything else in the file applies at once. The
same values from the user's own editor settings never ask: the user chose them.

The answer is remembered per workspace root with a fingerprint of the values it was given for, so a
file that later changes its URL asks again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .workspace_memory import WorkspaceMemory

REMOTE_KEYS = ("remoteUrl", "remoteApiKey", "remoteModel")  # they send code (and a key) elsewhere
MODEL_KEY = "model"
# What would let files the exclusions keep from the model reach it: `!` re-includes, git's ignores off.
EXCLUDE_KEY, GITIGNORE_KEY = "exclude", "respectGitignore"
STATE_FILE = "workspace-trust.json"
ALLOW_TITLE = "Allow"
DENY_TITLE = "Don't allow"


@dataclass(frozen=True)
class Pending:
    """Values of the workspace file held back until the person agrees (empty: nothing to ask)."""

    values: dict[str, Any]

    def __bool__(self) -> bool:
        return bool(self.values)

    def without(self, keys: set[str]) -> "Pending":
        return Pending({k: v for k, v in self.values.items() if k not in keys})

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def anchor_model_path(values: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """A relative `model` path in the workspace file means one in the workspace, not in the server's
    working directory (which an editor need not set to the root)."""
    model = values.get(MODEL_KEY)
    if not isinstance(model, str) or root is None or not _is_path(model):
        return values
    path = Path(model).expanduser()
    return values if path.is_absolute() else {**values, MODEL_KEY: str(root / path)}


def split_workspace_values(values: dict[str, Any] | None, root: Path | None, cache: Path,
                           user_keys: set[str] = frozenset()) -> tuple[dict[str, Any], Pending]:
    """(values that apply now, values that wait for consent). Keys the user's own settings set are not
    asked about: the user's value wins anyway."""
    if not values:
        return {}, Pending({})
    now, held = dict(values), {}
    for key in REMOTE_KEYS:
        if key in now and now[key] not in (None, "") and key not in user_keys:
            held[key] = now.pop(key)
        elif key in user_keys:
            now.pop(key, None)
    model = now.get(MODEL_KEY)
    if isinstance(model, str) and model and MODEL_KEY not in user_keys and _is_path(model) \
            and not _inside(Path(model).expanduser(), [p for p in (root, cache) if p is not None]):
        held[MODEL_KEY] = now.pop(MODEL_KEY)
    if now.get(GITIGNORE_KEY) is False and GITIGNORE_KEY not in user_keys:
        held[GITIGNORE_KEY] = now.pop(GITIGNORE_KEY)
    patterns = now.get(EXCLUDE_KEY)
    if isinstance(patterns, list) and EXCLUDE_KEY not in user_keys and \
            any(isinstance(p, str) and p.lstrip().startswith("!") for p in patterns):
        held[EXCLUDE_KEY] = patterns  # the whole list once allowed; its stricter patterns apply now
        now[EXCLUDE_KEY] = [p for p in patterns if not (isinstance(p, str) and p.lstrip().startswith("!"))]
    return now, Pending(held)


def question(pending: Pending, file: Path | None) -> str:
    """The message of the one request per workspace: what would happen, named by host or path."""
    what = []
    url = pending.values.get("remoteUrl")
    if url:
        host = urlsplit(url if "://" in str(url) else f"http://{url}").netloc or str(url)
        what.append(f"send your code to {host} (remoteUrl {url})")
    elif "remoteApiKey" in pending.values or "remoteModel" in pending.values:
        what.append("change which remote model and key your editor's remoteUrl uses")
    if MODEL_KEY in pending.values:
        what.append(f"load the model file {pending.values[MODEL_KEY]}, outside this workspace")
    loosened = [f"exclude {p}" for p in pending.values.get(EXCLUDE_KEY, ()) if isinstance(p, str) and
                p.lstrip().startswith("!")] + (["respectGitignore false"] if GITIGNORE_KEY in pending.values else [])
    if loosened:
        what.append(f"let files it would keep from the model reach it ({', '.join(loosened)})")
    where = str(file) if file is not None else "This workspace's codegen-lsp.toml"
    return f"{where} asks codegen-lsp to {' and to '.join(what)}. Allow it for this workspace?"


def ignored_line(pending: Pending, why: str) -> str:
    keys = ", ".join(sorted(pending.values))
    return f"ignoring {keys} from this workspace's codegen-lsp.toml ({why}); running as if they were absent"


def recall(memory: WorkspaceMemory, root: Path | None, pending: Pending) -> bool | None:
    """True/False when the person already answered for these very values here, else None (ask)."""
    answer = memory.recall(root)
    if answer is None:
        return None
    verdict, _, fingerprint = answer.partition(":")
    if fingerprint != pending.fingerprint() or verdict not in ("allow", "deny"):
        return None
    return verdict == "allow"


def remember(memory: WorkspaceMemory, root: Path | None, pending: Pending, allowed: bool) -> None:
    memory.remember(root, f"{'allow' if allowed else 'deny'}:{pending.fingerprint()}")


def trust_memory(cache: Path) -> WorkspaceMemory:
    return WorkspaceMemory(cache / "state" / STATE_FILE)


def _is_path(setting: str) -> bool:
    """The same test as models/resolve.py: a .gguf name, an existing file, or anything with a slash;
    otherwise a registry name, which resolves into the model cache."""
    return setting.endswith(".gguf") or "/" in setting or Path(setting).expanduser().exists()


def _inside(path: Path, folders: list[Path]) -> bool:
    try:
        real = path.resolve()  # symlinks followed: a link in the repository to /elsewhere is elsewhere
    except (OSError, RuntimeError):
        return False
    for folder in folders:
        try:
            real.relative_to(folder.resolve())
            return True
        except (ValueError, OSError, RuntimeError):
            continue
    return False
