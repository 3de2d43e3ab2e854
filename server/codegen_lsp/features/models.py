"""The `codegen-lsp.listModels` command: what an editor's "Pick model" offers."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from pygls.exceptions import JsonRpcInvalidParams

from ..models.resolve import model_choices
from ..resources import cache_dir

if TYPE_CHECKING:
    from ..server import CodegenLanguageServer

LIST_MODELS_COMMAND = "codegen-lsp.listModels"


def register(server: "CodegenLanguageServer") -> None:
    @server.command(LIST_MODELS_COMMAND)
    def list_models(ls, *args):  # no annotations: pygls evaluates them to structure the arguments
        if args:
            raise JsonRpcInvalidParams(f"{LIST_MODELS_COMMAND} takes no arguments, got {len(args)}")
        choices = model_choices(ls.workspace_root, cache_dir())
        return {"current": ls.settings.model, "loaded": str(ls.model.path) if ls.model.path else None,
                "status": ls.model.status, "models": [asdict(c) for c in choices]}
