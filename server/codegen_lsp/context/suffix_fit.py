"""Fill in the middle with a prefix-only model: when the cursor sits on a blank line with code below it, the
code below says which line belongs there (`paths.append(...)` before `return paths`, not another
`with open(...)`). A left-to-right prompt cannot show that code to the model, so the engine decodes
several first lines and returns first the one the text below follows best (engine/candidates.py
`suffix_scores`). This module decides when, and which text below is scored: pure functions.
"""

from __future__ import annotations

# Candidate first lines decoded for the choice: the right line was 7th of the model's first tokens on
# the demo cursor (docs/demo/steps.py) with SmolLM2-135M; more cost a batch row each per step.
SUFFIX_FIT_CANDIDATES = 8
SUFFIX_FIT_LINES = 2  # non-blank lines below the cursor that are scored
SUFFIX_FIT_MAX_CHARS = 240


def suffix_fit_text(prefix: str, suffix: str) -> str:
    """The text after the cursor to score candidates against ("" when the choice does not apply): the
    cursor is on an otherwise blank line (a whole line is being written), and code follows. It starts
    with the cursor line's line break and ends after the SUFFIX_FIT_LINES-th non-blank line below."""
    line_start = prefix.rfind("\n") + 1
    if prefix[line_start:].strip():
        return ""
    line_end = suffix.find("\n")
    if line_end < 0 or suffix[:line_end].strip():
        return ""
    taken, non_blank = [], 0
    for line in suffix[line_end + 1:].split("\n"):
        taken.append(line)
        if line.strip():
            non_blank += 1
            if non_blank == SUFFIX_FIT_LINES:
                break
    if non_blank == 0:
        return ""
    text = "\n" + "\n".join(taken).rstrip()
    return text[:SUFFIX_FIT_MAX_CHARS]
