"""The embedded default model: shipped in models/, small, loaded when nothing is configured."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from codegen_lsp.modelfile import inspect_model_file
from codegen_lsp.modelmeta import PromptFormat
from support import REPO_ROOT
from support.lsp import inline, open_doc, start, wait_for_log

MODELS = REPO_ROOT / "models"


def shipped_model() -> Path:
    found = sorted(MODELS.glob("*.gguf"))
    assert len(found) == 1, f"exactly one embedded model expected in models/, found {found}"
    return found[0]


def test_the_shipped_model_is_small_documented_and_an_infill_model():
    model = shipped_model()
    assert model.stat().st_size <= 40 * 2**20
    info = inspect_model_file(model)
    assert info.architecture == "phi2" and info.prompt_format is PromptFormat.CODEGEN2_INFILL
    card = (MODELS / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest in card, "the model card must state the shipped file's sha256"
    assert re.search(r"exact match", card, re.IGNORECASE) and re.search(r"perplexity", card, re.IGNORECASE)


async def test_server_uses_the_embedded_model_when_none_is_configured(client: LanguageClient, tmp_path: Path):
    await start(client, None, tmp_path)
    ready = await wait_for_log(client, ("model ready",))
    assert shipped_model().name in ready
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    items = await inline(client, uri, 1, 4)
    assert all(isinstance(item, types.InlineCompletionItem) for item in items)
    await wait_for_log(client, ("suggestion for",))


def test_demo_command_prints_a_suggestion_from_the_embedded_model():
    done = subprocess.run([sys.executable, "-m", "codegen_lsp", "complete", str(REPO_ROOT / "docs/demo/steps.py"),
                           "--line", "9", "--character", "12"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no model" not in done.stderr
