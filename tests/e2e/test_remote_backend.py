"""remoteUrl: the real server generating through a real OpenAI-compatible server (llama_cpp.server).

One `python -m llama_cpp.server` per fixture model, started on first use and killed (process group)
when the module ends. What llama_cpp.server does with our prompts (checked in llama-cpp-python 0.3.36):
it tokenizes a string prompt with special-token parsing on, so the sentinel texts we send
(`<mask_1>`, `<|endoftext|>`, `<sep>`) become the sentinel tokens again; it rejects `prompt` as a list
of token ids (its request model only takes strings), so text is the portable encoding.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from support.files import requests, shown, wait_until
from support.inference_servers import InferenceServer, free_port
from support.lsp import inline, loads, open_doc, record_status, start, wait_for_stats

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server] (the dev extra)")


@pytest.fixture(scope="module")
def inference_server(tmp_path_factory):
    """inference_server(model_path) -> a running llama_cpp.server for that GGUF (one per model)."""
    servers: dict[Path, InferenceServer] = {}

    def get(model: Path) -> InferenceServer:
        if model not in servers:
            log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
            servers[model] = InferenceServer(model, log_path).wait_ready()
        return servers[model]

    yield get
    for server in servers.values():
        server.stop()


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))


async def test_left_to_right_remote_matches_in_process(client: LanguageClient, memorizing_codegen1,
                                                       inference_server, tmp_path: Path):
    server = inference_server(memorizing_codegen1.gguf_path)
    # No local GGUF: left-to-right needs none (the server's model id names it).
    await start(client, None, tmp_path, maxTokens=24, contextTokens=512, remoteUrl=server.url)
    ready = loads(client)
    assert ready and ready[0]["remote"] == server.url and ready[0]["path"] is None, record_status(client)
    uri = (tmp_path / "a.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    served = server.completions_served()
    remote = [i.insert_text for i in await inline(client, uri, 1, 4)]
    assert remote == ["return a + b"]
    assert server.completions_served() > served

    # The same editor switches to the in-process engine (the engine is swapped): the same answer.
    client.protocol.notify(types.WORKSPACE_DID_CHANGE_CONFIGURATION, types.DidChangeConfigurationParams(
        settings={"codegenLsp": {"remoteUrl": None, "model": str(memorizing_codegen1.gguf_path)}}))
    await wait_until(lambda: len(loads(client)) >= 2, 30, "the in-process model")
    assert loads(client)[1]["remote"] is None and loads(client)[1]["path"] == str(memorizing_codegen1.gguf_path)
    local = [i.insert_text for i in await inline(client, uri, 1, 4)]
    assert local == remote


async def test_codegen2_infill_sentinels_travel_as_token_text(client: LanguageClient, memorizing_codegen2,
                                                              inference_server, tmp_path: Path):
    server = inference_server(memorizing_codegen2.gguf_path)
    await start(client, memorizing_codegen2.gguf_path, tmp_path, maxTokens=24, contextTokens=512,
                remoteUrl=server.url)
    uri = (tmp_path / "f.py").as_uri()
    open_doc(client, uri, "def square(x):\n    return x * x\n\n\n")
    served = server.completions_served()
    items = await inline(client, uri, 4, 0)
    assert [i.insert_text for i in items] == ["print(square(3))"]  # what the in-process engine answers
    assert server.completions_served() > served


# The slow models here are `slow_synthesizing_codegen1` (trained: ~10 ms a token, plain ASCII), not the
# random-weight `slow_model`: llama_cpp.server holds back tokens that do not decode as UTF-8 and random
# weights emit many, so it streams nothing for seconds and only sees a closed stream when it next sends.
async def test_cancel_closes_the_stream_and_stops_the_server(client: LanguageClient, slow_synthesizing_codegen1,
                                                             inference_server, tmp_path: Path):
    server = inference_server(slow_synthesizing_codegen1.gguf_path)
    await start(client, slow_synthesizing_codegen1.gguf_path, tmp_path, maxTokens=1000, contextTokens=512, remoteUrl=server.url)
    uri = (tmp_path / "c.py").as_uri()
    open_doc(client, uri, "def main():\n    ")
    disconnects = server.log().count("Disconnected from client")
    request = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4), msg_id="remote-long-1"))
    await asyncio.sleep(0.25)  # into decoding (a few hundred ms per turn on this model): cancel well before it ends
    assert not request.done()
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="remote-long-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(request, 5)
    answered_in = time.perf_counter() - cancelled_at
    assert answered_in < 1.0
    # The closed stream reaches the server: llama_cpp.server prints this only when it abandons a
    # generation for a gone client (a finished one sends [DONE] instead), so decoding stopped early.
    await wait_until(lambda: server.log().count("Disconnected from client") > disconnects, 5,
                     "llama_cpp.server to see the client gone")
    print(f"cancelled request answered in {answered_in * 1000:.0f} ms, server abandoned the generation "
          f"{(time.perf_counter() - cancelled_at) * 1000:.0f} ms after the cancel")
    cancelled = await wait_for_stats(client, lambda s: s.uri == uri, timeout=5, what="the cancelled request's stats")
    assert (cancelled.finish, cancelled.reason) == ("cancelled", "request cancelled"), cancelled  # not a timeout


async def test_server_down_is_reported_with_its_url(client: LanguageClient, memorizing_codegen1, tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.perf_counter()
    await start(client, memorizing_codegen1.gguf_path, tmp_path, remoteUrl=url)
    assert time.perf_counter() - started < 10
    assert record_status(client)[-1]["state"] == "error", record_status(client)
    # The showMessage follows the status.
    await wait_until(lambda: any(f"cannot reach the inference server at {url}" in m for m in shown(client)), 5,
                     "a showMessage naming the URL")
    uri = (tmp_path / "d.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    ")
    assert await asyncio.wait_for(inline(client, uri, 1, 4), 5) == []


async def test_timeout_gives_an_empty_result_and_a_logged_reason(client: LanguageClient, slow_synthesizing_codegen1,
                                                                inference_server, tmp_path: Path):
    server = inference_server(slow_synthesizing_codegen1.gguf_path)
    await start(client, slow_synthesizing_codegen1.gguf_path, tmp_path, maxTokens=1000, contextTokens=512, remoteUrl=server.url,
                remoteTimeoutMs=300)
    uri = (tmp_path / "t.py").as_uri()
    open_doc(client, uri, "def main():\n    ")
    started = time.perf_counter()
    items = await asyncio.wait_for(inline(client, uri, 1, 4), 5)
    took = time.perf_counter() - started
    assert items == []
    assert took < 1.5
    [answer] = requests(client, uri)
    assert answer.finish == "error" and "did not finish within 300 ms" in answer.reason, answer
