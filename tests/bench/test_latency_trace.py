"""`bench make-trace` and `bench latency`: the trace generator (deterministic, human pauses, real code
after the cursor) and a short end-to-end replay against codegen-lsp (a) and raw llama-cpp-python (b)
with the tiny test model. llama-server (c) needs a several-minute build, so it is left out here."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from codegen_lsp_devtools.bench import trace as tr
from codegen_lsp_devtools.bench.latency import request_points, run_latency, server_debounce_ms


def test_trace_is_deterministic_and_replays_to_the_source():
    a = tr.make_trace(keystrokes=40, seed=3)
    b = tr.make_trace(keystrokes=40, seed=3)
    c = tr.make_trace(keystrokes=40, seed=4)
    assert a == b
    assert [e["delay_ms"] for e in a["events"]] != [e["delay_ms"] for e in c["events"]]
    assert len(a["events"]) >= 40
    source = Path(a["source"]).read_text(encoding="utf-8")
    assert tr.text_after(a, len(a["events"])) == source
    # every key is one character, or Enter with the next line's indentation
    assert all(len(e["text"]) == 1 or (e["text"][0] == "\n" and not e["text"][1:].strip(" \t")) for e in a["events"])


def test_trace_has_human_pauses_and_real_code_after_the_cursor():
    t = tr.make_trace(keystrokes=80, seed=0)
    delays = [e["delay_ms"] for e in t["events"]]
    assert min(delays) >= 60 and all(d <= 200 for d in sorted(delays)[: len(delays) // 2])
    assert max(delays) >= 400  # a line end or a word boundary
    suffix = t["initial_text"][t["cursor"]:]
    assert suffix.lstrip().startswith(("\n", "for ", "#")) or len(suffix.strip()) > 500
    assert "def indent(" in suffix  # the rest of the file follows the cursor
    keys = tr.keystrokes(t)
    points = request_points(keys, server_debounce_ms(keys))
    assert points[-1] == len(keys) and 3 <= len(points) < len(keys)


def test_default_trace_is_the_generators_output():
    default = tr.default_trace()
    assert len(json.dumps(default)) < 50_000
    assert tr.text_after(default, len(default["events"])).count("def dedent(") == 1
    if Path(default["source"]).exists():  # the same interpreter's standard library: regenerated identically
        regenerated = tr.make_trace(Path(default["source"]), default["function"], tr.DEFAULT_KEYSTROKES,
                                    default["seed"])
        if regenerated["initial_text"] == default["initial_text"]:
            assert regenerated["events"] == default["events"]


def test_make_trace_cli(tmp_path):
    out = tmp_path / "t.json"
    subprocess.run([sys.executable, "-m", "codegen_lsp", "bench", "make-trace", "--source", "argparse",
                    "--function", "_get_action_name", "--keystrokes", "20", "--out", str(out)], check=True,
                   capture_output=True)
    t = tr.load_trace(out)
    assert t["name"] == "argparse.py" and len(t["events"]) >= 10


def test_latency_replay_a_and_b(tiny_codegen1, tmp_path):
    trace = tr.limit_trace(tr.make_trace(keystrokes=10, seed=1), 10)
    out = tmp_path / "latency.json"
    report = run_latency(tiny_codegen1.gguf_path, trace, threads=2, max_tokens=8, n_ctx=512, backends="a,b",
                         out=out, echo=lambda *_: None)
    assert json.loads(out.read_text())["backends"].keys() == {"a", "b"}
    assert out.with_suffix(".md").read_text().count("|") > 10
    assert report["trace"]["keystrokes"] == 10 and report["machine"]["cores"] >= 1
    for name, s in report["backends"].items():
        assert s["requests"] == report["trace"]["requests"] >= 2
        assert s["p50_ms"] > 0 and s["p95_ms"] >= s["p50_ms"] and s["cold_ms"] > 0
        assert s["peak_rss_mib"] > 0
        assert s["model_calls"] >= 1
        assert 0 < s["evaluated_tokens_median"] <= s["prompt_tokens_median"]
        assert s["gen_tokens_per_s"] is None or s["gen_tokens_per_s"] > 0
    assert report["cancel_answer_ms"] is not None and report["cancel_answer_ms"] < 5000
    # "Model calls only": the same requests for both, those where both called the model.
    both = {x["key"] for x in report["samples"] if x["backend"] == "a" and x["key"] > 0
            and x["evaluated_tokens"] is not None}
    assert report["backends"]["a"]["model_calls_only_keys"] == report["backends"]["b"]["model_calls_only_keys"] == len(both)
    a_both = sorted(x["latency_ms"] for x in report["samples"] if x["backend"] == "a" and x["key"] in both)
    assert report["backends"]["a"]["model_calls_only_p50_ms"] == pytest.approx(statistics.median(a_both))
    assert "model calls only" in out.with_suffix(".md").read_text()
    a, b = report["backends"]["a"], report["backends"]["b"]
    assert b["evaluated_tokens_median"] == b["prompt_tokens_median"]  # raw: no reuse at all
    assert a["evaluated_tokens_median"] < a["prompt_tokens_median"]  # the server keeps its KV prefix
    # The same prompt for both, but for the token the server's token healing takes off its end.
    assert b["prompt_tokens_median"] - 1 <= a["prompt_tokens_median"] <= b["prompt_tokens_median"]
    for sample in report["samples"]:
        if sample["evaluated_tokens"] is not None:
            assert sample["evaluated_tokens"] <= sample["prompt_tokens"]


def test_without_token_healing_the_server_evaluates_the_prompt_b_evaluates(tiny_codegen1, tmp_path):
    """`--no-token-healing`: no token comes off the prompt's end, so a and b get the same prompt on every
    request where both call the model (with healing, a's is one shorter wherever the cursor is inside a word)."""
    trace = tr.limit_trace(tr.make_trace(keystrokes=10, seed=1), 10)
    out = tmp_path / "latency.json"
    report = run_latency(tiny_codegen1.gguf_path, trace, threads=2, max_tokens=8, n_ctx=512, backends="a,b",
                         out=out, echo=lambda *_: None, token_healing=False)
    prompts = {(x["backend"], x["key"]): x["prompt_tokens"] for x in report["samples"] if x["evaluated_tokens"] is not None}
    both = [key for (backend, key) in prompts if backend == "a" and ("b", key) in prompts]
    assert len(both) >= 2
    assert [prompts["a", key] for key in both] == [prompts["b", key] for key in both]
    assert report["command_options"]["token_healing"] is False
    assert "token healing off" in out.with_suffix(".md").read_text()


def test_unknown_backend_is_an_error(tiny_codegen1):
    with pytest.raises(ValueError):
        run_latency(tiny_codegen1.gguf_path, tr.make_trace(keystrokes=5), backends="a,x")


def test_model_calls_only_compares_the_requests_where_every_backend_called_the_model():
    from codegen_lsp_devtools.bench.latency import Sample, keys_all_call_the_model, summarize

    def sample(backend: str, key: int, ms: float, called: bool) -> Sample:
        return Sample(backend, key, ms, 10, 1 if called else None, 2, 1.0, 1.0)

    samples = [sample("a", 0, 900, True), sample("c", 0, 950, True),  # cold: never counted
               sample("a", 1, 5, False), sample("c", 1, 60, True),  # a answered from its cache
               sample("a", 2, 80, True), sample("c", 2, 40, True),
               sample("a", 3, 90, True), sample("c", 3, 50, True),
               sample("a", 4, 70, True), sample("c", 4, 3, False)]  # c answered without the model
    keys = keys_all_call_the_model(samples, ["a", "c"])
    assert keys == {2, 3}
    a, c = summarize(samples, "a", keys), summarize(samples, "c", keys)
    assert (a["model_calls_only_p50_ms"], c["model_calls_only_p50_ms"]) == (85, 45)
    assert a["p50_ms"] == 75 and a["model_calls_only_keys"] == c["model_calls_only_keys"] == 2
    # The fixed cost: latency less prompt evaluation and decoding (1 + 1 ms here), over the model calls.
    assert (a["fixed_ms_p50"], c["fixed_ms_p50"]) == (78, 48)
    assert a["drafted_tokens"] is None  # nobody reported drafts
    samples[4].drafted_tokens, samples[4].accepted_tokens = 6, 4
    samples[6].drafted_tokens, samples[6].accepted_tokens = 3, 0
    assert (summarize(samples, "a")["drafted_tokens"], summarize(samples, "a")["accepted_tokens"]) == (9, 4)


def test_llama_server_runs_with_its_own_speculation_when_asked(tmp_path):
    from codegen_lsp_devtools.bench.llama_server import LlamaServer, LlamaServerError

    server = LlamaServer(Path("/bin/false"), tmp_path / "m.gguf", 2, 512, extra_args=["--spec-type", "ngram-simple"])
    with pytest.raises(LlamaServerError):
        server.start(timeout=5)  # /bin/false exits at once: only the command is checked here
    assert server.command[-2:] == ["--spec-type", "ngram-simple"]
    plain = LlamaServer(Path("/bin/false"), tmp_path / "m.gguf", 2, 512)
    with pytest.raises(LlamaServerError):
        plain.start(timeout=5)
    assert "--spec-type" not in plain.command
