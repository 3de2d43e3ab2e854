"""`bench remote`: a short real run (SmolLM2, 10 keys, --clients 1,2, 256 context tokens) against llama.cpp's own
llama-server, and the pieces that read llama-server's log and /slots. The run needs the llama-server binary that
`bench latency` builds (about 13 minutes, cached in .cache/llama-server): without it the run is skipped, saying so.
Timings are never asserted (the machine is shared): only that the report has its fields and that what it counts
happened (answers with text, streams the codegen-lsp servers closed early, tasks llama-server cancelled)."""

from __future__ import annotations

import json

import pytest

from support import REPO_ROOT

from codegen_lsp_devtools.bench import trace as tr
from codegen_lsp_devtools.bench.remote import Stream, cancellations, parse_server_log

LLAMA_SERVER_DIR = REPO_ROOT / ".cache" / "llama-server"

LOG = """\
0.06.068.109 I slot launch_slot_: id  1 | task 7 | processing task, is_child = 0
0.06.243.645 W srv          stop: cancel task, id_task = 7
0.06.243.697 I slot      release: id  1 | task 7 | stop processing: n_tokens = 19, truncated = 0
0.07.000.000 I slot launch_slot_: id  0 | task 9 | processing task, is_child = 0
1.01.889.540 I slot print_timing: id  0 | task 9 |        eval time =     380.48 ms /    20 tokens (   20.03 ms per token,    49.94 tokens per second)
1.01.889.625 I slot      release: id  0 | task 9 | stop processing: n_tokens = 25, truncated = 0
0.08.000.000 W srv          stop: cancel task, id_task = 11
"""


def test_server_log_says_which_tasks_were_cancelled_and_their_tokens_at_release():
    tasks = parse_server_log(LOG)
    assert tasks[7] == {"slot": 1, "cancelled": True, "n_tokens_at_release": 19}
    assert tasks[9] == {"slot": 0, "eval_tokens": 20, "n_tokens_at_release": 25}
    assert tasks[11] == {"cancelled": True}  # cancelled while queued: never in a slot


def test_tokens_after_a_close_come_from_slots_samples_and_the_release_count():
    # slot 1 ran task 7 (seed 1000005): prompt of 9 tokens; 10 decoded when the stream closed at t=1.0,
    # 12 at release (the log's n_tokens 21 = 9 + 12): 2 tokens after the close.
    samples = {1: [(0.5, 7, True, 9, 0, 1000005), (0.9, 7, True, 19, 10, 1000005), (1.05, 7, True, 21, 12, 1000005),
                   (1.10, 7, False, 21, 0, 1000005)]}
    stream = Stream(client=0, path="/v1/completions", sent_at=0.4, tag=1000005, chunks=10, client_closed_at=1.0,
                    chunks_at_close=10)
    [record] = cancellations({7: {"slot": 1, "cancelled": True, "n_tokens_at_release": 21}}, samples, [stream])
    assert (record["task"], record["slot"], record["phase"]) == (7, 1, "generating")
    assert (record["prompt_tokens"], record["decoded_at_close"], record["decoded_total"]) == (9, 10, 12)
    assert record["tokens_after_cancel"] == 2 and record["cancelled_by_server"] is True
    assert record["close_to_release_ms"] == pytest.approx(100.0)
    # A stream that finished is no cancellation; one the server never showed in a slot is counted, unattributed.
    done = Stream(client=0, path="/v1/completions", sent_at=2.0, tag=1000006, finished=True)
    queued = Stream(client=1, path="/v1/completions", sent_at=2.0, tag=1000007, client_closed_at=2.1, chunks_at_close=0)
    records = cancellations({}, samples, [done, queued])
    assert [r["tag"] for r in records] == [1000007] and records[0]["tokens_after_cancel"] is None


def _short_trace() -> dict:
    """10 keys: bursts 80 ms apart (each key supersedes the request before it) and, after every third key, a
    2 s pause in which that request can be answered."""
    trace = tr.limit_trace(tr.make_trace(keystrokes=10, seed=2), 10)
    events = [{**e, "delay_ms": 80.0} for e in trace["events"]]
    for i in range(3, len(events), 3):
        events[i]["delay_ms"] = 2000.0
    return {**trace, "events": events}


def test_bench_remote_two_clients_against_llama_server(smollm2, tmp_path):
    from codegen_lsp_devtools.bench.llama_server import DEFAULT_DIR, binary_path
    from codegen_lsp_devtools.bench.remote import run_remote

    # A build that exists, as it is (never a 13-minute build inside this test).
    built = [b for b in (binary_path(DEFAULT_DIR), binary_path(LLAMA_SERVER_DIR)) if b.exists()]
    if not built:
        pytest.skip(f"llama-server is not built (in {DEFAULT_DIR} or {LLAMA_SERVER_DIR}; `codegen-lsp bench "
                    "latency` builds it, about 13 minutes on 2 cores): this short run needs the real C++ server")
    out = tmp_path / "remote.json"
    # No debounce: every key's request reaches llama-server at once, so the next key closes a running stream.
    settings = {"maxTokens": 24, "debounceMs": 0, "adaptiveDebounce": False, "speculativeSuggestions": False}
    report = run_remote(smollm2, _short_trace(), clients=(1, 2), threads=2, n_ctx=256, settings=settings,
                        out=out, llama_server_binary=built[0], echo=lambda *_: None)
    assert json.loads(out.read_text())["ratios_to_fewest_clients"].keys() == {"1", "2"}
    assert report["trace"]["keystrokes"] == 10 and report["engine"]["remote.py"]
    assert set(report["targets"]) >= {"p50_4_over_1", "max_tokens_after_cancel", "at_most_one_token_after_cancel"}
    assert [r["clients"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        n = run["clients"]
        assert f"--parallel {n}" in " ".join(run["llama_server_command"])
        assert "-c" in run["llama_server_command"] and str(256 * n) in run["llama_server_command"]
        assert run["requests"] == 10 * n and 1 <= run["answered"] <= run["requests"]
        assert run["p50_ms"] > 0 and run["p95_ms"] >= run["p50_ms"] and all(x > 0 for x in run["cold_ms"])
        latencies = [s["latency_ms"] for s in run["samples"] if s["latency_ms"] is not None]
        assert latencies and all(x > 0 for x in latencies)
        assert run["non_empty_answers"] >= 1  # some keystrokes got a suggestion with text
        assert {s["client"] for s in run["samples"] if s["text"]} <= set(range(n))
        # Cancellations: the editors superseded requests, the codegen-lsp servers closed running streams,
        # llama-server cancelled those tasks, and each closed stream seen in a slot has its token count.
        assert run["editor_cancels_sent"] >= 1
        assert run["streams_closed_early"] >= 1 and run["server_cancelled_tasks"] >= 1
        assert 0 <= run["streams_cut_after_answer"] <= run["streams_closed_early"]
        assert {c["why"] for c in run["cancellations"]} <= {"cancelled", "cut after its answer"}
        assert run["last_key_to_close_ms_p50"] is None or run["last_key_to_close_ms_p50"] >= 0
        seen = [c for c in run["cancellations"] if c["task"] is not None]
        assert seen and run["closed_streams_seen_in_a_slot"] == len(seen)
        for c in seen:
            assert c["tokens_after_cancel"] >= 0 and c["decoded_total"] >= c["decoded_at_close"] >= 0
        assert run["tokens_predicted_total"] > 0 and run["tokens_in_shown_answers"] > 0
        assert run["tokens_predicted_total"] >= run["tokens_in_shown_answers"]
        assert run["slots_polls"] > 10
