"""A conversion plan: every GGUF tensor with its shape and a function that produces it.

Planning checks every shape against config.json before a byte is written, so a mismatched
checkpoint fails fast with the tensor's name, and writing can stream one tensor at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..gguf.meta import PromptInfo
from .vocab import GGUFVocab


@dataclass(frozen=True)
class PlannedTensor:
    name: str
    shape: tuple[int, ...]
    produce: Callable[[], np.ndarray]

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) >= 2


@dataclass
class ConversionPlan:
    architecture: str  # llama.cpp's arch name: "phi2" or "llama"
    hparams: dict[str, int | float]  # written as "<arch>.<key>"
    vocab: GGUFVocab
    special_ids: dict[str, int]  # bos / eos / unk / eom ... → token id
    prompt: PromptInfo
    tensors: list[PlannedTensor] = field(default_factory=list)
    name: str = ""

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(t.shape)) for t in self.tensors)
