"""How the headless client (complete, synthesize, the benches) turns a failed request into one line:
an error answer, a server that exited, a model failure the server reports while answering."""

from __future__ import annotations

import collections
from types import SimpleNamespace

import pytest
from pygls.exceptions import JsonRpcInternalError

from codegen_lsp.headless import ServerRequestError, answer, raise_if_model_failed


def fake_client(returncode: int | None = None, stderr: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(statuses=[{"state": "ready", "model": "m.gguf", "detail": "m"}],
                           _server=SimpleNamespace(returncode=returncode),
                           server_stderr=collections.deque(stderr, maxlen=40))


def status(state: str, detail: str = "") -> dict:
    return {"state": state, "model": "m.gguf", "detail": detail}


async def test_an_empty_answer_is_an_answer():
    client = fake_client()

    async def request():
        client.statuses += [status("generating"), status("ready")]
        return []

    assert await answer(client, request(), "the inline completion request") == []


async def test_a_model_failure_reported_while_answering_fails_the_request():
    client = fake_client()

    async def request():
        client.statuses += [status("generating"), status("error", "the engine was killed (SIGKILL); restarting it"),
                            status("ready")]
        return []  # what the server answers for a request the crash interrupted

    with pytest.raises(ServerRequestError) as caught:
        await answer(client, request(), "the inline completion request")
    assert str(caught.value) == ("the inline completion request failed: the model failed while answering: "
                                 "the engine was killed (SIGKILL); restarting it")


def test_only_failures_after_the_request_and_before_shutdown_count():
    client = fake_client()
    client.statuses.insert(0, status("error", "an earlier failure"))
    since = len(client.statuses)
    raise_if_model_failed(client, since, "synthesis")
    client.statuses.append(status("ready"))
    client.statuses_at_stop = len(client.statuses)
    client.statuses.append(status("error", "said while shutting down"))
    raise_if_model_failed(client, since, "synthesis")
    client.statuses.insert(since, status("error", "the engine was killed (SIGILL)"))
    with pytest.raises(ServerRequestError, match=r"synthesis failed: .*SIGILL"):
        raise_if_model_failed(client, since, "synthesis")


async def test_an_error_answer_is_one_line():
    client = fake_client()

    async def request():
        raise JsonRpcInternalError("codegen_lsp.syntax.queries.QueryNotFound: no comments query for 'python'\n"
                                   "Traceback (most recent call last): ...")

    with pytest.raises(ServerRequestError) as caught:
        await answer(client, request(), "the code action request")
    assert str(caught.value) == ("the code action request failed: the server answered with an error: "
                                 "codegen_lsp.syntax.queries.QueryNotFound: no comments query for 'python'")


async def test_a_server_that_exited_is_named_with_its_signal_and_last_error():
    client = fake_client(returncode=-4, stderr=("2026-01-01 10:00:00,000 WARNING codegen_lsp.server: something",
                                                "Traceback (most recent call last):", '  File "x.py", line 1',
                                                "RuntimeError: boom", "2026-01-01 10:00:01,000 INFO x: later"))

    async def request():
        raise RuntimeError("Server process 1 exited with return code: -4")  # what pygls sets on pending requests

    with pytest.raises(ServerRequestError) as caught:
        await answer(client, request(), "the inline completion request")
    assert str(caught.value) == ("the inline completion request failed: the server exited (killed by SIGILL): "
                                 "RuntimeError: boom")


async def test_a_runtime_error_while_the_server_runs_is_not_swallowed():
    client = fake_client()

    async def request():
        raise RuntimeError("a bug of ours")

    with pytest.raises(RuntimeError, match="a bug of ours"):
        await answer(client, request(), "the inline completion request")
