"""Warm-ups on open and focus, and the full window after a short answer (issue 34), in the completion service
with the scripted engine of test_completion_service (no model, no LSP). The real model's side (the short
window, the background sequence, pre-emption in the engine process) is tests/e2e/test_first_keystroke.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from codegen_lsp.completion import WARMED
from codegen_lsp.engine.background import PromptRate, common_prefix
from codegen_lsp.engine.jobs import GenerationResult
from test_completion_service import URI, WAIT_S, Harness, bounded


async def test_a_focus_computes_the_suggestion_at_the_cursor_in_the_background_for_the_request_to_come():
    h = Harness()
    doc = h.open("import os\n\ndef main():\n    \n")
    cursor = len("import os\n\ndef main():\n    ")
    h.service.focused(doc, cursor)
    job = await h.engine.job(0)
    assert job.job.background and not job.job.warm_only, job.job
    assert job.prompt == "import os\n\ndef main():\n    "
    assert job.job.prompt_budget_s == h.settings.first_suggestion_ms / 1000
    job.answer("return os.getcwd()")
    (warm,) = await h.stats_of("warm")
    assert (warm.reason, warm.source) == ("ok", "model"), warm
    answer = await bounded(h.service.suggest(doc, cursor, cursor))
    assert answer.text == "return os.getcwd()" and len(h.engine.jobs) == 1  # no second model call
    assert h.requests()[-1].source == "recent-context cache"


async def test_a_focus_without_a_cursor_warms_the_file_start_decoding_nothing():
    h = Harness()
    doc = h.open("import os\n\ndef main():\n    return os.getcwd()\n")
    h.service.focused(doc, None)
    job = await h.engine.job(0)
    assert job.job.warm_only and job.job.background, job.job
    assert job.prompt == doc.text  # a short file: all of it
    job.future.set_result(GenerationResult("", "warm", prompt_tokens=9, evaluated_prompt_tokens=9))
    (warm,) = await h.stats_of("warm")
    assert (warm.reason, warm.finish, warm.evaluated_prompt_tokens) == (WARMED, "warm", 9), warm


async def test_a_new_focus_replaces_the_pending_warm_up_so_warm_ups_never_queue():
    h = Harness()
    docs = [h.store.open(f"file:///f{i}.py", "python", 1, f"value_{i} = {i}\n") for i in range(50)]
    for doc in docs:  # a project restore: fifty files opened at once
        h.service.focused(doc, None)
    first = await h.engine.job(0)
    assert first.job.segments and "value_49" in first.prompt  # only the last one is warmed
    await asyncio.sleep(0.3)
    assert len(h.engine.jobs) == 1


async def test_closing_the_document_drops_its_warm_up():
    h = Harness()
    doc = h.open("total = 1\n")
    h.service.focused(doc, None)
    h.service.closed(URI)
    h.store.close(URI)
    await asyncio.sleep(0.3)
    assert h.engine.jobs == []


async def test_a_short_answer_is_followed_by_the_full_window_in_the_background():
    h = Harness()
    doc = h.open("total = ")
    task = h.suggest_at_end(doc)
    request = await h.engine.job(0)
    assert not request.job.background and not request.job.warm_only
    request.future.set_result(replace(GenerationResult("price", "end", 3, 3, 1), window="short"))
    assert (await bounded(task)).text == "price"
    assert h.requests()[-1].window == "short"
    extend = await h.engine.job(1)
    assert extend.job.warm_only and extend.job.background and extend.prompt == "total = ", extend.job


async def test_a_full_answer_needs_no_extension():
    h = Harness()
    doc = h.open("total = ")
    h.engine.auto = ["price"]
    assert (await h.suggestion_at_end(doc)).text == "price"
    await asyncio.sleep(0.3)
    assert len(h.engine.jobs) == 1 and h.requests()[-1].window == "full"


async def test_a_pre_empted_warm_up_is_sent_again_later():
    for offset in (None, 4):  # the file's start; the suggestion at a cursor
        h = Harness()
        doc = h.open("total = 1\n")
        h.service.focused(doc, offset)
        first = await h.engine.job(0)
        first.job.cancel.set()  # what the engine does when a request arrives
        again = await asyncio.wait_for(h.engine.job(1), WAIT_S)
        assert again.job.warm_only == first.job.warm_only and again.prompt == first.prompt
        assert [s.reason for s in h.stats if s.kind == "warm"] == ["superseded by a newer request"]


def test_prompt_rate_is_unknown_until_measured_and_follows_what_it_sees():
    rate = PromptRate()
    assert rate.tokens_within(1.0) == 0
    rate.observe(8, 0.001)  # too few tokens to say anything
    assert rate.tokens_within(1.0) == 0
    rate.observe(200, 1.0)
    assert rate.tokens_within(1.0) == 200
    rate.observe(400, 1.0)
    assert 200 < rate.tokens_within(1.0) < 400


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2]) == 2


async def test_once_the_full_window_is_built_its_suggestion_replaces_the_short_windows():
    h = Harness()
    doc = h.open("import os\n\ndef main():\n    \n")
    cursor = len("import os\n\ndef main():\n    ")
    h.service.focused(doc, cursor)
    ahead = await h.engine.job(0)
    ahead.future.set_result(replace(GenerationResult("return None", "end", 3, 3, 2), window="short"))
    extend = await h.engine.job(1)
    assert extend.job.warm_only and extend.prompt == ahead.prompt
    extend.future.set_result(GenerationResult("", "warm", 9, 6, window="full"))
    again = await h.engine.job(2)
    assert again.job.background and not again.job.warm_only and again.prompt == ahead.prompt, again.job
    again.future.set_result(GenerationResult("return os.getcwd()", "end", 9, 0, 5))
    await h.stats_of("warm")
    while len([s for s in h.stats if s.kind == "warm"]) < 3:
        await asyncio.sleep(0.01)
    answer = await bounded(h.service.suggest(doc, cursor, cursor))
    assert answer.text == "return os.getcwd()" and len(h.engine.jobs) == 3, answer
