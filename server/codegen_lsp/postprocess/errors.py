"""Does inserting a completion break the parse?"""

from __future__ import annotations

from tree_sitter import Node, Tree

from .parsing import parse_text, parse_with_insertion


def count_errors(node: Node) -> int:
    """ERROR and MISSING nodes under `node` (subtrees without errors skipped)."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        if current.has_error:
            stack.extend(current.children)
    return count


def introduces_parse_error(
    language: str | None, prefix: str, completion: str, suffix: str, tree: Tree | None = None
) -> bool:
    """True if prefix+completion+suffix has more ERROR/MISSING nodes than prefix+suffix.

    The whole buffer is compared, not a window around the cursor: an
    unclosed bracket in the completion surfaces as a MISSING node at the end
    of the enclosing block or file.  Comparing counts (rather than "any
    error") keeps suggestions usable while the user's own code is still
    broken, which is most of the time during typing.

    `tree`, if given, must be the parse of prefix+suffix (the document's
    tree); it is then reused, and the second parse is incremental.
    """
    if language is None or not completion:
        return False
    before = tree if tree is not None else parse_text(language, prefix + suffix)
    after = parse_with_insertion(language, prefix, completion, suffix, tree)
    if before is None or after is None:
        return False
    return count_errors(after.root_node) > count_errors(before.root_node)
