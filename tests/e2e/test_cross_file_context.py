"""Context from the other files you work in, through the real server: a name defined only in another open
file reaches the suggestion (judged on SmolLM2-135M, a real model that copies from its context), and the
prompt's start stays put while typing, so the KV cache keeps serving keystrokes."""

from __future__ import annotations

import statistics
from pathlib import Path

from pytest_lsp import LanguageClient

from support.lsp import change_doc, inline, open_doc, start, wait_for_stats

UTILS = ("import zlib\n\n\ndef compute_checksum_v2(data):\n"
         "    \"\"\"CRC-32 of data, folded to 16 bits.\"\"\"\n    return zlib.crc32(data) & 0xFFFF\n")
MAIN = "from utils import *\n\n\ndef verify(payload, expected):\n    return compute_"
NAME = "checksum_v2"


async def suggestion_in_main(client: LanguageClient, tmp_path: Path) -> str:
    uri = (tmp_path / "main.py").as_uri()
    open_doc(client, uri, MAIN + "\n")
    lines = MAIN.split("\n")
    items = await inline(client, uri, len(lines) - 1, len(lines[-1]))
    return str(items[0].insert_text) if items else ""


async def test_a_name_from_another_open_file_reaches_the_suggestion(client: LanguageClient, tmp_path: Path,
                                                                     smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=16)
    open_doc(client, (tmp_path / "utils.py").as_uri(), UTILS)
    got = await suggestion_in_main(client, tmp_path)
    assert got.startswith(NAME), got


async def test_without_the_other_file_the_name_is_not_there(client: LanguageClient, tmp_path: Path, smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=16)
    got = await suggestion_in_main(client, tmp_path)
    assert NAME not in got, got


async def test_the_setting_turns_it_off(client: LanguageClient, tmp_path: Path, smollm2: Path):
    await start(client, smollm2, tmp_path, maxTokens=16, crossFileTokens=0)
    open_doc(client, (tmp_path / "utils.py").as_uri(), UTILS)
    got = await suggestion_in_main(client, tmp_path)
    assert NAME not in got, got


OTHERS = {
    "shapes.py": "".join(f"def area_{n}(width, height):\n    return width * height * {n}\n\n" for n in range(4)),
    "orders.py": "".join(f"class Order{n}:\n    total = {n}\n    currency = 'EUR'\n\n" for n in range(3)),
    "limits.py": "".join(f"LIMIT_{n} = {n * 10}  # width height total\n" for n in range(6)),
}
TYPED = "result = area_3(width, height) + Order2.total"


async def test_typing_with_three_other_files_open_evaluates_few_tokens(client: LanguageClient, tmp_path: Path,
                                                                       tiny_codegen1):
    """Median tokens evaluated per keystroke stay <= 32: the chunks sit before the file, in a stable order."""
    await start(client, tiny_codegen1.gguf_path, tmp_path, maxTokens=4, speculativeSuggestions=False,
                warmAfterMs=0, contextTokens=2048)
    for name, text in OTHERS.items():
        open_doc(client, (tmp_path / name).as_uri(), text)
    uri = (tmp_path / "main.py").as_uri()
    head = "from shapes import *\nfrom orders import *\n\n\ndef total(width, height):\n    "
    open_doc(client, uri, head + "\n")
    line, column = head.count("\n"), len(head.split("\n")[-1])
    evaluated, prompts = [], []
    for n, char in enumerate(TYPED, start=2):
        change_doc(client, uri, n, (line, column), (line, column), char)
        column += 1
        await inline(client, uri, line, column)
        stats = await wait_for_stats(client, lambda s, v=n: s.uri == uri and s.version == v and s.kind == "request",
                                     what=f"stats of keystroke {n}")
        if stats.source == "model":  # (typing through a shown suggestion evaluates nothing at all)
            evaluated.append(stats.evaluated_prompt_tokens)
            prompts.append(stats.prompt_tokens)
    assert len(evaluated) >= len(TYPED) // 2, evaluated
    assert min(prompts) > 150, prompts  # the three other files are in the prompt (the file alone is ~28 tokens)
    assert statistics.median(evaluated) <= 32, evaluated


async def test_a_region_the_editor_shows_joins_the_context(client: LanguageClient, tmp_path: Path, smollm2: Path):
    """`codegenLsp/didView`: the definition sits far down a long file; opening the file brings its top
    into the ring, viewing the definition brings the definition. With the full window: the new chunk changes
    the prompt's start, and a short window (firstSuggestionMs) keeps half of its 256 tokens at most for other
    files, too little for this chunk; the full window built after it would have it from the next keystroke."""
    await start(client, smollm2, tmp_path, maxTokens=16, firstSuggestionMs=0)
    filler = "".join(f"COLOR_{n} = \"#{n * 4099:06x}\"\n" for n in range(150))
    uri = (tmp_path / "utils.py").as_uri()
    open_doc(client, uri, filler + UTILS)
    assert NAME not in await suggestion_in_main(client, tmp_path)
    client.protocol.notify("codegenLsp/didView", {"uri": uri, "line": filler.count("\n") + 4})
    client.protocol.notify("codegenLsp/didView", {"uri": "file:///nowhere.py", "line": "x"})  # ignored, logged
    main = (tmp_path / "main.py").as_uri()
    change_doc(client, main, 2, (4, 0), (4, 0), "")  # a new version: no cached answer
    lines = MAIN.split("\n")
    items = await inline(client, main, len(lines) - 1, len(lines[-1]))
    assert items and str(items[0].insert_text).startswith(NAME), items
