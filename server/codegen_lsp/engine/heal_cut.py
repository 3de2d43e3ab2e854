"""Where token healing cuts the text before the cursor: one rule for the in-process engine (healing.py,
which also masks what the model may generate) and for a remote one (remote.py, which cuts the text it
sends). Pure, and light: the server process imports it through remote.py (no numpy here)."""

from __future__ import annotations


def heal_cut(text: str, n_tokens: int, last_piece: bytes) -> tuple[bytes, str]:
    """What healing takes off `text` (which ends at the cursor and tokenizes to `n_tokens` tokens, the last
    spelling `last_piece`), and why nothing when it takes nothing: one rule for the in-process engine and
    for a remote one (which cuts the text it sends)."""
    if not n_tokens or not text or text.endswith("\n"):
        # Right after a line break is a token boundary in every tokenizer: nothing to heal.
        return b"", ""
    if not last_piece:
        return b"", "the text before the cursor ends in a token with no text"
    if not text.encode("utf-8", "replace").endswith(last_piece):
        return b"", f"the last token's text {last_piece!r} is not how the text before the cursor ends"
    if n_tokens == 1:
        return b"", "the prompt is a single token"
    return last_piece, ""
