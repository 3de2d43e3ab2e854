"""An excluded document in the completion service (issue 35), with the scripted engine of
test_completion_service (no model, no LSP): no suggestion and no engine job for it, none of its text in
the ring, a cache, a warm-up or another document's prompt, and everything held of it purged at once
when it becomes excluded. The server's side (settings, git, the client's notice) is
tests/e2e/test_exclusion.py."""

from __future__ import annotations

import asyncio

from codegen_lsp.completion import FOCUS_SETTLE_S
from test_completion_service import URI, Harness, bounded

SECRET = "sk-live-0123456789abcdef"
ENV = "file:///.env"
RULE = "matches .env"


def open_env(h: Harness):
    return h.store.open(ENV, "dotenv", 1, f"API_KEY={SECRET}\nDEBUG=1\n")


def sent(submitted) -> str:
    """Everything a job carries to the engine (its segments: the file's text, other files' chunks...)."""
    return repr(submitted.job)


async def idle(h: Harness) -> None:
    """Long enough for anything scheduled (focus settle, warm-ups) to have reached the engine."""
    await asyncio.sleep(FOCUS_SETTLE_S + 0.2)


async def test_an_excluded_document_gets_no_suggestion_and_no_engine_job():
    h = Harness(warmAfterMs=50, speculativeSuggestions=True)
    h.excluded[ENV] = RULE
    env = open_env(h)
    h.service.seen(env, 0)
    h.service.focused(env, None)
    h.service.schedule_warm_up(env, 5)
    suggestion = await bounded(h.service.suggest(env, 8, 8))
    await h.service.speculate_next(env, env.text, "")
    await h.service.warm_up(env, env.text, "")
    await idle(h)
    assert (suggestion.text, suggestion.reason) == ("", f"excluded ({RULE})")
    assert [(s.kind, s.source, s.reason) for s in h.stats] == [("request", "none", f"excluded ({RULE})")]
    assert h.engine.jobs == []
    assert h.service.ring.chunks == [] and h.service.cache.lookup(ENV, env.text[:8], env.text[8:]) is None
    assert not h.service.warming and h.service._warm_up is None


async def test_an_excluded_documents_text_never_enters_another_documents_prompt():
    for excluded in (False, True):  # the control first: served, its chunk is in the prompt
        h = Harness()
        if excluded:
            h.excluded[ENV] = RULE
        h.service.seen(open_env(h), 0)
        doc = h.open("import os\n\napi_key = os.environ['API_KEY']\nDEBUG = ")
        h.service.seen(doc, 0)
        h.engine.auto = ["1"]
        await h.suggestion_at_end(doc)
        assert (SECRET in sent(h.engine.jobs[0])) is not excluded, sent(h.engine.jobs[0])


async def test_a_document_that_becomes_excluded_is_purged_at_once():
    h = Harness(warmAfterMs=10_000)
    env = h.store.open(ENV, "dotenv", 1, f"API_KEY={SECRET}\nDEBUG=1\nX")
    h.service.seen(env, 0)
    doc = h.open("import os\n\napi_key = os.environ['API_KEY']\nDEBUG = ")
    h.service.seen(doc, 0)
    h.engine.auto = ["1", "Y"]
    await h.suggestion_at_end(doc)  # computed with the .env chunk in its prompt: cached
    await h.suggestion_at_end(env)  # the .env's own answer: cached
    assert h.service.cache.lookup(URI, doc.text, "") and h.service.cache.lookup(ENV, env.text, "")
    task = asyncio.get_running_loop().create_task(h.service.suggest(env, 3, 3))  # a request in flight for it
    in_flight = await h.engine.job(2)
    h.service.schedule_warm_up(env, len(env.text))  # and a warm-up pending
    pending = h.service.warming[ENV]

    h.excluded[ENV] = RULE  # the settings change
    h.service.recheck({URI: "python", ENV: "dotenv"})
    assert in_flight.job.cancel.is_set() and (await bounded(task)).text == ""
    await asyncio.sleep(0)
    assert pending.cancelled()
    assert all(c.uri != ENV for c in h.service.ring.chunks)
    assert h.service.cache.lookup(ENV, env.text, "") is None
    assert h.service.cache.lookup(URI, doc.text, "") is None  # its prompt held the .env's chunk
    h.engine.auto = ["2"]
    await h.suggestion_at_end(h.store.apply_changes(URI, 2, []))
    assert SECRET not in sent(h.engine.jobs[-1])


async def test_a_closed_documents_chunks_are_purged_when_the_rules_change():
    h = Harness()
    env = open_env(h)
    h.service.seen(env, 0)
    h.service.closed(ENV)
    h.store.close(ENV)
    assert any(c.uri == ENV for c in h.service.ring.chunks)  # closed documents' chunks stay for the others
    h.excluded[ENV] = RULE
    h.service.recheck({})
    assert all(c.uri != ENV for c in h.service.ring.chunks)


async def test_a_rule_that_changes_without_a_recheck_still_keeps_the_chunks_out():
    """A .gitignore edited under a document: no settings change says so, the next prompt's check does."""
    h = Harness()
    h.service.seen(open_env(h), 0)
    doc = h.open("import os\n\napi_key = os.environ['API_KEY']\nDEBUG = ")
    h.excluded[ENV] = RULE
    h.engine.auto = ["1"]
    await h.suggestion_at_end(doc)
    assert SECRET not in sent(h.engine.jobs[0])
    assert all(c.uri != ENV for c in h.service.ring.chunks)
