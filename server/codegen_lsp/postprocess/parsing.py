"""Parsing a buffer with a completion inserted at the cursor."""

from __future__ import annotations

from tree_sitter import Tree

from ..syntax.languages import UnknownLanguage, make_parser
from ..syntax.points import advance_point


def parse_text(language: str | None, text: str) -> Tree | None:
    """Fresh parse, or None when there is no grammar for `language`."""
    if language is None:
        return None
    try:
        return make_parser(language).parse(text.encode("utf-8"))
    except UnknownLanguage:
        return None


def parse_with_insertion(
    language: str | None, prefix: str, completion: str, suffix: str, tree: Tree | None = None
) -> Tree | None:
    """Parse of prefix+completion+suffix.

    With `tree` (the parse of prefix+suffix, e.g. the document's tree) the
    parse is incremental: only the region around the insertion is redone.
    """
    if tree is None:
        return parse_text(language, prefix + completion + suffix)
    assert language is not None, "a tree implies a language"
    prefix_bytes = prefix.encode("utf-8")
    inserted = completion.encode("utf-8")
    start = advance_point((0, 0), prefix_bytes)
    edited = tree.copy()  # Tree.edit mutates; the caller's tree stays intact
    edited.edit(
        start_byte=len(prefix_bytes),
        old_end_byte=len(prefix_bytes),
        new_end_byte=len(prefix_bytes) + len(inserted),
        start_point=start,
        old_end_point=start,
        new_end_point=advance_point(start, inserted),
    )
    return make_parser(language).parse(prefix_bytes + inserted + suffix.encode("utf-8"), edited)
