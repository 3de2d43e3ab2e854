"""Prove a GGUF loads and evaluates in llama.cpp (used after `models pull` and by `convert --check`).

It runs in an engine process, like the server's model: a file that makes llama.cpp abort is reported,
not fatal to the command."""

from __future__ import annotations

from pathlib import Path

from ..context.prompt import Token
from ..gguf.inspect import ModelFileError, inspect_model_file
from .jobs import EngineConfig, GenerationJob
from .process import EngineCrashed, ProcessEngine


def check_model_loads(path: Path, timeout: float = 300.0) -> None:
    info = inspect_model_file(path)
    engine = ProcessEngine()
    try:
        engine.load(EngineConfig(path, n_ctx=min(64, info.context_length), n_threads=1)).result(timeout)
        first = Token(info.token_ids.get("eos", 0))
        engine.submit(GenerationJob([first], max_tokens=1)).result(timeout)
    except EngineCrashed as exc:
        raise ModelFileError(path, f"llama.cpp crashed on it ({exc.reason})") from None
    finally:
        engine.close()
