"""The remote engine bounded in time, bytes and tokens, against loopback servers that misbehave on purpose
(support/loopback_http.py): drips, 100 MB answers, chunks of the wrong shape, a key over plain http, and
a tokenizer process that stops answering. Every call must end by its deadline (plus slack) with a
clear reason, never an exception, and read a bounded number of bytes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.jobs import GenerationJob, GenerationResult
from codegen_lsp.engine.remote import (ANSWER_BYTES_BASE, ANSWER_BYTES_PER_TOKEN, LINE_LIMIT_BYTES,
                                       RemoteConfig, RemoteEngine, RemoteEngineError)
from support.loopback_http import Exchange, LoopbackServer, text_chunk

SLACK_S = 4.0  # beyond a configured timeout: thread switches on a busy 2-core machine
HUNDRED_MB = 100 << 20
PIECE = 64 << 10
# What a client that stops reading early lets a server push: what it read plus both sockets' buffers
# (a few MiB on loopback). Far below the 100 MB the servers below offer.
READ_BOUND = 32 << 20


def load(engine: RemoteEngine, url: str, timeout_s: float = 1.0, **kwargs):
    config = RemoteConfig(model_path=kwargs.pop("model_path", None), url=url, timeout_s=timeout_s, n_ctx=512,
                          **kwargs)
    return engine.load(config).result(timeout_s + SLACK_S + 10)


def generate(engine: RemoteEngine, max_tokens: int = 16, within_s: float = 1.0 + SLACK_S,
             **job: object) -> GenerationResult:
    started = time.monotonic()
    result = engine.submit(GenerationJob([Text("def main():\n    ")], max_tokens=max_tokens, **job)).result(within_s + 30)
    assert time.monotonic() - started < within_s, f"took {time.monotonic() - started:.1f} s: {result}"
    return result


def completions(handler):
    return LoopbackServer({"/v1/completions": handler})


def answers_x(ex: Exchange) -> None:
    ex.sse_start()
    ex.event(text_chunk("x", "stop"))
    ex.event("[DONE]")


# -- time ------------------------------------------------------------------------------------------


def test_models_drip_ends_the_load_at_its_deadline(engine):
    def drip(ex: Exchange) -> None:  # headers, then a body a byte every 50 ms: no single read ever times out
        ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        ex.drip(b" " * 100000, 0.05)

    with LoopbackServer({"/v1/models": drip}) as server:
        started = time.monotonic()
        with pytest.raises(RemoteEngineError, match=rf"{server.url} did not answer /v1/models within 1000 ms"):
            load(engine, server.url, timeout_s=1.0)
        assert time.monotonic() - started < 1.0 + SLACK_S


def test_models_header_drip_ends_the_load_at_its_deadline(engine):
    def drip(ex: Exchange) -> None:
        ex.drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 100000, 0.05)

    with LoopbackServer({"/v1/models": drip}) as server:
        started = time.monotonic()
        with pytest.raises(RemoteEngineError, match="did not answer /v1/models within 1000 ms"):
            load(engine, server.url, timeout_s=1.0)
        assert time.monotonic() - started < 1.0 + SLACK_S


def test_completion_drip_ends_at_the_deadline(engine):
    def drip(ex: Exchange) -> None:
        ex.sse_start()
        ex.drip(b'data: {"choices":[{"text":"x"}]}\n\n' * 1000, 0.05)

    with completions(drip) as server:
        load(engine, server.url, timeout_s=1.0)
        result = generate(engine)
    assert result.finish_reason == "error" and result.text == ""
    assert f"{server.url} did not finish within 1000 ms" in result.error
    assert engine.reports and "did not finish within 1000 ms" in engine.reports[-1]


# -- bytes and tokens ------------------------------------------------------------------------------


def test_one_huge_line_is_cut_at_the_line_limit(engine):
    def huge_line(ex: Exchange) -> None:
        ex.sse_start()
        ex.send(b'data: {"choices":[{"text":"')
        piece = b"a" * PIECE
        for _ in range(HUNDRED_MB // PIECE):  # no newline, ever
            ex.send(piece)

    with completions(huge_line) as server:
        load(engine, server.url, timeout_s=20)
        result = generate(engine, within_s=20 + SLACK_S)
    assert result.finish_reason == "error" and result.text == ""
    assert f"{server.url} sent a line longer than {LINE_LIMIT_BYTES} bytes" in result.error
    assert server.sent < READ_BOUND, f"the server got {server.sent} bytes out"


def many_chunks(chunk: dict) -> object:
    def send(ex: Exchange) -> None:
        ex.sse_start()
        event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for _ in range(HUNDRED_MB // len(event)):
            ex.send(event)
        ex.send(b"data: [DONE]\n\n")
    return send


@pytest.mark.parametrize("chunk", [
    text_chunk("a" * PIECE),  # a few tokens' worth of chunks is already past the byte limit
    {**text_chunk(""), "pad": "p" * PIECE},  # no text at all: only the byte limit stops it
], ids=["big-text-chunks", "padding-chunks"])
def test_100_mb_of_chunks_stop_at_the_byte_limit(engine, chunk):
    max_tokens = 64
    limit = ANSWER_BYTES_BASE + ANSWER_BYTES_PER_TOKEN * max_tokens
    with completions(many_chunks(chunk)) as server:
        load(engine, server.url, timeout_s=20)
        # Not stopped as a loop (the "a"s would be): the byte limit is what is checked here.
        result = generate(engine, max_tokens=max_tokens, within_s=20 + SLACK_S, stop_on_loop=False)
    assert result.finish_reason == "error" and result.text == "", result
    assert f"{server.url} sent more than {limit} bytes for at most {max_tokens} tokens" in result.error
    assert server.sent < READ_BOUND, f"the server got {server.sent} bytes out"


def test_more_chunks_than_max_tokens_keep_max_tokens(engine):
    def endless(ex: Exchange) -> None:  # ignores max_tokens
        ex.sse_start()
        for _ in range(100000):
            ex.event(text_chunk("a"))
        ex.event("[DONE]")

    with completions(endless) as server:
        load(engine, server.url)
        result = generate(engine, max_tokens=8, stop_on_loop=False)  # "aaa..." would stop as a loop
        assert (result.text, result.finish_reason, result.error) == ("a" * 8, "length", "")
    assert server.sent < READ_BOUND


def test_a_server_that_keeps_to_max_tokens_is_read_to_the_end(engine):
    def polite(ex: Exchange) -> None:
        ex.sse_start()
        for _ in range(8):
            ex.event(text_chunk("b"))
        ex.event({**text_chunk("", "stop"), "usage": {"prompt_tokens": 5, "completion_tokens": 8}})
        ex.event("[DONE]")

    with completions(polite) as server:
        load(engine, server.url)
        result = generate(engine, max_tokens=8, stop_on_loop=False)  # "bbb..." would stop as a loop
    assert (result.text, result.finish_reason, result.prompt_tokens, result.generated_tokens) == ("b" * 8, "end", 5, 8)


# -- shapes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [
    "[]", "3", '"x"', "null", "true", '{"choices": {}}', '{"choices": 3}', '{"choices": [1]}', '{"choices": [[]]}',
    '{"choices": [{"text": 5}]}', '{"choices": [{"text": ["a"]}]}', '{"choices": [{"text": "a", "finish_reason": 7}]}',
    '{"choices": [{"text": "a", "stop_type": {}}]}', '{"usage": []}', '{"timings": "x"}', '{"stop_type": 1}',
    "not json", "[" * 100000,  # nested deeper than json.loads goes: RecursionError, not ValueError
])
def test_a_chunk_of_the_wrong_shape_is_a_clear_error(engine, event):
    def wrong(ex: Exchange) -> None:
        ex.sse_start()
        ex.event(text_chunk("ok"))
        ex.event(event)
        ex.event("[DONE]")

    with completions(wrong) as server:
        load(engine, server.url)
        result = generate(engine)
    assert result.finish_reason == "error" and result.text == "", result
    assert f"the inference server at {server.url} sent " in result.error
    assert "unexpected chunk" in result.error or "not JSON" in result.error


def test_counts_of_the_wrong_type_are_ignored(engine):
    def odd_counts(ex: Exchange) -> None:
        ex.sse_start()
        ex.event({**text_chunk("ok", "length"), "usage": {"prompt_tokens": "many", "completion_tokens": True},
                  "timings": {"prompt_n": None, "predicted_n": [1]}})
        ex.send(b'data: {"usage": {"prompt_tokens": 1e999}}\n\n')  # JSON's way to an infinite float
        ex.event("[DONE]")

    with completions(odd_counts) as server:
        load(engine, server.url)
        result = generate(engine)
    assert (result.text, result.finish_reason, result.generated_tokens) == ("ok", "length", 1), result


@pytest.mark.parametrize("answer", [[], 3, {"data": 5}, {"data": {"id": "x"}}, {"data": [5]}, {"data": [{}]}])
def test_a_models_answer_of_the_wrong_shape_still_loads(engine, answer):
    with LoopbackServer({"/v1/models": lambda ex: ex.json(answer)}) as server:
        assert load(engine, server.url).name == "remote model"


# -- the API key -----------------------------------------------------------------------------------

_network: list[tuple[str, tuple]] | None = None  # socket audit events while a test records them


def _audit(event: str, args: tuple) -> None:
    if _network is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _network.append((event, args))


sys.addaudithook(_audit)  # cannot be removed: it records only while _network is a list


@pytest.mark.parametrize("url", ["http://192.0.2.1:8080", "http://example.com/v1", "http://[2001:db8::1]:80",
                                 "10.0.0.5:8000"])
def test_the_key_is_refused_over_plain_http_to_another_machine(engine, url):
    attempts, failure = _network_during(lambda: load(engine, url, timeout_s=0.5, api_key="secret"))
    assert isinstance(failure, RemoteEngineError), failure
    assert "remoteApiKey" in str(failure) and "remoteUrl" in str(failure) and "https" in str(failure)
    assert attempts == [], "no connection (nor name lookup) before the refusal"


@pytest.mark.parametrize("url", ["http://[::1]:1", "http://127.5.6.7:1", "http://[::ffff:127.0.0.1]:1",
                                 "http://LocalHost:1"])
def test_the_key_is_not_refused_to_a_loopback_address(engine, url):
    """Nothing listens on port 1: the load fails, but by trying to connect (which the audit hook sees: the
    positive control for the test above)."""
    attempts, failure = _network_during(lambda: load(engine, url, timeout_s=0.5, api_key="secret"))
    assert isinstance(failure, RemoteEngineError) and "remoteApiKey" not in str(failure), failure
    assert attempts, "a lookup or connect (a host without IPv6 fails before connecting)"


def _network_during(call) -> tuple[list[tuple[str, tuple]], BaseException | None]:
    global _network
    _network = []
    try:
        call()
        return _network, None
    except Exception as exc:  # noqa: BLE001 - the caller asserts on it
        return _network, exc
    finally:
        _network = None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1/v1", "localhost"])
def test_the_key_goes_over_plain_http_to_this_machine(engine, host):
    with completions(answers_x) as server:
        url = server.url.replace("127.0.0.1", host.split("/")[0]) + ("/v1" if "/" in host else "")
        load(engine, url, api_key="secret")
        assert generate(engine).text == "x"
    assert {ex.headers.get("authorization") for ex in server.requests} == {"Bearer secret"}


def test_no_key_over_plain_http_is_fine_anywhere(engine):
    """Without a key there is nothing to protect: a non-loopback http URL is tried (and, here, not reached)."""
    with pytest.raises(RemoteEngineError) as failed:
        load(engine, "http://192.0.2.1:9", timeout_s=0.3)
    assert "remoteApiKey" not in str(failed.value)


# -- the tokenizer process -------------------------------------------------------------------------


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():  # killed and reaped
            return True
        time.sleep(0.05)
    return False


def _engine_children() -> set[int]:
    """This process's engine children (/proc/PID/stat: "pid (name) state ppid ...")."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid() \
                    and b"codegen_lsp.engine.child" in (proc / "cmdline").read_bytes():
                found.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.fixture
def model():
    pytest.importorskip("llama_cpp")
    from support.default_model import shipped_model
    return shipped_model()


def test_a_count_that_times_out_ends_the_tokenizer_process(engine, model):
    with completions(answers_x) as server:
        load(engine, server.url, timeout_s=1.0, model_path=model)
        pid = engine._vocab._child.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)  # a tokenizer that no longer answers
        try:
            result = generate(engine)
            assert result.finish_reason == "error" and "did not finish within 1000 ms" in result.error, result
            assert _gone(pid, 15), "the hung tokenizer process is still there"
            # The engine goes on with estimated counts.
            assert generate(engine).text == "x"
        finally:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)


def test_reload_and_close_end_the_tokenizer_process(model):
    engine = RemoteEngine()
    with completions(answers_x) as server:
        load(engine, server.url, model_path=model)
        first = engine._vocab._child.pid  # type: ignore[union-attr]
        load(engine, server.url, model_path=model)
        assert _gone(first, 5), "reload left the old tokenizer process"
        second = engine._vocab._child.pid  # type: ignore[union-attr]
        with pytest.raises(RemoteEngineError):  # a failed reload leaves no tokenizer behind either
            load(engine, "http://127.0.0.1:1", timeout_s=0.3, model_path=model)  # nothing listens there
        assert _gone(second, 5), "a failed reload left the tokenizer process"
        load(engine, server.url, model_path=model)
        third = engine._vocab._child.pid  # type: ignore[union-attr]
        engine.close()
        assert _gone(third, 5), "close left the tokenizer process"


def test_a_tokenizer_that_fails_to_load_ends_its_process(model):
    from codegen_lsp.engine.process import VocabProcess

    before = _engine_children()
    with pytest.raises(TimeoutError):
        VocabProcess(model, timeout=0.001)  # the child needs far longer to start
    leftover = _engine_children() - before
    assert not leftover or all(_gone(pid, 5) for pid in leftover), f"left running: {leftover}"
