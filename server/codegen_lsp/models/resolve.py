"""Which GGUF the `model` setting means: a path, or a registry name pulled into the cache; with no
setting, the best model already on disk (the first pulled one in registry order), else the built-in one.

Nothing here downloads: a server an editor starts never fetches a model without the person's yes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..resources import cache_dir, resource_dir


class ModelNotConfigured(Exception):
    """No usable model: the message tells the person what to do."""


def default_model_path() -> Path | None:
    """The embedded default model shipped in models/, if this checkout has one."""
    candidates = sorted(resource_dir("models").glob("*.gguf"))
    return candidates[0] if candidates else None


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    origin: str  # where it came from, in words (status, doctor, `complete`)
    builtin: bool = False  # the embedded demo model
    name: str | None = None  # the registry name, when it is a registry model


def best_pulled_model(cache: Path, registry: Path | None = None) -> ResolvedModel | None:
    """The first registry model (in the registry's order, best first) whose GGUF is in the cache."""
    from .registry import RegistryError, load_registry, model_path

    try:
        entries = load_registry(registry).model
    except RegistryError:
        return None
    for entry in entries:
        path = model_path(cache, entry)
        if path.is_file():
            return ResolvedModel(path, f"{entry.name}, pulled from {entry.where()}; chosen as the best model "
                                       "on this machine (the model setting is empty)", name=entry.name)
    return None


def builtin_model() -> ResolvedModel:
    default = default_model_path()
    if default is None:
        raise ModelNotConfigured("no model configured: set codegenLsp.model to a .gguf file, or run "
                                 "`codegen-lsp models pull smollm2-135m` (or another registry model)")
    return ResolvedModel(default, "built-in demo model (ships with codegen-lsp; the model setting is empty and "
                                  "nothing is pulled)", builtin=True)


def resolve_model(setting: str | None, cache: Path | None = None) -> ResolvedModel:
    cache = cache if cache is not None else cache_dir()
    if not setting:
        return best_pulled_model(cache) or builtin_model()
    path = Path(setting).expanduser()
    if path.suffix == ".gguf" or path.exists() or "/" in setting:
        return ResolvedModel(path, "the model setting (a file)")
    from .registry import RegistryError, load_registry, model_path

    try:
        entry = load_registry().get(setting)
    except RegistryError as exc:
        raise ModelNotConfigured(f"model setting {setting!r} is neither a .gguf path nor a registry name ({exc})") from None
    pulled = model_path(cache, entry)
    if not pulled.exists():
        raise ModelNotConfigured(f"model {entry.name} is not downloaded yet: run `codegen-lsp models pull {entry.name}`")
    return ResolvedModel(pulled, f"{entry.name}, pulled from {entry.where()}", name=entry.name)


def resolve_model_path(setting: str | None) -> Path:
    return resolve_model(setting).path


@dataclass(frozen=True)
class ModelChoice:
    """One entry of an editor's model picker; `value` is what goes into the `model` setting."""

    label: str
    value: str
    description: str


def _workspace_ggufs(root: Path | None) -> list[Path]:
    """.gguf files at the workspace root or in its models/ folder (a shallow look: pickers must be quick)."""
    if root is None:
        return []
    found: list[Path] = []
    for folder in (root, root / "models"):
        try:
            found.extend(sorted(p for p in folder.glob("*.gguf") if p.is_file()))
        except OSError:
            continue
    return found


def model_choices(workspace_root: Path | None, cache: Path) -> list[ModelChoice]:
    """What a person can switch to: the embedded model, workspace GGUFs, and registry models (pulled
    ones are ready; the others say how to pull them)."""
    from .registry import RegistryError, load_registry, model_path

    choices: list[ModelChoice] = []
    default = default_model_path()
    if default is not None:
        choices.append(ModelChoice(f"embedded default ({default.name})", "", "ships with codegen-lsp"))
    for path in _workspace_ggufs(workspace_root):
        choices.append(ModelChoice(path.name, str(path), str(path.parent)))
    try:
        entries = load_registry().model
    except RegistryError:
        entries = []
    for entry in entries:
        pulled = model_path(cache, entry).exists()
        kind = entry.family.value if entry.family is not None else entry.prompt_format.value
        detail = f"{entry.parameters} {kind}, {entry.quantization}".strip()
        description = detail if pulled else f"not downloaded: run `codegen-lsp models pull {entry.name}`"
        choices.append(ModelChoice(entry.name, entry.name, description))
    return choices
