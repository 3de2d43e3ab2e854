"""The structured notifications' payloads (codegen_lsp.events): one definition, read back the same by
clients that get a dict or the attribute object a pygls client builds from JSON."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from codegen_lsp.events import SuggestionStats
from codegen_lsp.headless import model_outcome


def test_stats_travel_as_camel_case_json_and_come_back_equal():
    stats = SuggestionStats("file:///a.py", 3, "speculative", "model", "superseded by a newer request", "cancelled",
                            prompt_tokens=40, evaluated_prompt_tokens=2, generated_tokens=5, max_tokens=64,
                            prompt_ms=1.5, generate_ms=20.0, drafted_tokens=6, accepted_tokens=4, window="short")
    wire = json.loads(json.dumps(stats.to_json()))
    assert wire == {"uri": "file:///a.py", "version": 3, "kind": "speculative", "source": "model",
                    "reason": "superseded by a newer request", "finish": "cancelled", "promptTokens": 40,
                    "evaluatedPromptTokens": 2, "generatedTokens": 5, "maxTokens": 64, "promptMs": 1.5,
                    "generateMs": 20.0, "draftedTokens": 6, "acceptedTokens": 4, "window": "short"}
    assert SuggestionStats.from_json(wire) == stats
    assert SuggestionStats.from_json(SimpleNamespace(**wire)) == stats  # what pygls hands a client handler
    assert not stats.model_call


def test_a_cache_hit_has_no_finish_and_is_no_model_call():
    hit = SuggestionStats("file:///a.py", 2, "request", "typed-through cache", "ok")
    back = SuggestionStats.from_json(json.loads(json.dumps(hit.to_json())))
    assert back == hit and back.finish is None and not back.model_call
    assert SuggestionStats("u", 1, "request", "model", "empty completion", "end").model_call


def test_headless_readiness_comes_from_the_status_notifications():
    client = SimpleNamespace(statuses=[], server_log=["model ready: a log line nobody reads"],
                             _server=SimpleNamespace(returncode=None))

    async def scenario():
        waiting = asyncio.ensure_future(model_outcome(client, timeout=5))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # log text is not readiness
        client.statuses += [{"state": "loading"}, {"state": "ready", "path": "/m.gguf"}]
        return await waiting

    assert asyncio.run(scenario()) == {"state": "ready", "path": "/m.gguf"}
