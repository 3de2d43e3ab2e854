"""watchfiles on the model file: replaced → reloaded; deleted → reported (the loaded copy stays)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer


def stop_watching(ls: "CodegenLanguageServer") -> None:
    if ls.model_watch_stop is not None:
        ls.model_watch_stop.set()


def watch_model_file(ls: "CodegenLanguageServer", path: Path) -> None:
    """(Re)start the single watcher on `path`'s folder."""
    if ls.model_watch_path == path and ls.model_watch_stop is not None and not ls.model_watch_stop.is_set():
        return
    stop_watching(ls)
    ls.model_watch_stop, ls.model_watch_path = asyncio.Event(), path
    if path.parent.is_dir():
        ls.spawn(_watch(ls, path, ls.model_watch_stop))


async def _watch(ls: "CodegenLanguageServer", path: Path, stop: asyncio.Event) -> None:
    from watchfiles import awatch

    from .lifecycle import load_model

    async for changes in awatch(path.parent, stop_event=stop, recursive=False, debounce=400, step=50):
        if not any(Path(changed) == path for _, changed in changes):
            continue
        if path.exists():
            ls.log_to_client(f"model file changed, reloading: {path}")
            await load_model(ls)
        else:
            ls.tell_user(f"the model file was deleted: {path}; the loaded copy stays in memory until a restart "
                         "or a new model setting", types.MessageType.Warning)
