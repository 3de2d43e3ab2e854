"""What a person answered, remembered per workspace root across sessions."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class WorkspaceMemory:
    """One answer (a short string) per workspace root, in one small JSON file (written atomically;
    unreadable = empty): the first-run offer's and the workspace-trust question's."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(root: Path | None) -> str:
        return str(root.resolve()) if root is not None else "<no workspace>"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        workspaces = data.get("workspaces") if isinstance(data, dict) else None
        return {k: v for k, v in workspaces.items() if isinstance(v, str)} if isinstance(workspaces, dict) else {}

    def recall(self, root: Path | None) -> str | None:
        return self._read().get(self.key(root))

    def remember(self, root: Path | None, what: str) -> None:
        """Raises OSError when the file cannot be written (the caller logs it: the answer still holds for
        this session)."""
        workspaces = self._read()
        workspaces[self.key(root)] = what
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"workspaces": workspaces}, out, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
