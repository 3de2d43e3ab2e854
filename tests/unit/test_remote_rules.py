"""One set of rules for every engine: each rule the in-process engine applies to what it generates
(engine/decode_rules.py: a stop string, a loop starting, the token budget; token healing's strip) is run on
the same generated text through the in-process engine's loop (`decode_like_in_process`, what llama_runner
does token by token) and through the remote engine (a loopback OpenAI-compatible server streaming that
text a token a chunk), and both must give the same suggestion. Then what only the API path can meet: a
server that ignores or refuses the healing grammar, a stream cut short, a server whose tokenizer is not the
local GGUF's."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.decode_rules import DecodeRules
from codegen_lsp.engine.jobs import GenerationJob
from codegen_lsp.engine.remote import RemoteConfig
from codegen_lsp.engine.remote_heal import PROBE
from support.loopback_http import Exchange, LoopbackServer, text_chunk

PREFIX = "def total(values):\n    "  # ends in indentation: healing (without a local tokenizer) cuts "    "
LOOP = "x = 1\n"


def decode_like_in_process(job: GenerationJob, before_cursor: str, tokens: list[str],
                           healing_tokens: int = 1) -> tuple[str, str]:
    """llama_runner's loop: a token at a time after the `healing_tokens` that spelled the cut text (they
    count against maxTokens), DecodeRules after each, cut where it ends."""
    rules, text = DecodeRules(job, before_cursor, job.max_tokens - healing_tokens), ""
    for n, token in enumerate(tokens, 1):
        text += token
        if finish := rules.check(text, n):
            return rules.cut(text, finish), finish
    return text, "end"


# name, the tokens generated after the cut text, job settings, the suggestion both must give, its finish
RULES = [
    ("stop string", ["return", " total", "\n", "    x"], {"stop_strings": ("\n",)}, "return total", "stop"),
    ("loop", ["x", " =", " 1", "\n"] * 12, {}, "x = 1\n", "loop"),
    ("token budget", ["a", "b", "c", "d", "e"], {"max_tokens": 3}, "ab", "length"),  # the cut text's token counts
    ("end of text", ["return", " sum", "(values)"], {}, "return sum(values)", "end"),
]


def streaming(tokens: list[str], every_s: float = 0.0, done: bool = True):
    def send(ex: Exchange) -> None:
        ex.sse_start()
        for token in tokens:
            ex.event(text_chunk(token))
            time.sleep(every_s)
        ex.event(text_chunk("", "stop"))
        if done:
            ex.event("[DONE]")
    return send


def models(owned_by: str):
    def send(ex: Exchange) -> None:
        ex.json({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": owned_by}]})
    return send


def bodies(server: LoopbackServer) -> list[dict]:
    return [json.loads(ex.body) for ex in server.requests if ex.path == "/v1/completions"]


@pytest.mark.parametrize("owned_by", ["llamacpp", "vllm"], ids=["grammar", "check"])
@pytest.mark.parametrize("name,tokens,settings,want,finish", RULES, ids=[r[0] for r in RULES])
def test_each_rule_gives_the_same_suggestion_in_process_and_through_the_api(engine, name, tokens, settings, want,
                                                                          finish, owned_by):
    job = GenerationJob([Text(PREFIX)], **{"max_tokens": 64, **settings})
    assert decode_like_in_process(job, PREFIX, tokens) == (want, finish)
    # The server spells the cut indentation first, as a healed model does (the grammar makes it).
    with LoopbackServer({"/v1/models": models(owned_by), "/v1/completions": streaming(["    ", *tokens])}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        result = engine.submit(job).result(10)
    assert (result.text, result.finish_reason, result.healed) == (want, finish, "    ")
    body = bodies(server)[0]
    assert body["prompt"] == PREFIX[:-4]  # cut at the token boundary
    assert ("grammar" in body) == (owned_by == "llamacpp")
    if owned_by == "llamacpp":
        assert body["grammar"] == 'root ::= "    " [^\\x00]*'
    assert "stop" not in body  # applied here, after the cut text, as in-process


def test_a_loop_closes_the_stream_where_it_starts(engine):
    """The server would go on for 200 tokens; the stream is closed once the loop shows, which stops it."""
    tokens = ["    ", *(["x", " =", " 1", "\n"] * 50)]
    with LoopbackServer({"/v1/completions": streaming(tokens, every_s=0.01)}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        result = engine.submit(GenerationJob([Text(PREFIX)], max_tokens=256)).result(10)
    assert (result.text, result.finish_reason) == (LOOP, "loop")
    assert result.generated_tokens < 40, result  # closed near the loop's start, not at the 201st token


def test_an_answer_that_leaves_the_cut_text_is_asked_again_once_with_the_whole_prompt(engine, caplog):
    answers = iter([["x = 2"], ["return 0"]])  # the first ignores the cut "    "; the second is plain

    def completions(ex: Exchange) -> None:
        streaming(next(answers))(ex)

    with caplog.at_level(logging.INFO), \
            LoopbackServer({"/v1/models": models("vllm"), "/v1/completions": completions}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        result = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
    assert (result.text, result.healed) == ("return 0", "")
    first, second = bodies(server)
    assert (first["prompt"], second["prompt"]) == (PREFIX[:-4], PREFIX)  # one extra round-trip
    assert sum("did not begin with the text healing cut" in r.message for r in caplog.records) == 1


def test_a_server_that_refuses_the_grammar_is_checked_instead_from_then_on(engine, caplog):
    def completions(ex: Exchange) -> None:
        body = json.loads(ex.body)
        if "grammar" in body:
            ex.json({"error": {"message": "grammar: unknown field"}}, "400 Bad Request")
        else:  # the whole prompt ends in the indentation; the cut one does not
            streaming(["return", " 1"] if body["prompt"].endswith(" ") else ["    ", "return", " 1"])(ex)

    with caplog.at_level(logging.INFO), \
            LoopbackServer({"/v1/models": models("llamacpp"), "/v1/completions": completions}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        first = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
        second = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
    assert (first.text, first.healed) == ("return 1", "")  # asked again with the whole prompt
    assert (second.text, second.healed) == ("return 1", "    ")  # checked and stripped
    sent = bodies(server)
    assert ["grammar" in b for b in sent] == [True, False, False]
    assert "check (the server refused the grammar)" in engine.detail
    assert sum("refused the grammar" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("cut", ["no [DONE]", "mid-line"])
def test_a_stream_cut_short_inserts_nothing(engine, cut):
    def completions(ex: Exchange) -> None:
        ex.sse_start()
        ex.event(text_chunk("    "))
        ex.event(text_chunk("return"))
        if cut == "mid-line":
            ex.send(b'data: {"choices": [{"text": " to')  # the connection ends inside a chunk

    with LoopbackServer({"/v1/completions": completions}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        result = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
    assert (result.text, result.finish_reason) == ("", "error"), result
    assert engine.reports and server.url in engine.reports[-1]


def test_a_half_character_at_the_end_is_not_inserted(engine):
    with LoopbackServer({"/v1/completions": streaming(["    ", "name", " = \"caf", "\ufffd"])}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        result = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
    assert result.text == 'name = "caf'


# -- the local GGUF's tokenizer against the server's -----------------------------------------------------


def tokenizer(tokens: list[int]):
    def send(ex: Exchange) -> None:
        assert json.loads(ex.body)["content"] == PROBE
        ex.json({"tokens": tokens})
    return send


def local_tokens(model: Path, text: str) -> list[int]:
    from codegen_lsp.engine.process import VocabProcess

    vocab = VocabProcess(model)
    try:
        return vocab.tokenize(text)
    finally:
        vocab.close()


def test_the_same_tokenizer_heals_at_the_last_token(engine, smollm2: Path):
    prefix = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\nresult = add("
    routes = {"/v1/models": models("llamacpp"), "/tokenize": tokenizer(local_tokens(smollm2, PROBE)),
              "/v1/completions": streaming(["(", "3", ", 4)"])}
    with LoopbackServer(routes) as server:
        engine.load(RemoteConfig(model_path=smollm2, url=server.url, n_ctx=512)).result(30)
        result = engine.submit(GenerationJob([Text(prefix)])).result(30)
    assert engine.detail == "llama-server; token healing: by grammar", engine.detail
    body = bodies(server)[0]
    assert body["prompt"] == prefix[:-1] and body["grammar"] == 'root ::= "(" [^\\x00]*'  # "(" is SmolLM2's last token
    assert (result.text, result.healed) == ("3, 4)", "(")


def test_another_tokenizer_turns_healing_off_and_says_so(engine, smollm2: Path):
    routes = {"/v1/models": models("llamacpp"), "/tokenize": tokenizer([1, 2, 3]),
              "/v1/completions": streaming(["return", " a"])}
    with LoopbackServer(routes) as server:
        engine.load(RemoteConfig(model_path=smollm2, url=server.url, n_ctx=512)).result(30)
        result = engine.submit(GenerationJob([Text("def f(a):\n    return ")])).result(30)
    assert "token healing: off" in engine.detail and "tokenizer differs from codegenLsp.model" in engine.detail
    assert "takes 3 tokens there" in engine.detail, engine.detail
    assert any("tokenizer is not codegenLsp.model's" in r for r in engine.reports)
    body = bodies(server)[0]
    assert body["prompt"] == "def f(a):\n    return " and "grammar" not in body  # sent whole: no healing
    assert result.text == "return a"


def test_a_request_preempts_a_suggestion_computed_ahead(engine):
    """A background job (a suggestion computed ahead, a warm-up) holds the remote engine's one worker while
    its stream runs: a request cancels it (the stream is closed) instead of waiting behind it."""
    def completions(ex: Exchange) -> None:
        if json.loads(ex.body)["prompt"].startswith("# ahead"):
            streaming(["    ", *["x"] * 400], every_s=0.02)(ex)  # 8 s of tokens, unless closed
        else:
            streaming(["    ", "return", " 1"])(ex)

    with LoopbackServer({"/v1/completions": completions}) as server:
        engine.load(RemoteConfig(url=server.url, n_ctx=512)).result(10)
        ahead = engine.submit(GenerationJob([Text("# ahead\n" + PREFIX)], max_tokens=400, background=True,
                                            stop_on_loop=False))
        deadline = time.monotonic() + 5
        while not server.requests[1:] and time.monotonic() < deadline:  # [0] is /v1/models
            time.sleep(0.01)
        asked = engine.submit(GenerationJob([Text(PREFIX)])).result(10)
        behind = ahead.result(10)
    assert asked.text == "return 1"
    assert behind.finish_reason == "cancelled" and behind.generated_tokens < 400, behind  # its stream closed
