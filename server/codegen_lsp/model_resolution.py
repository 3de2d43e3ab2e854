"""Which GGUF the `model` setting means: a path, or a registry name pulled into the cache."""

from __future__ import annotations

from pathlib import Path

from .resources import cache_dir, resource_dir


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
    from .models.pull import model_path
    from .models.registry import RegistryError, load_registry

    try:
        entry = load_registry().get(setting)
    except RegistryError as exc:
        raise ModelNotConfigured(f"model setting {setting!r} is neither a .gguf path nor a registry name ({exc})") from None
    pulled = model_path(cache_dir(), entry)
    if not pulled.exists():
        raise ModelNotConfigured(f"model {entry.name} is not downloaded yet: run `codegen-lsp models pull {entry.name}`")
    return pulled
