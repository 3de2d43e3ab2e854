"""`codegen-lsp complete` drives the real server over LSP and prints the suggestion; when the
request fails (no model, an error answer, a dead server) it exits 1 with one line on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """A failed command: status 1, nothing on stdout, and exactly one line on stderr (no traceback)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codegen-lsp: error: "), result.stderr
    return lines[0]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def run_cli_and_kill_its_server(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI and SIGKILL the language server it starts as soon as it exists."""
    process = subprocess.Popen([sys.executable, "-m", "codegen_lsp", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (server := children(process.pid)) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server, "the CLI never started a server"
        os.kill(server[0], signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever the server had started
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_complete_prints_the_suggestion(tmp_path, memorizing_codegen1):
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    result = run_cli("complete", str(source), "--line", "1", "--character", "4",
                     "--model", str(memorizing_codegen1.gguf_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "return a + b\n"


def test_complete_writes_the_server_log_where_asked(tmp_path, memorizing_codegen1):
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    log = tmp_path / "logs" / "server.log"
    log.parent.mkdir()
    result = run_cli("complete", str(source), "--line", "1", "--character", "4", "--server-log", str(log),
                     "--model", str(memorizing_codegen1.gguf_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "return a + b\n"
    lines = log.read_text().splitlines()
    # The per-request line (INFO) is there, for this document.
    assert any(" INFO " in line and "suggestion for " in line and source.name in line for line in lines), lines[-10:]


def test_complete_with_nothing_to_suggest_is_no_error(tmp_path, memorizing_codegen1):
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return a + b\n")
    result = run_cli("complete", str(source), "--line", "2", "--character", "0",
                     "--model", str(memorizing_codegen1.gguf_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n"  # the memorized snippet ends there: an empty suggestion
    assert "error" not in result.stderr.lower()


def test_complete_with_a_missing_model_fails_with_one_line(tmp_path):
    source = tmp_path / "calc.py"
    source.write_text("x = 1\n")
    result = run_cli("complete", str(source), "--line", "0", "--character", "5", "--model", str(tmp_path / "no.gguf"))
    line = one_error_line(result)
    assert "cannot load the model" in line and "no.gguf" in line and "not found" in line


def test_complete_fails_when_the_server_answers_an_error(tmp_path, memorizing_codegen1):
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    result = run_cli("complete", str(source), "--line", "10", "--character", "0",
                     "--model", str(memorizing_codegen1.gguf_path))
    line = one_error_line(result)
    assert "the inline completion request failed: the server answered with an error" in line
    assert "line 10 is past the last line" in line


@pytest.mark.parametrize("command", ["complete", "synthesize"])
def test_a_dead_server_fails_the_command_with_one_line(tmp_path, memorizing_codegen1, command):
    source = tmp_path / "calc.py"
    source.write_text("# Add two numbers.\ndef add(a, b):\n    \n")
    position = ["--line", "2", "--character", "4"] if command == "complete" else []
    result = run_cli_and_kill_its_server(command, str(source), *position, "--model", str(memorizing_codegen1.gguf_path))
    line = one_error_line(result)
    assert "the server exited (killed by SIGKILL)" in line
    assert source.read_text() == "# Add two numbers.\ndef add(a, b):\n    \n"


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


def test_a_project_file_named_like_a_standard_module_shadows_nothing(tmp_path, memorizing_codegen1):
    """The server and its engine process start in the user's project folder: a secrets.py or random.py of
    the project must not replace the standard library's in them (found by a test whose folder had one)."""
    for name in ("secrets.py", "random.py"):
        (tmp_path / name).write_text("raise SystemExit('a project file shadowed the standard library')\n")
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    \n")
    command = Path(sys.executable).with_name("codegen-lsp")  # the console script a user runs
    result = subprocess.run([str(command), "complete", str(source), "--line", "1", "--character", "4",
                             "--model", str(memorizing_codegen1.gguf_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "return a + b\n"
