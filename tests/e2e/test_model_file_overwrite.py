"""The model file overwritten in place (same inode, like `cp` over an existing file) while someone types.

Issue 30: five in-place overwrites during a typing trace, alternating between two models of the same size
and layout, each written in a few chunks with small sleeps. The server never gives up, every suggestion it
gives is one a whole model gives at that cursor (nothing from a half-written file, nor from a loaded model
whose file changed under it), it reloads at most once per overwrite, and in the end it answers as the
model written last.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from support.files import copy_model, stats, wait_until
from support.lsp import change_doc, inline, open_doc, record_status, start

BASE = "import os\n\n\ndef read_config(path):\n"
TYPED = "    with open(path) as fh:\n        "
STATES = [BASE + TYPED[:k] for k in range(len(TYPED) + 1)]  # the document at each step of the typing loop
MEMORIZED = STATES[-1]  # memorizing_codegen1 answers "return fh.read()" here
OVERWRITES = 5
CHUNKS = 8
CHUNK_SLEEP_S = 0.12
TYPING_STEP_S = 0.25  # a character and an inline request, four times a second
OPTIONS = dict(threads=1, maxTokens=12, crossFileTokens=0)  # other files in the prompt would vary it


def position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


def configure(client: LanguageClient, **section) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"codegenLsp": section}))


def close_doc(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))


def states_of(client: LanguageClient, since: int = 0) -> list[str]:
    return [s["state"] for s in record_status(client)[since:]]


async def ready_again(client: LanguageClient, since: int, timeout: float = 60) -> None:
    """A load started after status #`since` and the model is ready (the last status says so)."""
    await wait_until(lambda: "loading" in states_of(client, since) and states_of(client)[-1] == "ready",
                     timeout, f"a reload after status #{since}: {record_status(client)[since:]}")


async def learn(client: LanguageClient, root: Path, tag: str) -> list[str]:
    """The loaded model's answer at every state, each asked in a fresh document (no cache can answer)."""
    answers = []
    for index, text in enumerate(STATES):
        uri = (root / f"learn-{tag}-{index}.py").as_uri()
        open_doc(client, uri, text)
        items = await asyncio.wait_for(inline(client, uri, *position(text)), 30)
        answers.append(items[0].insert_text if items else "")
        close_doc(client, uri)
    return answers


def overwrite_in_place(target: Path, data: bytes) -> None:
    """Rewrite `target`'s bytes through the same inode, a chunk at a time, then cut it to the new length."""
    step = -(-len(data) // CHUNKS)
    with open(target, "r+b") as file:
        for start_at in range(0, len(data), step):
            file.write(data[start_at:start_at + step])
            file.flush()  # the bytes reach the page cache: a mapping of the file sees them now
            if start_at + step < len(data):
                time.sleep(CHUNK_SLEEP_S)
        file.truncate(len(data))


async def test_model_file_overwritten_in_place_while_typing(client: LanguageClient, tiny_codegen1,
                                                            memorizing_codegen1, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    sources = [Path(tiny_codegen1.gguf_path), Path(memorizing_codegen1.gguf_path)]
    contents = [p.read_bytes() for p in sources]
    assert len(contents[0]) == len(contents[1])  # same factory, same shapes: the bytes line up
    first, second = copy_model(sources[0], models / "a.gguf"), copy_model(sources[1], models / "b.gguf")
    target = copy_model(sources[0], models / "model.gguf")
    inode = target.stat().st_ino

    # What each whole model answers at every cursor of the trace.
    await start(client, first, tmp_path, **OPTIONS)
    answers = [await learn(client, tmp_path, "a")]
    since = len(record_status(client))
    configure(client, model=str(second), **OPTIONS)
    await ready_again(client, since)
    answers.append(await learn(client, tmp_path, "b"))
    assert answers[1][-1] == "return fh.read()", answers[1]
    assert answers[0] != answers[1]
    since = len(record_status(client))
    configure(client, model=str(target), **OPTIONS)
    await ready_again(client, since)
    await asyncio.sleep(0.5)  # the watcher starts after "ready": let it set up its inotify watch

    trace_start = len(record_status(client))
    uri = (tmp_path / "main.py").as_uri()
    open_doc(client, uri, STATES[0])
    asked: list[tuple[int, asyncio.Task]] = []
    typing_done = asyncio.Event()

    async def type_loop() -> None:
        version, index = 1, 0
        while not typing_done.is_set():
            old, index = STATES[index], (index + 1) % len(STATES)
            new = STATES[index]
            version += 1
            if index:  # one character typed
                change_doc(client, uri, version, position(old), position(old), new[len(old):])
            else:  # the typed part deleted: start over
                change_doc(client, uri, version, position(new), position(old), "")
            asked.append((index, asyncio.ensure_future(inline(client, uri, *position(new)))))
            await asyncio.sleep(TYPING_STEP_S)

    typing = asyncio.ensure_future(type_loop())
    reloads: list[int] = []  # loads ("loading" statuses and restarts) that followed each overwrite
    try:
        await asyncio.sleep(1.5)
        for number in range(OVERWRITES):
            mark = len(record_status(client))
            await asyncio.to_thread(overwrite_in_place, target, contents[(number + 1) % 2])
            assert target.stat().st_ino == inode
            await ready_again(client, mark)
            await asyncio.sleep(3.0)  # a second reload for the same overwrite would start by now
            seen = record_status(client)[mark:]
            reloads.append(states_of(client, mark).count("loading") + restarts_in(seen))
        await asyncio.sleep(1.0)
    finally:
        typing_done.set()
        await typing
    results = [(index, await asyncio.wait_for(task, 60)) for index, task in asked]

    statuses = record_status(client)[trace_start:]
    assert not any("gave up" in (s["detail"] or "") for s in record_status(client)), statuses
    assert reloads and all(count <= 1 for count in reloads), (reloads, statuses)
    total = states_of(client, trace_start).count("loading") + restarts_in(statuses)
    assert total <= OVERWRITES, (total, statuses)

    # Every suggestion is what a whole model answers there, or the rest of one given earlier that the
    # typing went through (the typed-through cache).
    given = [(STATES[index], items[0].insert_text) for index, items in results if items and items[0].insert_text]
    whole = {(STATES[i], answers[m][i]) for i in range(len(STATES)) for m in (0, 1) if answers[m][i]}
    ends = {prefix + text for prefix, text in whole}
    strange = [(prefix[len(BASE):], text) for prefix, text in given
               if (prefix, text) not in whole and prefix + text not in ends]
    assert not strange, (strange, len(given))
    assert given, results

    # The model written last (memorizing_codegen1) answers now.
    final = (tmp_path / "final.py").as_uri()
    open_doc(client, final, MEMORIZED)
    items = await asyncio.wait_for(inline(client, final, *position(MEMORIZED)), 30)
    assert [i.insert_text for i in items] == ["return fh.read()"], statuses
    refused = sum("rewritten in place" in s.reason for s in stats(client))
    print(f"loads per overwrite: {reloads}; {len(given)} suggestions of {len(results)} requests checked; "
          f"{refused} model calls refused while the file differed from what was loaded")


def restarts_in(seen: list[dict]) -> int:
    """Engine restarts in a slice of statuses: "ready" right after an "error"."""
    return sum(before["state"] == "error" and s["state"] == "ready" for before, s in zip(seen, seen[1:]))
