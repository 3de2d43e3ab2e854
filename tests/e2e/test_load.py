"""A storm of good and bad LSP traffic (bench/load.py's seeded mix: inline and completion requests, code
actions, impossible positions, unopened documents, unknown methods, malformed params, stale edits, opens
and closes, 30 % cancelled) against the real server with a real model, from a client that never reads the
server's stderr, as pygls' own client does. Before logging went through logsink, the server wedged after
a few hundred requests (its log blocked on the full pipe)."""

from __future__ import annotations

import re
from pathlib import Path

from codegen_lsp_devtools.bench.load import LoadSpec, run_load

EXPECTED = "return fh.read()"  # what memorizing_codegen1 writes at load.PROBE_POSITION

# Server RSS growth allowed over the last nine tenths of the storm (after caches, parsers and the allocator
# warmed up in the first tenth). Measured: +0.6 MiB for 1,000 requests, +2.7 MiB for 3,000 (the log queue
# filling while nobody reads stderr). The queue holds at most logsink.QUEUE_RECORDS (4096) records of about
# 1 KB at most, so 4 MiB; the rest is allocator slack. A leak of 10 KB per request (10 MiB here) fails it.
RSS_GROWTH_MIB = 8.0


async def test_a_storm_from_a_client_that_never_reads_stderr(memorizing_codegen1):
    report = await run_load(memorizing_codegen1.gguf_path, LoadSpec(
        requests=1000, seed=7, answer_bound_s=20, storm_bound_s=45))
    summary = {k: report[k] for k in ("requests", "answered", "outcomes", "kinds", "storm_s", "shutdown_s",
                                      "rss_warm_mib", "rss_after_mib")}
    assert report["requests"] == 1000, summary
    assert report["unanswered"] == [] and report["answered"] == 1000, (report["unanswered"][:10], summary)
    # The mix really held mistakes and cancels, and each got its answer.
    outcomes = report["outcomes"]
    assert outcomes.get("error -32602", 0) >= report["kinds"]["unopened"] > 50, summary  # InvalidParams
    assert outcomes.get("error -32601", 0) == report["kinds"]["unknown_method"] > 20, summary  # MethodNotFound
    assert outcomes.get("error -32800", 0) > 50 and outcomes.get("result", 0) > 300, summary  # cancelled, answered
    assert report["suggestion_after"] == EXPECTED, summary
    assert report["shutdown_s"] is not None and report["server_exit"] == 0, summary
    assert report["rss_after_mib"] - report["rss_warm_mib"] < RSS_GROWTH_MIB, summary


async def test_a_storm_of_mistakes_leaves_one_short_line_each(memorizing_codegen1, tmp_path: Path):
    log_file = tmp_path / "server.log"
    report = await run_load(memorizing_codegen1.gguf_path, LoadSpec(
        requests=400, seed=11, answer_bound_s=20, storm_bound_s=45, log_file=log_file))
    assert report["answered"] == 400 and report["suggestion_after"] == EXPECTED, report["unanswered"][:10]
    lines = log_file.read_text().splitlines()
    kinds = report["kinds"]
    # Every line is a log record (date first): no traceback, no continuation lines.
    stray = [line for line in lines if not re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert not stray and not any("Traceback" in line for line in lines), stray[:10]

    def count(needle: str) -> int:
        return sum(needle in line for line in lines)

    # One WARNING line per mistake the server saw (a cancel may reach a request before its handler runs).
    for needle, kind in (("document not open", "unopened"), ("invalid params for", "bad_params"),
                         ("invalid position", "impossible_position"), ("unknown method", "unknown_method")):
        assert 0 < count(needle) <= kinds[kind], (needle, count(needle), kinds)
        assert all(" WARNING " in line for line in lines if needle in line), needle
    assert count(" ERROR ") == 0, [line for line in lines if " ERROR " in line][:5]
