"""The registry of known models (models/registry.toml), validated by pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..gguf.meta import Family, PromptFormat
from ..resources import resource_dir

Quantization = Literal["f32", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"]


class RegistryError(Exception):
    pass


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    repo_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str
    revision_verified: bool = False
    family: Family
    prompt_format: PromptFormat
    context_length: int = Field(gt=0)
    license: str
    quantization: Quantization
    parameters: str = ""
    mp_num: int | None = Field(default=None, gt=0)

    @field_validator("revision")
    @classmethod
    def _revision_shape(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("revision must be a commit id, tag or branch without spaces")
        return value


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: list[RegistryEntry]

    def get(self, name: str) -> RegistryEntry:
        for entry in self.model:
            if entry.name.lower() == name.lower():
                return entry
        known = ", ".join(e.name for e in self.model)
        raise RegistryError(f"unknown model {name!r} (known: {known})")


def default_registry_path() -> Path:
    return resource_dir("models") / "registry.toml"


def load_registry(path: Path | None = None) -> Registry:
    path = path or default_registry_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{path}: registry file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{path}: {exc}") from None
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RegistryError(f"{path}: {where}: {first['msg']}") from None
    names = [e.name.lower() for e in registry.model]
    if len(names) != len(set(names)):
        raise RegistryError(f"{path}: duplicate model names")
    return registry
