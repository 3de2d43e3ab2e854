"""The default model's pipeline: corpus and licences, the CodeGen2 infill format, a resumable training
run that our converter turns into a GGUF llama.cpp loads as an infill model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codegen_lsp_devtools.training.corpus import build_corpus
from codegen_lsp_devtools.training.train import (RunOptions, Specials, TrainSpec, cursor_example, infill_example,
                                                 train)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


def test_corpus_is_permissive_deduplicated_and_split_by_file(corpus):
    manifest = corpus.manifest()
    names = {p["name"]: p for p in manifest["packages"]}
    assert names["python-stdlib"]["licence"] == "PSF-2.0" and names["python-stdlib"]["files"] > 500
    assert not any(word in p["licence"] for p in manifest["packages"] for word in ("GPL", "MPL"))
    assert len({f.sha256 for f in corpus.files}) == len(corpus.files)
    held_out = len(corpus.split(True)) / len(corpus.files)
    assert 0.01 < held_out < 0.035
    assert not {f.sha256 for f in corpus.split(True)} & {f.sha256 for f in corpus.split(False)}


def test_infill_example_has_codegen2_layout():
    specials = Specials(eos=0, mask=1, sep=2, eom=3)
    window = np.array([10, 11, 9, 12, 13, 9, 14, 9, 15], dtype=np.int32)
    example = infill_example(window, np.random.default_rng(0), specials)
    mask_at = example.index(1)
    tail = example.index(0)
    assert example[tail:tail + 3] == [0, 2, 1] and example[-1] == 3
    prefix, suffix, middle = example[:mask_at], example[mask_at + 1:tail], example[tail + 3:-1]
    assert prefix + middle + suffix == window.tolist() and middle


@pytest.fixture(scope="module")
def shipped():
    from codegen_lsp.models.resolve import default_model_path
    from codegen_lsp_devtools.training.tokenizer import shipped_tokenizer

    tokenizer = shipped_tokenizer(default_model_path())
    ids = [tokenizer.token_to_id(t) for t in ("<|endoftext|>", "<mask_1>", "<sep>", "<eom>")]
    return tokenizer, Specials(*ids)


CODE = """import os


class Walker:
    def __init__(self, root):
        self.root = root

    def files(self):
        for folder, _, names in os.walk(self.root):
            for name in names:
                yield os.path.join(folder, name)
"""


def test_cursor_examples_are_shaped_like_healed_requests(shipped):
    """As the server asks: the prefix ends where token healing leaves it, the middle spells out the
    healed text and runs to a line's end, the suffix starts with that line's break."""
    tokenizer, specials = shipped
    rng = np.random.default_rng(0)
    seen_indent = seen_inside = 0
    for _ in range(200):
        example = cursor_example(CODE, rng, specials, tokenizer, 1024)
        mask_at, tail = example.index(specials.mask), example.index(specials.eos)
        assert example[tail:tail + 3] == [specials.eos, specials.sep, specials.mask] and example[-1] == specials.eom
        prompt = example[:mask_at]
        prefix, suffix, middle = (tokenizer.decode(part) for part in (prompt, example[mask_at + 1:tail], example[tail + 3:-1]))
        assert prefix + middle + suffix == CODE
        assert suffix.startswith("\n") and middle.strip() and "\n" not in middle[-1:]
        if prefix.endswith("\n"):  # a cursor right after a line break (or its indentation, healed away)
            seen_indent += 1
            continue
        # otherwise the cursor is inside the middle's first line, and the prompt is the text before it,
        # tokenized, less its last token (what token healing takes off)
        first_line = middle.split("\n")[0]
        cursors = [len(prefix) + k for k in range(1, len(first_line) + 1)
                   if tokenizer.encode(CODE[:len(prefix) + k]).ids[:-1] == prompt]
        assert cursors, (prefix[-30:], middle)
        seen_inside += 1
    assert seen_indent > 40 and seen_inside > 40  # both request shapes are trained


def test_text_without_a_whole_line_gives_no_cursor_example(shipped):
    """A window that is one partial line, blank lines, or lines across a file boundary has no cursor to
    place (the batch then takes a random span instead)."""
    tokenizer, specials = shipped
    rng = np.random.default_rng(0)
    for text in ("    return x", "partial\n\n   \n", "tail\nx = 1<|endoftext|>y = 2\nhead"):
        assert cursor_example(text, rng, specials, tokenizer, 257) is None, text
    assert cursor_example("tail\nx = 1\nhead", rng, specials, tokenizer, 257) is not None


def test_cursor_examples_fit_the_window(shipped):
    tokenizer, specials = shipped
    long_code = CODE * 40
    rng = np.random.default_rng(1)
    for _ in range(50):
        example = cursor_example(long_code, rng, specials, tokenizer, 257)
        assert len(example) <= 257 and example[-1] == specials.eom


def test_training_resumes_and_converts_to_an_infill_gguf(corpus, tmp_path: Path):
    from codegen_lsp.convert import convert_checkpoint
    from codegen_lsp.engine.loadcheck import check_model_loads
    from codegen_lsp.gguf.inspect import inspect_model_file
    from codegen_lsp.gguf.meta import PromptFormat

    spec = TrainSpec(n_layer=1, n_embd=64, n_head=4, rotary_dim=8, vocab=600, seq_len=64, batch=4, steps=3,
                     warmup_steps=1, corpus_bytes=2**20, tokenizer_bytes=300_000, checkpoint_every=2)
    first = train(corpus, spec, tmp_path / "ckpt", RunOptions(progress=False))
    assert first.finished and first.steps_done == 3 and np.isfinite(first.loss)
    again = train(corpus, TrainSpec(**{**spec.__dict__, "steps": 5}), tmp_path / "ckpt", RunOptions(progress=False))
    assert again.steps_done == 5  # resumed at step 3, not restarted
    assert json.loads((tmp_path / "ckpt" / "train_state.json").read_text())["step"] == 5
    gguf = tmp_path / "default.gguf"
    convert_checkpoint(tmp_path / "ckpt", gguf, "q8_0", progress=False)
    check_model_loads(gguf)
    assert inspect_model_file(gguf).prompt_format is PromptFormat.CODEGEN2_INFILL


def test_the_shipped_tokenizer_tokenizes_as_llama_cpp_does(corpus):
    """A new default model trains on the embedded model's vocabulary, rebuilt from its GGUF; the ids must be
    the ones llama.cpp gives the same text when serving (held-out files: code, whitespace runs, non-ASCII)."""
    import llama_cpp

    from codegen_lsp.models.resolve import default_model_path
    from codegen_lsp_devtools.training.tokenizer import shipped_tokenizer
    from codegen_lsp_devtools.training.train import read_texts

    gguf = default_model_path()
    tokenizer = shipped_tokenizer(gguf)
    vocab = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    texts = read_texts(corpus, True, 300_000) + ["<|endoftext|>x<mask_1>\n\t\t\tif a:\n" + " " * 40 + "é ü 中"]
    assert len(texts) >= 10
    for text in texts:
        assert tokenizer.encode(text).ids == vocab.tokenize(text.encode(), add_bos=False, special=True), text[:200]
