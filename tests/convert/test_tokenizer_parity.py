"""llama.cpp tokenizes exactly as the Hugging Face tokenizer does, on real source and edge cases."""

from __future__ import annotations

import pytest

llama_cpp = pytest.importorskip("llama_cpp")
from tokenizers import Tokenizer  # noqa: E402

from support import STDLIB_DIR  # noqa: E402

EDGE_CASES = [
    "def f():\n" + " " * 40 + "return 1\n",  # a run longer than the longest whitespace token
    "\tif x:\n\t\t\tpass\n\t\t\t\t\t\t\t\t\t\t\tdone\n",  # tabs, including more than nine
    "x = 1  # two spaces\n   \n    \n",  # whitespace-only lines
    "naïve = 'café' + \"日本語\" + '😀🚀' + 'Ωmega'\n",  # non-ASCII, astral plane
    "  \u00a0 nbsp and\r\nwindows lines\r\n",
    "<|endoftext|> inside text\n",
    "",
    " leading space and trailing   ",
]


def stdlib_sources(n: int) -> list[str]:
    texts = []
    for path in sorted(STDLIB_DIR.rglob("*.py")):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        if len(texts) == n:
            break
    return texts


@pytest.fixture(scope="module", params=["codegen1", "codegen2"])
def tokenizers_pair(request, tiny_codegen1, tiny_codegen2):
    model = tiny_codegen1 if request.param == "codegen1" else tiny_codegen2
    hf = Tokenizer.from_file(str(model.hf_dir / "tokenizer.json"))
    llm = llama_cpp.Llama(str(model.gguf_path), vocab_only=True, verbose=False)
    yield hf, llm
    llm.close()


def assert_same_ids(hf, llm, text: str) -> None:
    expected = hf.encode(text).ids
    # HF matches special tokens inside text by default; llama.cpp's equivalent is special=True
    got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    if got != expected:
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        raise AssertionError(f"token ids differ from index {first}: llama.cpp {got[first:first + 8]} "
                             f"vs HF {expected[first:first + 8]}")


def test_two_hundred_stdlib_files(tokenizers_pair):
    hf, llm = tokenizers_pair
    texts = stdlib_sources(220)
    assert len(texts) >= 200
    for text in texts:
        assert_same_ids(hf, llm, text)


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases(tokenizers_pair, text):
    hf, llm = tokenizers_pair
    assert_same_ids(hf, llm, text)


def test_whitespace_runs_use_the_whitespace_tokens(tiny_codegen1):
    hf = Tokenizer.from_file(str(tiny_codegen1.hf_dir / "tokenizer.json"))
    llm = llama_cpp.Llama(str(tiny_codegen1.gguf_path), vocab_only=True, verbose=False)
    eight = hf.token_to_id(" " * 8)
    assert eight is not None
    assert llm.tokenize(b"        ", add_bos=False, special=False) == [eight]
    assert llm.detokenize([eight]) == b" " * 8
    llm.close()


def test_sentinels_are_control_tokens(tiny_codegen2):
    llm = llama_cpp.Llama(str(tiny_codegen2.gguf_path), vocab_only=True, verbose=False)
    hf = Tokenizer.from_file(str(tiny_codegen2.hf_dir / "tokenizer.json"))
    for sentinel in ("<mask_1>", "<sep>", "<eom>", "<|endoftext|>"):
        token_id = hf.token_to_id(sentinel)
        assert llm.tokenize(sentinel.encode(), add_bos=False, special=True) == [token_id]
        # as plain text (special=False) the sentinel is not one control token
        assert llm.tokenize(sentinel.encode(), add_bos=False, special=False) != [token_id]
    llm.close()
