"""The server's structured notifications: what status bars, tests and benches read instead of log text.

`codegenLsp/status` says what the model is doing; `codegenLsp/stats` reports every suggestion the server
computes (asked for, speculative or warmed), one notification each. The log lines next to them are for
people only: nothing parses them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypedDict

STATUS_NOTIFICATION = "codegenLsp/status"
STATS_NOTIFICATION = "codegenLsp/stats"
EXCLUSION_NOTIFICATION = "codegenLsp/exclusion"


class Status(TypedDict):
    """`codegenLsp/status` params."""

    state: Literal["none", "loading", "ready", "generating", "error"]
    model: str | None  # the model file's name
    detail: str  # for people (a status bar's tooltip): what is loaded, or why it failed
    path: str | None  # the model file the server loads or runs (None: remote without a local GGUF)
    remote: str | None  # remoteUrl when generation runs on an inference server
    crashes: int | None  # only on the "error" sent for an engine crash: the crashes in this streak
    builtin: bool  # the model is the built-in demo model (no `model` setting); its detail says so too
    origin: str | None  # where the model came from, in words: the setting, a registry source, built-in


STATUS_FIELDS = tuple(Status.__annotations__)


class ExclusionNotice(TypedDict):
    """`codegenLsp/exclusion` params: an open document the server will not complete (`exclude`,
    `respectGitignore`, `disabledLanguages`; exclusion.py), sent when it is opened so, and again whenever
    that changes (the settings changed, a .gitignore changed): `reason` None means it is served again."""

    uri: str
    reason: str | None  # the rule that matched: "matches .env", "ignored by git: build/ in .gitignore:1", ...


def excluded(rule: str) -> str:
    """The stats reason (and the log's) for a document no model may see."""
    return f"excluded ({rule})"


Kind = Literal["request", "speculative", "warm"]
Source = Literal["model", "typed-through cache", "recent-context cache", "none"]


@dataclass(frozen=True)
class SuggestionStats:
    """`codegenLsp/stats` params: one suggestion the server computed, for a request or ahead of one.

    kind: "request" (inline completion, completion, "Complete here"), "speculative" (the suggestion after
    one just given, as if accepted) or "warm" (an edit that settled without a request, or a warm-up: the
    prompt at the cursor evaluated when a document was opened or focused, or the full window built after a
    short one answered; those decode nothing, finish "warm", reason "warmed").
    source: "model", "typed-through cache", "recent-context cache", or "none" (nothing could run: no
    model, a prompt the format cannot build, superseded before the engine took it).
    finish: the engine's finish reason ("end", "stop", "length", "loop", "cancelled", "error"); None when the
    model was not called.
    reason: "ok" when there is text, else why there is none: the post-processing reason ("empty
    completion", "completion introduces a parse error", "completion only repeats itself: ...", ...),
    "superseded by a newer request",
    "request cancelled", "document changed during generation (version N)", "no model available (...)",
    "excluded (matches .env)" (the document must not reach a model: source "none", the rule that matched),
    "the model did not answer within N ms" (requestTimeoutMs), or the remote engine's error. A speculative or warmed suggestion is never shown, so its "ok" means
    it went into the cache."""

    uri: str
    version: int
    kind: Kind
    source: Source
    reason: str
    finish: str | None = None
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0  # after KV-cache reuse
    generated_tokens: int = 0
    max_tokens: int = 0  # the job's token budget (0 without a model call)
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    drafted_tokens: int = 0  # prompt-lookup drafts verified, and of those accepted (engine/speculation.py)
    accepted_tokens: int = 0
    # Which prompt window the model answered from: "full", or "short" (the text nearest the cursor, while the
    # full window was not in the cache yet: firstSuggestionMs); "" without a model call.
    window: str = ""

    def to_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, params: Any) -> "SuggestionStats":
        """From the notification's params: a dict, or the object a pygls client turns it into."""
        get = params.get if isinstance(params, dict) else (lambda key, default=None: getattr(params, key, default))
        values = {f.name: get(_camel(f.name), None) for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if v is not None or k == "finish"})

    @property
    def model_call(self) -> bool:
        """The engine ran this job to its end (not cancelled): its token counts are a whole generation."""
        return self.source == "model" and self.finish not in (None, "cancelled")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
