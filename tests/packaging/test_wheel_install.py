"""A user install: the project's wheel, installed into a fresh venv, serves completion and synthesis.

Every other test runs on the editable install, where data files could be found through the checkout.
Here (fixtures in conftest.py) the sdist is built from a copy of the source tree and the wheel from that
sdist (`python -m build`, what `make dist` runs, so a file the sdist lacks is missing from the wheel too),
the wheel installed with pip into a new venv (not --system-site-packages) together with the portable
llama-cpp-python wheel `make llama-wheel` built (never compiled again: `--only-binary`), and the installed
`codegen-lsp` runs with its working directory outside the checkout and no PYTHONPATH, so anything the
wheel lacks makes it fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import REPO_ROOT
from support.snippets import JAVASCRIPT_PROGRAM, MTPB_STYLE_PROGRAM, comments_only

if TYPE_CHECKING:
    from conftest import Installed

pytestmark = pytest.mark.packaging


def test_the_wheel_holds_every_file_of_the_package_and_its_data(installed: Installed):
    """Every file under server/codegen_lsp (through the _resources links to grammars/ and models/) is in
    the wheel: package-data in pyproject.toml covers what the runtime reads."""
    package = installed.source / "server" / "codegen_lsp"
    expected = set()
    for folder, dirs, files in os.walk(package, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        expected.update(f"codegen_lsp/{(Path(folder) / f).relative_to(package).as_posix()}" for f in files)
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {name for name in wheel.namelist() if name.startswith("codegen_lsp/")}
    assert expected - shipped == set(), "files the wheel lacks"
    assert any(n.startswith("codegen_lsp/_resources/grammars/python/") for n in expected)
    assert any(n.endswith(".gguf") and n.startswith("codegen_lsp/_resources/models/") for n in expected)


def test_the_installed_package_finds_its_files_in_the_venv(installed: Installed):
    found = json.loads(installed.python(
        "import json, codegen_lsp, llama_cpp\n"
        "from importlib.metadata import distribution\n"
        "from codegen_lsp.resources import checkout_root, resource_dir\n"
        "from codegen_lsp.models.resolve import default_model_path\n"
        "from codegen_lsp.syntax.queries import query_path\n"
        "print(json.dumps({'package': codegen_lsp.__file__, 'llama': llama_cpp.__file__,\n"
        "                  'llama_from': json.loads(distribution('llama_cpp_python').read_text('direct_url.json'))['url'],\n"
        "                  'checkout': str(checkout_root()), 'grammars': str(resource_dir('grammars')),\n"
        "                  'query': str(query_path('python', 'comments')), 'model': str(default_model_path())}))"))
    venv = str(installed.venv.resolve())
    for key in ("package", "llama", "grammars", "query", "model"):
        assert found[key].startswith(venv), (key, found[key])
    assert found["checkout"] == "None"
    assert Path(found["query"]).is_file()
    assert found["llama_from"].endswith("/" + installed.llama.name), found["llama_from"]  # ours, not a fresh build


def test_installed_complete_prints_the_memorized_suggestion(installed: Installed, memorizing_codegen1):
    source = installed.work / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    done = installed.cli("complete", str(source), "--line", "1", "--character", "4",
                         "--model", str(memorizing_codegen1.gguf_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "return a + b\n"
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), done.stderr


@pytest.mark.parametrize(("name", "program", "marker", "turns"),
                         [("steps.py", MTPB_STYLE_PROGRAM, "#", 3), ("steps.js", JAVASCRIPT_PROGRAM, "//", 1)])
def test_installed_synthesize_writes_the_program(installed: Installed, synthesizing_codegen1, name, program, marker,
                                                 turns):
    """The comments (and scopes) queries of each language come from the wheel."""
    source = installed.work / name
    comments = comments_only(program, marker)
    source.write_text(comments)
    done = installed.cli("synthesize", str(source), "--model", str(synthesizing_codegen1.gguf_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == program
    assert f"synthesis turn {turns}/{turns}" in done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    assert source.read_text() == comments


def test_installed_complete_uses_the_embedded_default_model(installed: Installed):
    """No --model: the model shipped in the wheel answers, exactly as it does from the checkout."""
    source = installed.work / "steps.py"
    shutil.copyfile(REPO_ROOT / "docs" / "demo" / "steps.py", source)
    args = ["complete", str(source), "--line", "9", "--character", "12"]
    done = installed.cli(*args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    from_checkout = subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                                   timeout=300, cwd=REPO_ROOT)
    assert from_checkout.returncode == 0, from_checkout.stderr
    assert done.stdout == from_checkout.stdout


def test_the_wheel_ships_no_development_tools(installed: Installed):
    """bench/, training/ and the test-model factory are codegen-lsp-devtools (devtools/), not the runtime."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    assert any(n.startswith("codegen_lsp/engine/") for n in names)
    dev = [n for n in names if n.startswith(("codegen_lsp_devtools/", "codegen_lsp/bench/", "codegen_lsp/training/"))
           or n.endswith(("/factory.py", "/test_models.py"))]
    assert dev == []


@pytest.mark.parametrize("command", [["bench", "latency", "--keystrokes", "3"], ["train-default"], ["test-model"]])
def test_installed_development_commands_say_how_to_get_them(installed: Installed, command):
    """Listed in --help, and run without the development tools: exit 1 with one line saying how to get them."""
    listed = installed.cli("--help", timeout=60)
    assert listed.returncode == 0 and command[0] in listed.stdout, listed.stdout
    done = installed.cli(*command, timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"codegen-lsp: error: `codegen-lsp {command[0]}` is a development tool, and the development tools are "
        "not installed here: they are codegen-lsp-devtools, on no package index: in a checkout, make dev (pip install -e ./devtools)"], done.stderr


def bin_only_checkpoint(source: Path, target: Path, extra: dict | None = None) -> Path:
    """`source`'s checkpoint with its weights as pytorch_model.bin only (what Salesforce/codegen-350M-mono
    ships), written here with the dev venv's torch; `extra` adds entries to the pickled state dict."""
    import torch
    from safetensors.numpy import load_file

    shutil.copytree(source, target)
    state = {k: torch.from_numpy(v.copy()) for k, v in load_file(str(target / "model.safetensors")).items()}
    state.update(extra or {})
    torch.save(state, target / "pytorch_model.bin")
    (target / "model.safetensors").unlink()
    return target


def test_installed_without_extras_pulls_a_bin_only_checkpoint_and_answers_from_it(installed: Installed, tmp_path,
                                                                                  memorizing_codegen1):
    """The base install (no torch, no extras) pulls a CodeGen checkpoint that has pytorch_model.bin only from
    the loopback hub mirror, converts and quantizes it, and the pulled model answers."""
    from support.hub_mirror import HubMirror

    assert installed.python("import importlib.util; print(importlib.util.find_spec('torch'))").strip() == "None"
    repo = bin_only_checkpoint(memorizing_codegen1.hf_dir, tmp_path / "repo")
    registry = tmp_path / "registry.toml"
    registry.write_text('[[model]]\nname = "tiny-bin"\nrepo_id = "tiny-org/tiny-bin"\nfamily = "codegen1"\n'
                        'prompt_format = "left-to-right"\ncontext_length = 1024\nlicense = "mit"\nquantization = "q8_0"\n')
    with HubMirror("tiny-org/tiny-bin", repo) as hub:
        pulled = installed.cli("models", "pull", "tiny-bin", "--registry", str(registry), "--quiet",
                               env={"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"})
        assert pulled.returncode == 0, pulled.stderr
        assert "pytorch_model.bin" in hub.downloaded()
    path = installed.cli("models", "path", "tiny-bin", "--registry", str(registry))
    assert path.returncode == 0, path.stderr
    source = installed.work / "calc_bin.py"
    source.write_text("def add(a, b):\n    \n")
    done = installed.cli("complete", str(source), "--line", "1", "--character", "4", "--model", path.stdout.strip())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "return a + b\n"


class RunsOnLoad:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_installed_refuses_a_checkpoint_whose_pickle_runs_a_command(installed: Installed, tmp_path, tiny_codegen1):
    marker = tmp_path / "pwned"
    repo = bin_only_checkpoint(tiny_codegen1.hf_dir, tmp_path / "evil",
                               {"transformer.evil": RunsOnLoad(f"touch {marker}")})
    out = installed.work / "evil.gguf"
    done = installed.cli("convert", str(repo), str(out))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines()[-1].startswith("codegen-lsp: error: ")
    assert f"refused: the pickle asks for {os.system.__module__}.system" in done.stderr
    assert not marker.exists() and not out.exists()
