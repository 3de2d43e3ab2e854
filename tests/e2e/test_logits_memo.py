"""The logits memo (engine/logits_memo.py) on real llama.cpp with real models (SmolLM2-135M, made
elsewhere, and the embedded default model): typing through a file with token healing, a prompt the
KV cache holds whole is answered without evaluating anything, and every answer is the one a runner
without the memo gives, including after edits that rewrite cells the memo had rows for."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen_lsp.context.prompt import Text
from codegen_lsp.engine.jobs import EngineConfig, GenerationJob, GenerationResult
from codegen_lsp.engine.llama_runner import LlamaRunner
from support import REPO_ROOT
from support.default_model import MODEL as DEFAULT_MODEL

SOURCE = (REPO_ROOT / "server" / "codegen_lsp" / "engine" / "jobs.py").read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=["smollm2", "default"])
def runners(request) -> tuple[LlamaRunner, LlamaRunner]:
    model = Path(request.getfixturevalue("smollm2") if request.param == "smollm2" else DEFAULT_MODEL)
    made = LlamaRunner(), LlamaRunner(memo_rows=0)
    for runner in made:
        runner.load(EngineConfig(model, n_ctx=1024, seed=0))
    yield made
    for runner in made:
        runner.free()


def ask(runner: LlamaRunner, prefix: str, heal: bool = True, max_tokens: int = 8) -> GenerationResult:
    job = GenerationJob([Text(prefix, role="prefix")], max_tokens=max_tokens, stop_strings=("\n",), heal=heal)
    return runner.generate(job)


def typing(text: str, start: int, keys: int):
    """The prefixes an editor sends while `text[start:start + keys]` is typed one key at a time, with
    one backspace and retype in the middle."""
    for n in range(keys):
        yield text[:start + n]
        if n == keys // 2:
            yield text[:start + n - 1]  # a key deleted ...
            yield text[:start + n]  # ... and typed again


def test_typing_with_the_memo_answers_as_without_it(runners):
    memo, plain = runners
    start = SOURCE.index("class GenerationJob")
    evaluated_none = 0
    for prefix in typing(SOURCE, start, 40):
        got, expected = ask(memo, prefix), ask(plain, prefix)
        assert (got.text, got.finish_reason, got.generated_tokens) == (expected.text, expected.finish_reason,
                                                                  expected.generated_tokens), repr(prefix[-40:])
        assert expected.evaluated_prompt_tokens >= 1  # without the memo the last token is evaluated again
        evaluated_none += got.evaluated_prompt_tokens == 0
    # Healing ends most of these prompts before the word being typed, where the last one ended.
    assert evaluated_none >= 10, evaluated_none


def test_an_edit_before_the_kept_rows_is_not_answered_from_them(runners):
    memo, plain = runners
    prefix = SOURCE[:SOURCE.index("class GenerationJob") + 30]
    ask(memo, prefix)
    # The same number of tokens, one of them earlier in the text changed: the cache holds everything
    # up to the edit, and no row kept for the old text after it may be used.
    edited = prefix.replace("from __future__", "from __futur__", 1)
    assert edited != prefix
    got, expected = ask(memo, edited), ask(plain, edited)
    assert got.evaluated_prompt_tokens >= 1
    assert (got.text, got.generated_tokens) == (expected.text, expected.generated_tokens)
    # And asked again unchanged, the rows kept just now answer it, with healing and without (then the
    # first token is decoded straight after the prompt: the cells of the last answer must go first).
    again = ask(memo, edited)
    assert again.evaluated_prompt_tokens == 0 and again.text == got.text
    ask(memo, edited, heal=False)  # healing may have chosen another last token than the text's own
    for _ in range(2):
        unhealed = ask(memo, edited, heal=False)
        assert unhealed.evaluated_prompt_tokens == 0 and unhealed.generated_tokens > 1
        assert unhealed.text == ask(plain, edited, heal=False).text


def test_rows_of_cells_an_edit_rewrote_are_not_used(runners):
    """The cache holds a prompt whole, but the memo's row for its last token was computed before an
    edit further up rewrote that cell: the token is evaluated again."""
    memo, plain = runners
    before = "def area(width, height):\n    return width *"
    after = "def area(height, width):\n    return height *"  # the same tokens, names swapped
    assert len(memo._tokenize(before)) == len(memo._tokenize(after))
    first = ask(memo, before, heal=False, max_tokens=3)  # rows for the last cell of `before` and on
    # The edit and a few more tokens: the cells from `height` on are written again, the last one's row kept.
    ask(memo, after + " width\n", heal=False, max_tokens=3)
    got, expected = ask(memo, after, heal=False, max_tokens=3), ask(plain, after, heal=False, max_tokens=3)
    assert expected.text != first.text  # a stale row would answer as for `before`
    assert got.evaluated_prompt_tokens == 1
    assert got.text == expected.text


def test_a_suggestion_typed_through_is_answered_from_its_decoding_rows(runners):
    """The prompt now ends inside the last suggestion (the person typed its first tokens): the rows
    kept while decoding it answer, as the plain runner's evaluation does."""
    memo, plain = runners
    prompt = "def area(width, height):\n    return"
    ask(memo, prompt, heal=False)
    ids = memo._tokenize(prompt)
    typed = [int(t) for t in memo._llm.input_ids[len(ids): len(ids) + 2]]  # two tokens it decoded
    longer = prompt + b"".join(memo._healer.pieces[t] for t in typed).decode()
    assert len(typed) == 2 and memo._tokenize(longer) == ids + typed
    got, expected = ask(memo, longer, heal=False), ask(plain, longer, heal=False)
    assert got.evaluated_prompt_tokens == 0
    assert got.text == expected.text
