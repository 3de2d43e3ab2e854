"""The embedded default model: shipped in models/, small, loaded when nothing is configured."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from codegen_lsp.gguf.inspect import inspect_model_file
from codegen_lsp.gguf.meta import PromptFormat
from support import REPO_ROOT
from support.default_model import WRITES_CODE, WRITES_CODE_AT, shipped_model
from support.lsp import inline, open_doc, start, wait_for_status

MODELS = REPO_ROOT / "models"


def test_the_shipped_model_is_small_documented_and_an_infill_model():
    model = shipped_model()
    assert model.stat().st_size <= 40 * 2**20
    info = inspect_model_file(model)
    assert info.architecture == "phi2" and info.prompt_format is PromptFormat.CODEGEN2_INFILL
    card = (MODELS / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest in card, "the model card must state the shipped file's sha256"
    assert re.search(r"exact match", card, re.IGNORECASE) and re.search(r"perplexity", card, re.IGNORECASE)


async def assert_embedded_model_ready(client: LanguageClient) -> None:
    status = await wait_for_status(client, ("ready", "error"))  # how the first model load ended
    assert status["state"] == "ready" and status["model"] == shipped_model().name, status


async def test_server_uses_the_embedded_model_when_none_is_configured(client: LanguageClient, tmp_path: Path):
    await start(client, None, tmp_path)
    await assert_embedded_model_ready(client)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, WRITES_CODE)
    items = await inline(client, uri, *WRITES_CODE_AT)
    assert items, "no suggestion from the embedded model in main()"
    assert all(isinstance(item, types.InlineCompletionItem) and str(item.insert_text).strip() for item in items)


def demo_command() -> list[str]:
    """The arguments of `codegen-lsp complete` in the Makefile's demo target."""
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^demo:.*\n\t\$\(BIN\)/codegen-lsp (complete .*)$", makefile, re.MULTILINE)
    assert found, "the Makefile's demo target runs codegen-lsp complete"
    return found.group(1).split()


def cursor(args: list[str]) -> tuple[int, int]:
    return int(args[args.index("--line") + 1]), int(args[args.index("--character") + 1])


def test_the_demo_cursor_ends_its_line():
    """The demo asks where an editor would: nothing after the cursor on its line (0-based line and
    character, as `complete` takes them), not inside a word."""
    args = demo_command()
    line, character = cursor(args)
    text = (REPO_ROOT / args[1]).read_text(encoding="utf-8").split("\n")[line]
    assert character <= len(text) and text[character:].strip() == "", (line, character, text)


async def complete_and_ask_over_lsp(client: LanguageClient, args: list[str], cwd: Path) -> tuple[str, str]:
    """(what `codegen-lsp <args>` prints, the suggestion the server answers over LSP for the same file and
    cursor). The server here starts as `complete` starts it: the file's folder as the workspace root, no
    settings (the embedded model), the file opened as it is on disk."""
    done = subprocess.run([sys.executable, "-m", "codegen_lsp", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no model" not in done.stderr
    path = (cwd / args[1]).resolve()
    await start(client, None, path.parent)
    await assert_embedded_model_ready(client)
    uri = path.as_uri()
    open_doc(client, uri, path.read_bytes().decode("utf-8"))
    items = await inline(client, uri, *cursor(args))
    assert len(items) <= 1
    return done.stdout, str(items[0].insert_text) if items else ""


async def test_demo_command_prints_what_the_server_answers_over_lsp(client: LanguageClient):
    """`make demo` prints the suggestion the server gives there over LSP, and it gives one: a line of code
    that parses in place (the server's post-processing drops any that does not)."""
    printed, suggestion = await complete_and_ask_over_lsp(client, demo_command(), REPO_ROOT)
    assert suggestion.strip(), "make demo prints an empty suggestion"
    assert printed == suggestion + "\n", (printed, suggestion)


async def test_complete_prints_a_suggestion_the_model_gives(client: LanguageClient, tmp_path: Path):
    """The same comparison where the model does suggest something (as the test above asserts over LSP),
    so a `complete` that prints nothing fails here."""
    (tmp_path / "a.py").write_text(WRITES_CODE, encoding="utf-8")
    line, character = WRITES_CODE_AT
    printed, suggestion = await complete_and_ask_over_lsp(
        client, ["complete", "a.py", "--line", str(line), "--character", str(character)], tmp_path)
    assert suggestion.strip(), "the server gave no suggestion in main()"
    assert printed == suggestion + "\n", (printed, suggestion)
