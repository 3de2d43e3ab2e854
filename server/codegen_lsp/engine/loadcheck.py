"""Prove a GGUF loads and evaluates in llama.cpp (used after `models pull` and by `convert --check`)."""

from __future__ import annotations

from pathlib import Path

from ..modelfile import ModelFileError, inspect_model_file


def check_model_loads(path: Path) -> None:
    info = inspect_model_file(path)
    import llama_cpp

    try:
        llm = llama_cpp.Llama(str(path), n_ctx=min(64, info.context_length), n_threads=1, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(path, f"llama.cpp could not load it ({exc})") from None
    try:
        first = info.token_ids.get("eos", 0)
        llm.eval([first])
    finally:
        llm.close()
