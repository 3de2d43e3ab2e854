"""Fill in the middle with a prefix-only model (context/suffix_fit.py, engine/candidates.py suffix_scores):
on a blank line with code below, the first line that code follows best is suggested. Judged on
SmolLM2-135M (a real model made elsewhere, not trained for fill-in-the-middle) at the demo's cursor."""

from __future__ import annotations

from pathlib import Path

from pytest_lsp import LanguageClient

from support import REPO_ROOT
from support.lsp import inline, open_doc, start, wait_for_stats

DEMO = REPO_ROOT / "docs" / "demo" / "steps.py"
CURSOR = (8, 12)  # the blank line inside the loop, after its indentation (what `make demo` asks)
RIGHT = "paths.append(os.path.join(folder, name))"


async def suggestion(client: LanguageClient, root: Path, model: Path, **options) -> tuple[str, object]:
    await start(client, model, root, speculativeSuggestions=False, warmAfterMs=0, **options)
    uri = (root / "steps.py").as_uri()
    open_doc(client, uri, DEMO.read_text())
    items = await inline(client, uri, *CURSOR)
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "request" and s.source == "model",
                                 timeout=60)
    return (str(items[0].insert_text) if items else ""), stats


async def test_the_line_the_code_below_follows_is_chosen(client: LanguageClient, tmp_path: Path, smollm2: Path):
    text, stats = await suggestion(client, tmp_path, smollm2)
    assert text.strip() == RIGHT, text
    assert stats.reason == "ok"


async def test_without_it_the_model_writes_another_line(client: LanguageClient, tmp_path: Path, smollm2: Path):
    """The same cursor with suffixFit off: the greedy line, which the code below does not follow (this is
    what the feature changes; if SmolLM2 wrote the right line by itself, the test above would prove nothing)."""
    text, _ = await suggestion(client, tmp_path, smollm2, suffixFit=False)
    assert text.strip() and not text.strip().startswith("paths.append"), text


async def test_mid_line_cursors_are_left_to_the_model(client: LanguageClient, tmp_path: Path, smollm2: Path):
    """Inside a line the choice does not apply: one candidate is decoded, as before."""
    await start(client, smollm2, tmp_path, speculativeSuggestions=False, warmAfterMs=0, maxTokens=16)
    uri = (tmp_path / "add.py").as_uri()
    open_doc(client, uri, "def add(a, b):\n    return \n\n\nprint(add(1, 2))\n")
    items = await inline(client, uri, 1, len("    return "))
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.source == "model", timeout=60)
    assert items and str(items[0].insert_text).startswith("a + b")
    assert stats.generated_tokens <= 16, stats  # one sequence within maxTokens: no candidates decoded


async def test_a_full_window_leaves_the_candidates_no_room_and_still_answers(client: LanguageClient, tmp_path: Path,
                                                                             smollm2: Path):
    """The prompt fills the window but for one suggestion's room: 8 sequences do not fit beside it. The
    alternatives end where the cells run out instead of failing the request (bench quality found
    `llama_decode failed (1) decoding 8 candidates` on long files)."""
    await start(client, smollm2, tmp_path, speculativeSuggestions=False, warmAfterMs=0, contextTokens=256,
                maxTokens=64)
    body = "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 80))
    text = f"def pipeline(value_0):\n{body}    \n    return value_79\n"
    uri = (tmp_path / "long.py").as_uri()
    open_doc(client, uri, text)
    await inline(client, uri, 80, 4)
    stats = await wait_for_stats(client, lambda s: s.uri == uri and s.kind == "request" and s.source == "model",
                                 timeout=60)
    assert stats.finish != "error" and "failed" not in stats.reason, stats
    assert stats.prompt_tokens > 256 - 64 - 16, stats  # the window was full indeed
