"""`codegen-lsp synthesize` and `codegen-lsp bench mtpb`: the real CLI, the real server, a real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.snippets import MTPB_STYLE_PROGRAM

COMMENTS = MTPB_STYLE_PROGRAM.replace("numbers = [3, 1, 2]\n", "").replace("ordered = sorted(numbers)\n", "") \
    .replace("print(ordered)\n", "")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_synthesize_prints_the_program_and_leaves_the_file(synthesizing_codegen1, tmp_path: Path):
    source = tmp_path / "steps.py"
    source.write_text(COMMENTS)
    done = cli("synthesize", str(source), "--model", str(synthesizing_codegen1.gguf_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == MTPB_STYLE_PROGRAM
    assert source.read_text() == COMMENTS
    assert "synthesis turn 3/3" in done.stderr


def test_synthesize_write_and_range(synthesizing_codegen1, tmp_path: Path):
    source = tmp_path / "steps.py"
    source.write_text(COMMENTS)
    source.chmod(0o640)
    first_turn_line = COMMENTS.split("\n").index('# Assign the list [3, 1, 2] to a variable named "numbers".') + 1
    done = cli("synthesize", str(source), "--range", f"{first_turn_line}:{first_turn_line}", "--write",
               "--model", str(synthesizing_codegen1.gguf_path))
    assert done.returncode == 0, done.stderr
    assert source.read_text() == COMMENTS.replace('"numbers".\n', '"numbers".\nnumbers = [3, 1, 2]\n', 1)
    assert source.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["steps.py"]  # no temporary file left behind


# The real CLI, with one change: the file is saved again (as an editor would) after the model has answered
# and before --write replaces it. Deterministic, unlike racing the model from a thread.
SAVED_MEANWHILE = """
import sys
from codegen_lsp import headless
from codegen_lsp.cli import main

synthesize = headless.synthesize

async def synthesize_while_the_user_edits(path, *args, **kwargs):
    result = await synthesize(path, *args, **kwargs)
    with open(path, "a", encoding="utf-8") as file:
        file.write("# typed while the model ran\\n")
    return result

headless.synthesize = synthesize_while_the_user_edits
sys.exit(main())
"""


def test_synthesize_write_refuses_a_file_saved_meanwhile(synthesizing_codegen1, tmp_path: Path):
    source = tmp_path / "steps.py"
    source.write_text(COMMENTS)
    done = subprocess.run([sys.executable, "-c", SAVED_MEANWHILE, "synthesize", str(source), "--write", "--model",
                           str(synthesizing_codegen1.gguf_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (f"codegen-lsp: error: {source} changed since it was read; "
                                                    "nothing was written (run it again on the new contents)")
    assert source.read_text() == COMMENTS + "# typed while the model ran\n"  # the user's edit, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["steps.py"]


def test_synthesize_write_through_a_symlink_keeps_the_link_and_the_mode(synthesizing_codegen1, tmp_path: Path):
    (tmp_path / "project").mkdir()
    target = tmp_path / "project" / "steps.py"
    target.write_text(COMMENTS)
    target.chmod(0o604)
    link = tmp_path / "steps.py"
    link.symlink_to("project/steps.py")
    done = cli("synthesize", str(link), "--write", "--model", str(synthesizing_codegen1.gguf_path))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == "project/steps.py"
    assert target.read_text() == MTPB_STYLE_PROGRAM
    assert target.stat().st_mode & 0o777 == 0o604
    assert [p.name for p in target.parent.iterdir()] == ["steps.py"]  # no temporary file left behind


def test_synthesize_bad_input(synthesizing_codegen1, tmp_path: Path):
    model = str(synthesizing_codegen1.gguf_path)
    missing = cli("synthesize", str(tmp_path / "missing.py"), "--model", model)
    assert missing.returncode == 1 and "file not found" in missing.stderr
    source = tmp_path / "plain.py"
    source.write_text("x = 1\n")
    nothing = cli("synthesize", str(source), "--model", model)
    assert nothing.returncode == 1 and "nothing synthesized" in nothing.stderr
    assert source.read_text() == "x = 1\n"
    bad_range = cli("synthesize", str(source), "--range", "3:1", "--model", model)
    assert bad_range.returncode == 1 and "--range" in bad_range.stderr
    past_end = cli("synthesize", str(source), "--range", "5:9", "--model", model)
    assert past_end.returncode == 1 and past_end.stdout == ""
    assert past_end.stderr.strip() == f"codegen-lsp: error: --range '5:9': {source} ends at line 1"


def write_problems(path: Path) -> None:
    """One MTPB-shaped problem the fixture model has memorized for its first input only."""
    problem = {"id": "1", "name": "Sort a list", "description": "Sort.", "category": "array", "max_gen_length": 128,
               "prompts": ["Assign the list {A} to a variable named \"numbers\".",
                           "Sort \"numbers\" in ascending order and store the result in \"ordered\".",
                           "Print the variable \"ordered\"."],
               "inputs": [{"A": [3, 1, 2]}, {"A": [9, 8]}], "outputs": [[1, 2, 3], [8, 9]]}
    path.write_text(json.dumps(problem) + "\n")


def test_bench_mtpb_synthesizes_through_the_server_and_executes(synthesizing_codegen1, tmp_path: Path):
    data, out = tmp_path / "mtpb.jsonl", tmp_path / "out"
    write_problems(data)
    done = cli("bench", "mtpb", "--data", str(data), "--model", str(synthesizing_codegen1.gguf_path), "--greedy",
               "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "mtpb.json").read_text())
    assert report["counts"]["cases"] == 2 and report["counts"]["passed"] == 1  # the memorized input passes
    assert report["pass_rate"] == 50.0
    assert report["meta"]["mode"] == "multi-turn" and report["meta"]["sampling"] == "greedy"
    assert "| 1 |" in (out / "mtpb.md").read_text()
    single = cli("bench", "mtpb", "--data", str(data), "--model", str(synthesizing_codegen1.gguf_path), "--greedy",
                 "--single-turn", "--out", str(out), "--quiet")
    assert single.returncode == 0, single.stderr
    assert json.loads((out / "mtpb-single-turn.json").read_text())["meta"]["mode"] == "single-turn"


def test_bench_mtpb_without_a_loadable_model_fails_clearly(tmp_path: Path):
    data = tmp_path / "mtpb.jsonl"
    write_problems(data)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf")
    done = cli("bench", "mtpb", "--data", str(data), "--model", str(bad), "--out", str(tmp_path), "--quiet")
    assert done.returncode == 1 and "cannot load the model" in done.stderr
    assert not (tmp_path / "mtpb.json").exists()


def test_bench_quality_reports_model_and_baselines(tiny_codegen2, tmp_path: Path):
    out = tmp_path / "quality.json"
    done = cli("bench", "quality", "--model", str(tiny_codegen2.gguf_path), "--files", "2", "--lines-per-file", "2",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["held_out_files"] == 2 and report["infill_cases"] == 4
    assert 0 <= report["infill_exact_match"] <= 100 and 0 <= report["infill_baseline_repeat_line_above"] <= 100
    assert 0 <= report["infill_edit_similarity"] <= 100 and 0 < report["infill_baseline_edit_similarity"] <= 100
    assert f"line edit similarity: infill {report['infill_edit_similarity']:.1f}" in done.stdout
    assert report["perplexity"] > 1 and report["perplexity_unigram_baseline"] > 1 and report["perplexity_tokens"] > 0
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")
    failed = cli("bench", "quality", "--model", str(broken), "--files", "1", "--out", str(tmp_path / "q2.json"))
    assert failed.returncode == 1 and "cannot load the model" in failed.stderr
