"""When a suggestion's decoding ends and where its text is cut: one set of rules for the single
suggestion (llama_runner's loop) and for each of several candidates (candidates.py).

After each token, in this order: a stop string appeared ("stop"), the model started repeating itself
("loop", postprocess/repetition.py), an alternative candidate finished its first line of code
("line"), the token budget is spent ("length"). The end-of-text token and a cancel are the callers'
(they come before a token is taken). Runs in the engine process.
"""

from __future__ import annotations

from ..postprocess.repetition import RepetitionScanner
from .jobs import GenerationJob


class DecodeRules:
    """One sequence's rules: make one per suggestion or candidate (the loop scanner keeps state)."""

    def __init__(self, job: GenerationJob, before_cursor: str, max_tokens: int, first_line: bool = False) -> None:
        """`max_tokens`: the tokens this sequence may take; `first_line`: it ends with its first line of
        code (an alternative candidate)."""
        self.stop_strings = job.stop_strings
        self.scanner = RepetitionScanner(before_cursor) if job.stop_on_loop else None
        self.max_tokens = max_tokens
        self.first_line = first_line
        self._fed = 0  # characters of the text given to the scanner

    def check(self, text: str, tokens: int) -> str | None:
        """After a token: `text` is what the sequence spells so far (without what token healing spelled
        out, an unfinished character left off), `tokens` how many it took. The finish reason, or None
        to go on."""
        if self.stop_strings and any(s in text for s in self.stop_strings):
            return "stop"
        if self.scanner is not None:
            if self.scanner.feed(text[self._fed:]) is not None:
                return "loop"  # what follows would be cut anyway
            self._fed = len(text)
        if self.first_line and "\n" in text.lstrip():
            return "line"
        if tokens >= self.max_tokens:
            return "length"
        return None

    def cut(self, text: str, finish: str) -> str:
        """The suggestion's text for the whole decoded `text` that ended with `finish`: before the first
        stop string, before the repetition, or its first line."""
        if finish == "stop":
            return text[: min(text.find(s) for s in self.stop_strings if s in text)]
        if finish == "loop" and self.scanner is not None:
            return text[: self.scanner.cut]
        if finish == "line":
            return text[: text.index("\n", len(text) - len(text.lstrip()))]
        return text
