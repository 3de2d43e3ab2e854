"""`models pull` through the real huggingface_hub download, our converter and llama.cpp's quantizer,
against a hub mirror the test serves on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.hub_mirror import HubMirror

REPO = "tiny-org/tiny-codegen"


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text(f"""
[[model]]
name = "tiny"
repo_id = "{REPO}"
revision = "main"
family = "codegen1"
prompt_format = "left-to-right"
context_length = 1024
license = "bsd-3-clause"
quantization = "q8_0"
""")
    return path


def pull(registry, cache, endpoint, *extra):
    env = dict(os.environ, CODEGEN_LSP_CACHE=str(cache), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run([sys.executable, "-m", "codegen_lsp", "models", "pull", "tiny", "--registry",
                           str(registry), "--quiet", *extra], capture_output=True, text=True, env=env, timeout=300)


def test_pull_downloads_converts_quantizes_and_caches(tmp_path, registry, tiny_codegen1):
    cache = tmp_path / "cache"
    with HubMirror(REPO, tiny_codegen1.hf_dir) as hub:
        first = pull(registry, cache, hub.url)
        assert first.returncode == 0, first.stderr
        gguf = cache / "models" / "tiny-q8_0.gguf"
        assert gguf.exists()
        assert "model.safetensors" in hub.downloaded() and "config.json" in hub.downloaded()
        lock = json.loads((cache / "models-lock.json").read_text())
        assert lock == {"tiny": hub.commit}
        n_requests = len(hub.requests)
        again = pull(registry, cache, hub.url)
        assert again.returncode == 0 and len(hub.requests) == n_requests  # served from the cache
    from codegen_lsp.gguf.inspect import inspect_model_file

    info = inspect_model_file(gguf)
    assert info.architecture == "phi2" and info.prompt_format.value == "left-to-right"
    env = dict(os.environ, CODEGEN_LSP_CACHE=str(cache))
    path = subprocess.run([sys.executable, "-m", "codegen_lsp", "models", "path", "tiny", "--registry",
                           str(registry)], capture_output=True, text=True, env=env, timeout=60)
    assert path.stdout.strip() == str(gguf)


def test_pull_with_hub_down_is_a_clear_error(tmp_path, registry):
    result = pull(registry, tmp_path / "cache", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot download tiny-org/tiny-codegen@main from http://127.0.0.1:9" in result.stderr
    assert not (tmp_path / "cache" / "models" / "tiny-q8_0.gguf").exists()


def test_path_of_a_model_not_pulled(tmp_path, registry):
    env = dict(os.environ, CODEGEN_LSP_CACHE=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "codegen_lsp", "models", "path", "tiny", "--registry",
                             str(registry)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "not pulled yet" in result.stderr
