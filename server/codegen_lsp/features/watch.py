"""watchfiles on the model file: replaced → reloaded; deleted → reported (the loaded copy stays).

The reload is the caller's (`features/lifecycle.load_model`), passed in, so this module imports nothing
of lifecycle's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def stop_watching(ls: "CodegenLanguageServer") -> None:
    if ls.model_watch_stop is not None:
        ls.model_watch_stop.set()


def watch_model_file(ls: "CodegenLanguageServer", path: Path, reload: Callable[[], Awaitable[None]]) -> None:
    """(Re)start the single watcher on `path`'s folder; `reload()` runs when the file is replaced."""
    if ls.model_watch_path == path and ls.model_watch_stop is not None and not ls.model_watch_stop.is_set():
        return
    stop_watching(ls)
    ls.model_watch_stop, ls.model_watch_path = asyncio.Event(), path
    if path.parent.is_dir():
        ls.spawn(_watch(ls, path, ls.model_watch_stop, reload))


async def _watch(ls: "CodegenLanguageServer", path: Path, stop: asyncio.Event,
                 reload: Callable[[], Awaitable[None]]) -> None:
    from watchfiles import awatch

    async for changes in awatch(path.parent, stop_event=stop, recursive=False, debounce=400, step=50):
        if not any(Path(changed) == path for _, changed in changes):
            continue
        if path.exists():
            ls.log_to_client(f"model file changed, reloading: {path}")
            await reload()
        else:
            ls.tell_user(f"the model file was deleted: {path}; the loaded copy stays in memory until a restart "
                         "or a new model setting", types.MessageType.Warning)
