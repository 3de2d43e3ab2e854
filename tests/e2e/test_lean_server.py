"""The language server process stays lean (issue 18): it holds no model (the engine process does),
loads a grammar only for a language it meets, and never imports the numeric or model-download
stacks (numpy, gguf, yaml, torch, transformers, huggingface_hub), which cost tens of MB each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lsprotocol import types

from codegen_lsp.headless import ready_session, stop_session
from support.default_model import MODEL as DEFAULT_MODEL

HEAVY = ("numpy", "gguf", "yaml", "torch", "transformers", "huggingface_hub", "llama_cpp")


def test_the_serve_command_imports_nothing_heavy():
    """What `codegen-lsp serve` imports before it serves: the CLI's parser, the server and its features."""
    code = ("import sys\n"
            "from codegen_lsp.cli import build_parser\n"
            "build_parser('serve')\n"
            "from codegen_lsp.app import create_server\n"
            "import codegen_lsp.serve\n"
            "create_server()\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _mapped_packages(pid: int) -> set[str]:
    """Site-packages whose native libraries the process has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split()[-1].split("/site-packages/")[1].split("/")[0] for line in maps.splitlines()
            if "/site-packages/" in line}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_after_serving_the_server_process_is_small_and_has_only_the_grammar_it_met(tmp_path: Path):
    client = await ready_session(tmp_path, {"model": str(DEFAULT_MODEL), "warmAfterMs": 0})
    try:
        pid = client._server.pid  # type: ignore[attr-defined]
        uri = (tmp_path / "a.py").as_uri()
        text = "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return "
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        for _ in range(5):
            await client.text_document_inline_completion_async(types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=5, character=15),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        mapped = _mapped_packages(pid)
        assert "tree_sitter_python" in mapped, mapped  # the check sees grammars at all
        assert not {p for p in mapped if p.startswith("tree_sitter_") and p != "tree_sitter_python"}, mapped
        assert not {p for p in mapped if p.split(".")[0] in HEAVY}, mapped
        assert _rss_mib(pid) <= 150, _rss_mib(pid)
    finally:
        await stop_session(client)
