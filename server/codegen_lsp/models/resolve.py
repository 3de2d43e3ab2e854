"""Which GGUF the `model` setting means: a path, or a registry name pulled into the cache."""

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


def resolve_model_path(setting: str | None) -> Path:
    if not setting:
        default = default_model_path()
        if default is None:
            raise ModelNotConfigured("no model configured: set codegenLsp.model to a .gguf file, or run "
                                     "`codegen-lsp models pull codegen-350M-mono` and set it to that name")
        return default
    path = Path(setting).expanduser()
    if path.suffix == ".gguf" or path.exists() or "/" in setting:
        return path
    from .pull import model_path
    from .registry import RegistryError, load_registry

    try:
        entry = load_registry().get(setting)
    except RegistryError as exc:
        raise ModelNotConfigured(f"model setting {setting!r} is neither a .gguf path nor a registry name ({exc})") from None
    pulled = model_path(cache_dir(), entry)
    if not pulled.exists():
        raise ModelNotConfigured(f"model {entry.name} is not downloaded yet: run `codegen-lsp models pull {entry.name}`")
    return pulled


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
    from .pull import model_path
    from .registry import RegistryError, load_registry

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
        detail = f"{entry.parameters} {entry.family.value}, {entry.quantization}".strip()
        description = detail if pulled else f"not downloaded: run `codegen-lsp models pull {entry.name}`"
        choices.append(ModelChoice(entry.name, entry.name, description))
    return choices
