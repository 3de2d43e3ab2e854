"""Tree-sitter points: (row counted at "\\n", UTF-8 byte column)."""

from __future__ import annotations


def advance_point(point: tuple[int, int], inserted: bytes) -> tuple[int, int]:
    """Tree-sitter point reached after inserting `inserted` at `point`."""
    newlines = inserted.count(b"\n")
    if newlines == 0:
        return (point[0], point[1] + len(inserted))
    return (point[0] + newlines, len(inserted) - inserted.rfind(b"\n") - 1)
