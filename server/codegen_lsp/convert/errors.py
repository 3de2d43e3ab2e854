"""One error type for everything that can go wrong while converting, always naming the file."""

from __future__ import annotations

from pathlib import Path


class ConversionError(Exception):
    """A conversion problem a person can act on: `str()` is one line naming the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem
