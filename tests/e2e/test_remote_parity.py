"""The same suggestion wherever the model runs: SmolLM2-135M-Instruct Q4_1 in-process, through llama.cpp's
own C++ `llama-server` (built once per machine from the llama-cpp-python sdist of the installed version, so
it is the same llama.cpp) and through `python -m llama_cpp.server`, with the same GGUF given as `model`
(prompts built and counted as in-process), greedy decoding, at the twelve everyday cursors
(codegen_lsp_devtools/bench/everyday.py) and at the cursors where the remote path used to go wrong (after a typed space, on an
indented blank line, inside an identifier, after `return`).

Each server (an editor) is a real codegen-lsp server over LSP. Settings that only the in-process engine has
are set alike on every path: suffixFit off (it scores candidates with the model's own logits, which an
OpenAI-compatible API does not give), no speculative or warm-up work (their cache would answer instead of
the model), one suggestion per request.

Where answers may differ, and why (the test allows up to ALLOWED_DIFFERENCES of the cursors):
- llama-server evaluates the prompt in its own batches (and caches prompts between requests), llama-cpp-
  python in ours: the float sums come out in another order, and where two tokens' logits are within that
  rounding the greedy pick can differ. This is the only source of difference left once token healing,
  stop strings and the loop rule are applied the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_lsp.client import make_test_lsp_client

from support.everyday import EVERYDAY, HARD, split
from support.inference_servers import InferenceServer
from support.lsp import SERVER, inline, open_doc, record_events, start

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server] (the dev extra)")

CURSORS = [source for source, _ in EVERYDAY] + HARD
N_CTX = 2048
SAME = dict(speculativeSuggestions=False, warmAfterMs=0, crossFileTokens=0, suffixFit=False, firstSuggestionMs=0,
            temperature=0.0, contextTokens=N_CTX, offerModelDownload=False,
            # Long deadlines: a suggestion cut short by a busy machine would be a difference nobody made.
            requestTimeoutMs=120000, remoteTimeoutMs=120000)
AT_LEAST = 11  # of the twelve everyday cursors, as the issue asks
ALLOWED_DIFFERENCES = 1  # of all the cursors (see the module's docstring)


@pytest.fixture(scope="module")
def llama_server(smollm2: Path, tmp_path_factory):
    from codegen_lsp_devtools.bench.llama_server import LlamaServer, ensure_built

    binary, _ = ensure_built(echo=lambda message: print(message))
    server = LlamaServer(binary, smollm2, threads=2, n_ctx=N_CTX,
                         log_path=tmp_path_factory.mktemp("llama-server") / "server.log")
    server.start(timeout=120)
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def llama_cpp_server(smollm2: Path, tmp_path_factory):
    server = InferenceServer(smollm2, tmp_path_factory.mktemp("llama-cpp-server") / "server.log", n_ctx=N_CTX)
    yield server.wait_ready().url
    server.stop()


async def answers(root: Path, model: Path, **options) -> tuple[list[str], list[dict]]:
    """The first inline suggestion at every cursor, from one real codegen-lsp server; and its statuses."""
    client = make_test_lsp_client()
    record_events(client)
    await client.start_io(*SERVER, env=dict(os.environ))
    try:
        await start(client, model, root, **SAME, **options)
        got = []
        for i, source in enumerate(CURSORS):
            text, line, column = split(source)
            uri = (root / f"cursor{i}.py").as_uri()
            open_doc(client, uri, text)
            items = await inline(client, uri, line, column)
            got.append(str(items[0].insert_text) if items else "")
        return got, list(client.statuses)  # type: ignore[attr-defined]
    finally:
        await client.shutdown_session()


def compare(name: str, local: list[str], remote: list[str]) -> list[str]:
    differences = [f"{CURSORS[i]!r}: in-process {a!r}, {name} {b!r}" for i, (a, b) in enumerate(zip(local, remote))
                   if a != b]
    print(f"{name}: {len(CURSORS) - len(differences)}/{len(CURSORS)} the same as in-process" +
          "".join(f"\n  {d}" for d in differences))
    return differences


async def test_remote_servers_suggest_what_the_in_process_engine_does(tmp_path: Path, smollm2: Path, llama_server,
                                                                     llama_cpp_server):
    local, _ = await answers(tmp_path, smollm2)
    # Not vacuous: the in-process answers are real suggestions, and most are the expected code.
    assert sum(bool(a) for a in local) >= 12, local  # without suffixFit, two blank lines get nothing
    assert sum(a.startswith(want) for a, (_, want) in zip(local, EVERYDAY)) >= 6, local  # 7 here

    via_llama_server, statuses = await answers(tmp_path, smollm2, remoteUrl=llama_server)
    assert any("llama-server; token healing: by grammar" in (s.get("detail") or "") for s in statuses), statuses
    via_llama_cpp, _ = await answers(tmp_path, smollm2, remoteUrl=llama_cpp_server)

    everyday = len(EVERYDAY)
    for name, remote in (("llama-server", via_llama_server), ("llama_cpp.server", via_llama_cpp)):
        differences = compare(name, local, remote)
        assert sum(a == b for a, b in zip(local[:everyday], remote[:everyday])) >= AT_LEAST, differences
        assert len(differences) <= ALLOWED_DIFFERENCES, differences
