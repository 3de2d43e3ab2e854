"""Each FIM family end to end: a tiny GGUF per family with the family's real special tokens and id
layout (devtools fim_models.py), trained to infill one line differently for two suffixes.

Per family: the GGUF declares the family's FIM tokens and the server recognises the format from them;
the prompt build_segments makes, tokenized as the engine tokenizes it, is exactly the family's layout
(written out here from the model cards, ids looked up by token text); over real LSP the engine evaluates
a prompt of that length and the suggestion is the middle that belongs to the suffix in the document.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from codegen_lsp.context.prompt import Text, build_segments
from codegen_lsp.gguf.inspect import inspect_model_file
from codegen_lsp.gguf.meta import PromptFormat
from support.lsp import inline, open_doc, start, wait_for_stats

# The cursor sits at the start of an empty line (right after a newline: no token healing), and only
# the suffix says which line belongs there.
PREFIX = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
EXAMPLES = ((PREFIX, "total = area(2)", "\nprint(total)\n"), (PREFIX, "circle = area(3)", "\nprint(circle)\n"))

# family → (architecture, prompt format, (prefix, suffix, middle) token texts, their ids in the real model)
FAMILIES = {
    "starcoder": ("starcoder2", PromptFormat.STARCODER_FIM, ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"), (1, 3, 2)),
    "codellama": ("llama", PromptFormat.CODELLAMA_FIM, ("▁<PRE>", "▁<SUF>", "▁<MID>"), (32007, 32008, 32009)),
    "deepseek": ("llama", PromptFormat.DEEPSEEK_FIM, ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
                 (32016, 32015, 32017)),
    "qwen": ("qwen2", PromptFormat.QWEN_FIM, ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
             (151659, 151661, 151660)),
    "codegen25": ("llama", PromptFormat.CODEGEN2_INFILL, ("<mask_1>", "<|endoftext|>", "<sep>"), None),
}
END_TOKENS = {"starcoder": "<|endoftext|>", "codellama": "▁<EOT>", "deepseek": "<｜end▁of▁sentence｜>",
              "qwen": "<|endoftext|>", "codegen25": "<eom>"}

def families() -> list[str]:
    return list(FAMILIES)


@functools.cache
def fim_gguf(family: str) -> Path:
    from codegen_lsp_devtools.test_models import build_fim_test_model

    return build_fim_test_model(family, memorize=EXAMPLES, train_steps=200, seed=7).gguf_path


@functools.cache
def vocab(path: Path):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    _VOCAB_PATHS.add(path)
    tokens = [llm._model.token_get_text(i) for i in range(llm.n_vocab())]
    return llm, tokens


@pytest.fixture(scope="module", autouse=True)
def _close_vocabularies():
    """Free llama.cpp's vocab-only loads before the interpreter tears the library down."""
    yield
    for info in [vocab(p) for p in list(_VOCAB_PATHS)]:
        info[0].close()
    vocab.cache_clear()
    _VOCAB_PATHS.clear()


_VOCAB_PATHS: set[Path] = set()


def tokenize(path: Path, text: str) -> list[int]:
    """As engine/llama_runner.py's LlamaRunner does: no BOS, special-token text stays text."""
    llm, _ = vocab(path)
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []


def id_of(path: Path, text: str) -> int:
    _, tokens = vocab(path)
    assert tokens.count(text) == 1, (text, tokens.count(text))
    return tokens.index(text)


def expected_prompt(family: str, path: Path, prefix: str, suffix: str) -> list[int]:
    """The family's layout, from the model cards: PSM with the three FIM tokens, or CodeGen2's
    `prefix <mask_1> suffix <|endoftext|> <sep> <mask_1>`."""
    first, second, third = (id_of(path, t) for t in FAMILIES[family][2])
    if family == "codegen25":
        mask, eos, sep = first, second, third
        return tokenize(path, prefix) + [mask] + tokenize(path, suffix) + [eos, sep, mask]
    pre, suf, mid = first, second, third
    return [pre] + tokenize(path, prefix) + [suf] + tokenize(path, suffix) + [mid]


@pytest.mark.parametrize("family", families())
def test_the_gguf_declares_the_family_and_the_server_recognises_it(family: str):
    path = fim_gguf(family)
    arch, fmt, texts, real_ids = FAMILIES[family]
    info = inspect_model_file(path)
    assert info.architecture == arch
    if real_ids is not None:  # the FIM keys point at the family's tokens, at the real model's ids
        assert [info.token_ids[r] for r in ("fim_pre", "fim_suf", "fim_mid")] == [id_of(path, t) for t in texts]
        assert [id_of(path, t) for t in texts] == list(real_ids)
    assert id_of(path, END_TOKENS[family]) in info.end_token_ids
    assert info.prompt_format is fmt


@pytest.mark.parametrize("family", families())
def test_build_segments_tokenize_to_the_family_layout(family: str):
    path = fim_gguf(family)
    info = inspect_model_file(path)
    fmt = FAMILIES[family][1]  # the family's format (detection is the test above)
    for prefix, _, suffix in EXAMPLES:
        ids: list[int] = []
        for segment in build_segments(fmt, prefix, suffix, info.token_ids):
            ids += tokenize(path, segment.text) if isinstance(segment, Text) else [segment.token_id]
        assert ids == expected_prompt(family, path, prefix, suffix)
    assert len(expected_prompt(family, path, PREFIX, EXAMPLES[0][2])) > 20  # real text on both sides


async def _suggestions_over_lsp(client: LanguageClient, tmp_path: Path, family: str, **options) -> None:
    path = fim_gguf(family)
    await start(client, path, tmp_path, maxTokens=24, **options)
    line = PREFIX.count("\n")
    got, lengths = [], []
    for n, (prefix, middle, suffix) in enumerate(EXAMPLES):
        uri = (tmp_path / f"{family}{n}.py").as_uri()
        open_doc(client, uri, prefix + suffix)
        items = await inline(client, uri, line, 0)
        got.append([str(i.insert_text) for i in items])
        stats = await wait_for_stats(client, lambda s, uri=uri: s.uri == uri and s.kind == "request"
                                     and s.source == "model", timeout=30, what=f"{family} request stats")
        lengths.append((stats.prompt_tokens, len(expected_prompt(family, path, prefix, suffix))))
    # (a) the engine evaluated a prompt as long as the family's layout (the ids are checked above)
    assert [have for have, _ in lengths] == [want for _, want in lengths], lengths
    # (b) the same prefix, two suffixes: each gets the line that belongs to its suffix
    assert got == [[middle] for _, middle, _ in EXAMPLES], got


@pytest.mark.parametrize("family", families())
async def test_suggestion_over_lsp_uses_the_suffix(client: LanguageClient, tmp_path: Path, family: str):
    await _suggestions_over_lsp(client, tmp_path, family)


async def test_codellama_with_its_format_set_explicitly(client: LanguageClient, tmp_path: Path):
    """The CodeLlama file works end to end once the format is named (promptFormat), whatever detection says."""
    await _suggestions_over_lsp(client, tmp_path, "codellama", promptFormat="codellama-fim")
