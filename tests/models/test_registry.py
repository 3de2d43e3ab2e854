"""The model registry: the shipped TOML validates and lists the required models; bad TOML is explained."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codegen_lsp.models.registry import RegistryError, load_registry

REQUIRED = ["codegen-350M-mono", "codegen-2B-mono", "codegen-6B-mono", "codegen2-1B", "codegen2-3_7B",
            "codegen2-7B", "codegen25-7b-mono"]


def test_shipped_registry_lists_the_required_models():
    registry = load_registry()
    names = [entry.name for entry in registry.model]
    for name in REQUIRED:
        assert name in names
    assert registry.get("codegen2-1B").prompt_format.value == "codegen2-infill"
    assert registry.get("codegen-350m-MONO").family.value == "codegen1"


def test_unknown_name_lists_known_ones():
    with pytest.raises(RegistryError, match="unknown model 'gpt-5'.*codegen-350M-mono"):
        load_registry().get("gpt-5")


@pytest.mark.parametrize("body, needle", [
    ("[[model]]\nname = 'x'\n", "repo_id"),
    ("[[model]\n", "Expected"),
    ("[[model]]\nname='a'\nrepo_id='o/a'\nrevision='main'\nfamily='codegen9'\nprompt_format='left-to-right'\n"
     "context_length=2048\nlicense='mit'\nquantization='q8_0'\n", "family"),
    ("[[model]]\nname='a'\nrepo_id='o/a'\nrevision='main'\nfamily='codegen1'\nprompt_format='left-to-right'\n"
     "context_length=2048\nlicense='mit'\nquantization='q3'\n", "quantization"),
])
def test_invalid_registry_is_explained(tmp_path, body, needle):
    path = tmp_path / "registry.toml"
    path.write_text(body)
    with pytest.raises(RegistryError, match=needle):
        load_registry(path)


def test_models_list_command():
    result = subprocess.run([sys.executable, "-m", "codegen_lsp", "models", "list"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    for name in REQUIRED:
        assert name in result.stdout
