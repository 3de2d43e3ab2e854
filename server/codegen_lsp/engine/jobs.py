"""What the server asks an engine for, and what it gets back. Shared by every backend."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ..context.prompt import Segment
from ..gguf.inspect import ModelFileInfo


@dataclass(frozen=True)
class EngineConfig:
    model_path: Path
    n_ctx: int = 2048
    n_threads: int | None = None
    n_gpu_layers: int = 0
    seed: int = 0


class CancelFlag:
    """A job's cancel: `threading.Event`'s set / is_set / wait, plus hooks run when it is set.

    The hooks are how a cancel reaches an engine in another process at once (a shared flag the
    child checks before every token) instead of as a message queued behind the work."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []

    @classmethod
    def linked(cls, parent: "CancelFlag") -> "CancelFlag":
        """A flag of its own (a turn's timeout) that is also set when `parent` (the whole run) is."""
        child = cls()
        parent.add_hook(child.set)
        return child

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def add_hook(self, hook: Callable[[], None]) -> None:
        """Run `hook` when the flag is set (now, if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._hooks.append(hook)
                return
        hook()


class Preemption:
    """An engine's background jobs (warm-ups, suggestions computed ahead) not answered yet: every one is
    cancelled the moment a foreground job is submitted, so they never hold the model when a person asks.
    One per engine; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: set[CancelFlag] = set()

    def submitted(self, job: "GenerationJob", future: Future) -> None:
        with self._lock:
            if job.background:
                self._flags.add(job.cancel)
                future.add_done_callback(lambda _f, flag=job.cancel: self._done(flag))
                return
            preempted, self._flags = list(self._flags), set()
        for flag in preempted:
            flag.set()

    def _done(self, flag: CancelFlag) -> None:
        with self._lock:
            self._flags.discard(flag)


@dataclass
class GenerationJob:
    segments: list[Segment]
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 0.95
    stop_strings: tuple[str, ...] = ()
    prefix_share: float = 0.75
    # Token healing (engine/healing.py): the text before the cursor loses its last token, which the
    # first generated tokens must spell out again. The remote engine cuts the text it sends the same way
    # and makes the answer begin with the cut text (engine/remote_heal.py).
    heal: bool = True
    # Stop decoding once the output starts looping (postprocess/repetition.py, with the text before the
    # cursor as context); the text comes back cut there, finish "loop". Both engines (decode_rules.py); the
    # remote one closes the stream there.
    stop_on_loop: bool = True
    # Suggestions wanted: more than one decodes that many sequences together after one prompt
    # evaluation (engine/candidates.py). Local engine only; the remote one returns one.
    candidates: int = 1
    # Greedy decoding drafts tokens from the context and verifies them in one batch
    # (engine/speculation.py). Local engine only.
    prompt_lookup: bool = False
    # Prefix-only models on a blank line with code below (context/suffix_fit.py): the text after the
    # cursor that the candidates are scored against; the first line that text follows best is returned
    # first (engine/candidates.py `suffix_scores`). Local engine only; "" = off.
    suffix_fit: str = ""
    cancel: CancelFlag = field(default_factory=CancelFlag)
    # The caller's deadline for this job, in seconds from submit(); None: none. The engine process's
    # supervisor (engine/process.py) cancels the job at the deadline and, if the process has not answered
    # DEADLINE_GRACE_S (0.5 s) later, resolves the future itself: finish "error", `error` "the model did
    # not answer within N ms" (the late answer is dropped). A process that meanwhile makes no progress
    # is killed and replaced.
    timeout_s: float | None = None
    # Someone waits for foreground jobs; background ones (warm-ups, speculative suggestions) are cancelled
    # by the engine the moment a foreground job is submitted, so they never hold the model when a person asks.
    background: bool = False
    # A warm-up: evaluate the prompt into the KV cache and decode nothing (finish "warm").
    warm_only: bool = False
    # How long evaluating the prompt may take (s; 0: as long as it takes). When the KV cache holds less of
    # the window than that allows, the engine answers from a short window (the text nearest the cursor,
    # what fits the budget at the engine's measured speed) and builds the full window in a background
    # sequence (engine/background.py). Local engine only.
    prompt_budget_s: float = 0.0


@dataclass(frozen=True)
class GenerationResult:
    text: str
    # "end" (end token) | "stop" (stop string) | "length" | "loop" (repeating itself) | "cancelled" |
    # "error" (remote; local: past the job's timeout_s) | "warm" (a warm_only job evaluated its prompt)
    finish_reason: str
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0  # after KV-cache prefix reuse
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generate_seconds: float = 0.0
    error: str = ""  # why an "error" finish has no text (remote: timeout, connection, HTTP; local: timeout_s)
    healed: str = ""  # the text token healing took off the prompt and had generated again (not in `text`)
    alternatives: tuple[str, ...] = ()  # the other candidates' texts, best first (`text` is the first)
    drafted_tokens: int = 0  # prompt-lookup drafts verified (engine/speculation.py)
    accepted_tokens: int = 0  # of those, the ones kept
    window: str = "full"  # which prompt window answered: "full", or "short" (GenerationJob.prompt_budget_s)

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"


class EngineCrashed(Exception):
    """The engine process ended (a crash, a hang, a changed model file) while a request was in flight,
    or no engine is running now; `reason` says which in words a person understands."""

    def __init__(self, reason: str, exitcode: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.exitcode = reason, exitcode


class Engine(Protocol):
    @property
    def info(self) -> ModelFileInfo | None: ...

    def load(self, config: EngineConfig, progress: Callable[[float], None] | None = None) -> Future[ModelFileInfo]: ...

    def submit(self, job: GenerationJob) -> Future[GenerationResult]: ...

    def close(self) -> None: ...
