"""What the server asks an engine for, and what it gets back. Shared by every backend."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..context.prompt import Segment
from ..modelfile import ModelFileInfo


@dataclass(frozen=True)
class EngineConfig:
    model_path: Path
    n_ctx: int = 2048
    n_threads: int | None = None
    n_gpu_layers: int = 0
    seed: int = 0


@dataclass
class GenerationJob:
    segments: list[Segment]
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 0.95
    stop_strings: tuple[str, ...] = ()
    prefix_share: float = 0.75
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: str  # "end" (end token) | "stop" (stop string) | "length" | "cancelled" | "error" (remote)
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0  # after KV-cache prefix reuse
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generate_seconds: float = 0.0

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"


class Engine(Protocol):
    @property
    def info(self) -> ModelFileInfo | None: ...

    def load(self, config: EngineConfig) -> Future[ModelFileInfo]: ...

    def submit(self, job: GenerationJob) -> Future[GenerationResult]: ...

    def close(self) -> None: ...
