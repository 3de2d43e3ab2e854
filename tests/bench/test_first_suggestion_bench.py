"""`bench first-suggestion`: its cursors, llama.vim's request body, the verdicts, and a short run of the real
command on SmolLM2 (one small standard-library file, 2 cursors, delays 0 and 2 s, the full-window run, no
llama-server: its build takes many minutes) whose JSON must carry every field with non-empty suggestions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codegen_lsp_devtools.bench import first_suggestion as fs

SOURCE = '''"""A module docstring
that spans lines."""

import os


def first(items):
    """Docstring line one.

    more docstring
    """
    # a comment
    for item in items:
        if item:
            return item
    return None


def second(path):
    # another comment
    with open(path) as fh:
        data = fh.read()
    return data.strip()
'''


def test_cursors_are_at_code_in_the_second_half_with_the_rest_of_the_line_cut(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(SOURCE)
    lines = SOURCE.split("\n")
    cursors = fs.pick_cursors(path, 20, seed=1)
    assert cursors == fs.pick_cursors(path, 20, seed=1)  # seeded
    assert cursors and len(cursors) < 20  # as many as there are code lines in the second half
    for c in cursors:
        assert c.line >= len(lines) // 2
        assert not lines[c.line].lstrip().startswith(("#", '"""', "more docstring"))
        assert c.indent + c.expected == lines[c.line].rstrip() and c.expected
        assert c.character == len(c.indent)
        cut = c.text.split("\n")
        assert cut[c.line] == c.indent and cut[: c.line] == lines[: c.line] and cut[c.line + 1:] == lines[c.line + 1:]
    assert {lines[c.line].strip() for c in cursors} >= {"with open(path) as fh:", "return data.strip()"}


def test_llama_vim_body_is_what_llama_vim_sends_for_a_blank_line():
    lines = [f"x{i} = {i}" for i in range(400)]
    lines[300] = "    "
    text = "\n".join(lines)
    cursor = fs.Cursor("f.py", 300, 4, "    ", "y = 1", text)
    body = fs.llama_vim_body(cursor)
    assert body["input_prefix"] == "\n".join(lines[44:300]) + "\n"  # 256 lines before the cursor's
    assert body["input_suffix"] == "\n" + "\n".join(lines[301:365]) + "\n"  # 64 lines after it
    assert body["prompt"] == "" and body["n_indent"] == 0  # a blank line starts from its beginning
    assert (body["n_predict"], body["t_max_prompt_ms"], body["t_max_predict_ms"]) == (128, 500, 250)
    assert body["cache_prompt"] is True and body["samplers"] == ["top_k", "top_p", "infill"]
    assert fs.llama_vim_first_line("    y = 1   \nz", cursor) == "y = 1"  # its indentation taken as the line's


def _sample(run: str, file: str, delay: float, seconds: float, exact: bool) -> dict:
    return {"run": run, "file": file, "line": 1, "delay_s": delay, "seconds": seconds, "suggestion": "x",
            "exact": exact, "window": "short" if run == "codegen-lsp" and delay == 0 else "full",
            "window_reported": True, "error": None}


def test_verdicts_and_ratios_come_from_the_samples():
    samples = []
    for i in range(4):
        samples += [_sample("codegen-lsp", "small.py", 0.0, 1.0 + i / 10, i < 2),  # p50 1.15 s, 2/4 exact
                    _sample("codegen-lsp", "small.py", 2.0, 0.5 + i, i < 3),  # p50 2.0 s
                    _sample("full-window", "small.py", 0.0, 2.3, i < 3),  # 3/4 exact
                    _sample("llama-server", "small.py", 0.0, 0.46, False),
                    _sample("codegen-lsp", "huge.py", 0.0, 3.0, True), _sample("codegen-lsp", "huge.py", 2.0, 0.2, True),
                    _sample("full-window", "huge.py", 0.0, 6.0, True), _sample("llama-server", "huge.py", 0.0, 0.5, True)]
    report = {"options": {"delays_s": [0.0, 2.0], "full_window": True, "llama_server": True},
              "files": [{"path": "small.py", "lines": 100}, {"path": "huge.py", "lines": 15_000}],
              "samples": samples}
    report["summary"] = fs.summarize(report)
    small = report["summary"]["files"]["small.py"]
    assert small["codegen-lsp D=0s"]["p50_s"] == pytest.approx(1.15) and small["codegen-lsp D=0s"]["windows"] == {"short": 4}
    ratios = fs.ratios(report["summary"])
    assert ratios["small.py"]["codegen-lsp D=0s"]["vs_full_window"] == 0.5
    assert ratios["small.py"]["codegen-lsp D=0s"]["vs_llama_server"] == 2.5
    verdicts = {(t["file"], t["delay_s"], "full_window" in t): t for t in fs.targets(report)}
    assert verdicts["small.py", 0.0, False]["pass"] is True  # 1.15 <= 1.5
    assert verdicts["small.py", 2.0, False]["pass"] is False  # 2.0 > 1.0
    assert verdicts["huge.py", 2.0, False]["informational"] is True
    assert verdicts["all", 0.0, True]["points_below_full"] == 12.5 and verdicts["all", 0.0, True]["pass"] is False
    assert verdicts["all", 2.0, True]["pass"] is True  # 7/8 exact against the full window's 7/8


def test_the_command_on_smollm2(smollm2: Path, tmp_path, capsys):
    out = tmp_path / "first.json"
    done = subprocess.run(
        [sys.executable, "-m", "codegen_lsp", "bench", "first-suggestion", "--model", str(smollm2),
         "--files", "bisect.py", "--cursors", "2", "--delays", "0,2", "--no-llama-server", "--json",
         "--setting", "requestTimeoutMs=120000",  # a shared, busy machine: no empty answer for a late model
         "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert json.loads(out.read_text())["samples"] == report["samples"]
    [file] = report["files"]
    assert file["path"].endswith("bisect.py") and file["lines"] > 50 and len(file["cursors"]) == 2
    assert {"commit", "knows_first_suggestion_ms"} <= report["server"].keys()
    runs = sorted((s["run"], s["delay_s"]) for s in report["samples"])
    assert runs == sorted([("codegen-lsp", 0.0), ("codegen-lsp", 2.0), ("full-window", 0.0)] * 2)
    for s in report["samples"]:
        assert s["error"] is None, s
        assert 0 < s["seconds"] < 120 and s["server_ready_s"] > 0
        assert s["suggestion"].strip(), s  # a real model suggests something at every cursor
        assert s["window"] in ("full", "short") and s["prompt_tokens"] > 0
        assert 0 <= s["evaluated_prompt_tokens"] <= s["prompt_tokens"] and s["prompt_ms"] >= 0
        cursor = next(c for c in file["cursors"] if c["line"] == s["line"])
        assert s["exact"] == (s["suggestion"].split("\n")[0].rstrip() == cursor["expected"])
    summary = report["summary"]["all"]
    assert set(summary) == {"codegen-lsp D=0s", "codegen-lsp D=2s", "full window (firstSuggestionMs 0) D=0s"}
    for row in summary.values():
        assert row["n"] == row["answered"] == 2 and row["p50_s"] > 0 and sum(row["windows"].values()) == 2
    assert summary["codegen-lsp D=0s"]["same_as_full"] in (0, 1, 2)  # first lines compared with the full window's
    assert report["ratios"]["all files"]["codegen-lsp D=2s"]["vs_full_window"] > 0
    targets = report["targets"]
    assert [t["delay_s"] for t in targets if "full_window" not in t] == [0.0, 2.0]
    assert [t["delay_s"] for t in targets if "full_window" in t] == [0.0, 2.0]
    assert all(isinstance(t["pass"], bool) for t in targets)
    fs.print_first_suggestion(report)  # the tables print from the JSON report alone
    printed = capsys.readouterr().out
    assert "bisect.py" in printed and "targets:" in printed and ("PASS" in printed or "MISS" in printed)
    again = subprocess.run([sys.executable, "-m", "codegen_lsp", "bench", "first-suggestion", "--from-json", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == printed  # a saved report prints the same again
