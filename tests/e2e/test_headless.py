"""`codegen-lsp complete` drives the real server over LSP and prints the suggestion."""

from __future__ import annotations

import json
import subprocess
import sys


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_complete_prints_the_suggestion(tmp_path, memorizing_codegen1):
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    result = run_cli("complete", str(source), "--line", "1", "--character", "4",
                     "--model", str(memorizing_codegen1.gguf_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "return a + b\n"


def test_complete_with_a_missing_model_says_so(tmp_path):
    source = tmp_path / "calc.py"
    source.write_text("x = 1\n")
    result = run_cli("complete", str(source), "--line", "0", "--character", "5", "--model", str(tmp_path / "no.gguf"))
    assert result.returncode == 0
    assert result.stdout == "\n"
    assert "no.gguf" in result.stderr and "not found" in result.stderr


def test_complete_missing_file(tmp_path):
    result = run_cli("complete", str(tmp_path / "nope.py"), "--line", "0", "--character", "0")
    assert result.returncode != 0
    assert "nope.py: file not found" in result.stderr


def test_settings_schema_lists_every_setting():
    result = run_cli("settings-schema")
    schema = json.loads(result.stdout)
    for key in ("model", "promptFormat", "maxTokens", "temperature", "topP", "stop", "contextTokens",
                "debounceMs", "threads", "gpuLayers"):
        assert key in schema["properties"]
