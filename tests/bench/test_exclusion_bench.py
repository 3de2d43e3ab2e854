"""`bench exclusion` (devtools/codegen_lsp_devtools/bench/exclusion.py) on a small workspace: it builds the
git repository, measures each phase, and the cached checks ask git nothing while the batch asks once."""

from __future__ import annotations

from codegen_lsp_devtools.bench.exclusion import print_exclusion, run_exclusion


def test_bench_exclusion_measures_every_phase_on_a_small_workspace(capsys):
    report = run_exclusion(files=300, checks=68)
    assert report["files"] == 300 and report["open_documents"] == 50
    assert 0 < report["open_excluded"] < 50  # secrets, ignored build output and plain files among the open ones
    assert report["check"]["samples"] == 68 and report["request"]["samples"] == 34
    assert report["git_calls_while_cached"] == 0 and report["batch_git_calls"] == 1, report
    assert report["first_sight"]["samples"] > 0 and report["git_said"] == []
    assert report["pass"] == (report["request_cpu"]["p99_ms"] <= report["target_ms"])
    print_exclusion(report)
    out = capsys.readouterr().out
    assert "workspace of 300 files" in out and ("PASS" in out or "MISS" in out)
