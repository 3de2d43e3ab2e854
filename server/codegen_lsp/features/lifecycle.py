"""initialize / initialized / configuration / shutdown, and (re)loading the model with progress."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.uris import to_fs_path

from ..documents.positions import PositionEncoding
from ..documents.store import DocumentStore
from ..resources import cache_dir
from ..settings import (SECTION, WORKSPACE_FILE, SettingsError, keys_set, parse_settings,
                        read_workspace_file, section_of)
from ..trust import anchor_model_path, split_workspace_values
from .watch import stop_watching, watch_model_file

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def _workspace_root(params: types.InitializeParams) -> Path | None:
    uri = params.root_uri or (params.workspace_folders[0].uri if params.workspace_folders else None)
    path = to_fs_path(uri) if uri else params.root_path
    return Path(path) if path else None


async def load_model(ls: "CodegenLanguageServer") -> None:
    """Load (or reload) the configured model (model_service.py), then watch its file."""
    await ls.models.load()
    path = ls.model.path
    if path is not None:
        watch_model_file(ls, path, lambda: _reload_when_settled(ls, path))
    else:
        stop_watching(ls)


async def _reload_when_settled(ls: "CodegenLanguageServer", path: Path) -> None:
    """A changed model file is reloaded once it has stopped changing and its header reads whole, unless the
    engine already has it as it is now: the changes a copy makes while an earlier change's reload runs come
    as another batch, and a restart after a crash may have loaded it first (one load per change)."""
    if await ls.models.settled(path):
        if ls.models.serves(path):
            ls.log_to_client(f"the model file is loaded as it is now: {path}", types.MessageType.Log)
            return
        await load_model(ls)
    else:
        ls.log_to_client(f"the model file kept changing or does not read as a GGUF: {path}; not reloading",
                         types.MessageType.Warning)


def apply_settings(ls: "CodegenLanguageServer", *overrides: dict[str, Any] | None) -> bool:
    """Merge new values; a bad value is reported and its last good value stays (the other, valid values
    of the same source still apply: one typo must not drop the model path). True if a reload is due."""
    sources = [dict(o) for o in overrides if o]
    while True:
        try:
            new = parse_settings(ls.settings, *sources)
            break
        except SettingsError as exc:
            culprits = [o for o in sources if exc.key is not None and exc.key in o]
            ls.tell_user(f"{exc}; keeping the previous {'value' if culprits else 'settings'}")
            if not culprits:
                return False
            for o in culprits:
                del o[exc.key]
    if not new.model and ls.model_override:  # chosen in this session, not saved: stands while none is configured
        new = new.model_copy(update={"model": ls.model_override})
    old, ls.settings = ls.settings, new
    if new != old:
        ls.completions.forget_cache()  # answers depend on the settings (and the model they name)
    ls.store.max_parse_bytes = new.max_document_bytes
    ls.configure_exclusion()  # exclude, respectGitignore, disabledLanguages (nothing to do when unchanged)
    return old.reload_needed(new)


async def fetch_client_configuration(ls: "CodegenLanguageServer") -> dict[str, Any] | None:
    if not (ls.client_capabilities.workspace and ls.client_capabilities.workspace.configuration):
        return None
    try:
        result = await asyncio.wait_for(ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), 5)
    except Exception as exc:  # noqa: BLE001 - a client that fails here keeps the other sources
        ls.log_to_client(f"workspace/configuration failed: {exc}", types.MessageType.Warning)
        return None
    return section_of(result[0]) if result else None


def use_model(ls: "CodegenLanguageServer", value: str) -> bool:
    """Switch to `value` (a `model` setting value) for this session, without writing any setting: it stands
    while the configured `model` is empty (a saved setting wins). True if a reload is due."""
    ls.model_override = value or None
    return apply_settings(ls, {"model": value or None})


def register(server: "CodegenLanguageServer",
             after_first_load: Callable[["CodegenLanguageServer"], Awaitable[None]] | None = None,
             settle_trust: Callable[["CodegenLanguageServer"], None] | None = None,
             ask_trust: Callable[["CodegenLanguageServer"], Awaitable[None]] | None = None) -> None:
    """`after_first_load(ls)` runs once the first model load has ended (features/offer.py's offer);
    `settle_trust` before the first load and `ask_trust` after it (features/trust.py)."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: "CodegenLanguageServer", params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
        ls.store = DocumentStore(PositionEncoding(getattr(encoding, "value", encoding)))
        ls.workspace_root = root = _workspace_root(params)
        try:
            from_file = read_workspace_file(root)
        except SettingsError as exc:
            ls.tell_user(str(exc))
            from_file = None
        options = section_of(params.initialization_options)
        ls.workspace_file = root / WORKSPACE_FILE if from_file is not None and root is not None else None
        # The repository's values that send code elsewhere or load a file from elsewhere wait for consent.
        now, ls.trust_pending = split_workspace_values(anchor_model_path(from_file or {}, root), root, cache_dir(),
                                                       keys_set(options))
        apply_settings(ls, now, options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: "CodegenLanguageServer", params: types.InitializedParams) -> None:
        client = await fetch_client_configuration(ls)
        apply_settings(ls, client)
        ls.trust_pending = ls.trust_pending.without(keys_set(client))  # the user's own value wins anyway
        if settle_trust is not None:
            settle_trust(ls)
        ls.model_load_started = True
        ls.spawn(_first_load(ls))

    async def _first_load(ls: "CodegenLanguageServer") -> None:
        await load_model(ls)
        if ask_trust is not None:
            await ask_trust(ls)
        if after_first_load is not None:
            await after_first_load(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: "CodegenLanguageServer", params: types.DidChangeConfigurationParams):
        change = section_of(params.settings) or await fetch_client_configuration(ls)
        # Editors send their settings right after `initialized`, while its handler may still be fetching
        # them: the first load (which reads the merged settings) must not be doubled.
        if change is not None and apply_settings(ls, change) and ls.model_load_started:
            ls.spawn(load_model(ls))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: "CodegenLanguageServer", *args) -> None:
        ls.completions.cancel_all()
        for event in ls.inflight.values():  # syntheses
            event.set()
        stop_watching(ls)
        await ls.models.close()  # bounded: `shutdown` is answered within 5 s whatever the engine does
