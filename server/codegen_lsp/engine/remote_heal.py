"""Token healing over an OpenAI-compatible API (engine/remote.py): the same cut as in-process
(heal_cut.py), made by the local copy of the GGUF's tokenizer, and a way to make the server's
answer begin with the text that was cut.

- "grammar": a llama.cpp grammar (GBNF) that admits only answers beginning with the cut text. llama.cpp
  matches a token's bytes against the grammar, so the tokens it allows are those that spell a beginning
  of the cut text or begin with all of it: the in-process healer's mask. llama-server and
  llama_cpp.server both take `grammar` on /v1/completions.
- "check": the prompt is sent cut and unconstrained; the answer is read on while it agrees with the cut
  text, and stripped of it. When it does not begin with it, the stream is closed at once and the request
  sent again, once, with the whole prompt (the one extra round-trip, in this case only).

Which way, per server kind (`/v1/models` `owned_by`): docs/benchmarks.md "Token healing over the API".
A server whose tokenizer is not the local GGUF's (a probe string tokenized there and here, see
`probe_request`) would be cut at the wrong place: healing is then off, and the status says why.
Pure: strings and dicts in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `owned_by` in /v1/models, as each server fills it in.
SERVER_KINDS = {"llamacpp": "llama-server", "me": "llama_cpp.server", "vllm": "vLLM"}
GRAMMAR_KINDS = frozenset({"llama-server", "llama_cpp.server"})  # both run llama.cpp's grammar sampler
# Code, indentation, a non-ASCII word and an arrow: tokenizers that differ almost never agree on all of it.
PROBE = 'def fetch(url):\n    return café["→"] + 42  # ok\n'


def server_kind(owned_by: Any) -> str:
    return SERVER_KINDS.get(owned_by, "OpenAI-compatible") if isinstance(owned_by, str) else "OpenAI-compatible"


def heal_mode(kind: str, wanted: str = "auto") -> str:
    """"grammar" | "check" | "off": `wanted` unless "auto", which picks by server kind."""
    if wanted != "auto":
        return wanted
    return "grammar" if kind in GRAMMAR_KINDS else "check"


def probe_request(kind: str, remote_model: str | None) -> tuple[str, dict[str, Any]] | None:
    """(path, body) of the server's own tokenize endpoint for PROBE; None: this kind has none we know."""
    if kind == "llama-server":
        return "/tokenize", {"content": PROBE, "add_special": False, "parse_special": False}
    if kind == "llama_cpp.server":
        return "/extras/tokenize", {"input": PROBE}
    if kind == "vLLM":
        return "/tokenize", {"prompt": PROBE, "add_special_tokens": False, **({"model": remote_model} if remote_model else {})}
    return None


def probe_mismatch(answer: Any, local: list[int]) -> str | None:
    """Why the server's tokens for PROBE are not the local GGUF's (None: they agree). A leading beginning-of-
    text token is not counted: llama_cpp.server adds one."""
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        return "its tokenize answer has no token list"
    if len(tokens) == len(local) + 1:
        tokens = tokens[1:]
    if tokens == local:
        return None
    return f"a probe string takes {len(tokens)} tokens there and {len(local)} with codegenLsp.model"


def grammar(removed: str) -> str:
    """A GBNF grammar for answers that begin with `removed` and go on with anything."""
    return f'root ::= "{_gbnf_literal(removed)}" [^\\x00]*'


def _gbnf_literal(text: str) -> str:
    escaped = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(escaped.get(c, c if c >= " " else f"\\x{ord(c):02x}") for c in text)


@dataclass
class HealedStream:
    """The text a healed answer spells after `removed`, as the stream brings it."""

    removed: str
    diverged: bool = False  # the answer does not begin with `removed`

    def after(self, raw: str) -> str | None:
        """What `raw` (the answer so far) says after the removed text; None while it is still spelling it
        out, or once it has gone another way (`diverged`)."""
        if raw.startswith(self.removed):
            return raw[len(self.removed):]
        if not self.removed.startswith(raw):
            self.diverged = True
        return None
