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


# Pins one model in models-lock.json, as a pull does when it ends. Between reading the file and writing it
# back it waits (up to 10 s) until the other process has read it too: without the lock both read the same
# file and one pin is lost, every time; with it the second one cannot read before the first has written.
PIN = """
import sys, time
from pathlib import Path
from codegen_lsp.models import pull

cache, name, meeting = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
read = pull._read_lock

def read_then_meet(cache):
    pins = read(cache)
    (meeting / name).touch()
    waited = 0.0
    while len(list(meeting.iterdir())) < 2 and waited < 10:
        time.sleep(0.05)
        waited += 0.05
    return pins

pull._read_lock = read_then_meet
pull.pin(cache, name, "commit-" + name)
"""


def test_two_pulls_ending_together_keep_both_pins(tmp_path):
    cache, meeting = tmp_path / "cache", tmp_path / "meeting"
    cache.mkdir()
    meeting.mkdir()
    (cache / "models-lock.json").write_text(json.dumps({"old": "commit-old"}))
    pins = [subprocess.Popen([sys.executable, "-c", PIN, str(cache), name, str(meeting)]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in pins] == [0, 0]
    assert json.loads((cache / "models-lock.json").read_text()) == {"old": "commit-old", "a": "commit-a",
                                                                     "b": "commit-b"}


PIN_WITH_SHORT_TIMEOUT = """
import sys
from pathlib import Path
from codegen_lsp.models import pull

pull.PIN_LOCK_TIMEOUT_S = 0.2
try:
    pull.pin(Path(sys.argv[1]), "tiny", "c0ffee")
except pull.PullError as exc:
    sys.exit(str(exc))
"""


def test_a_pin_lock_held_too_long_is_a_clear_error(tmp_path):
    from filelock import FileLock

    with FileLock(str(tmp_path / "models-lock.json.lock")):  # as a hung process would hold it
        held = subprocess.run([sys.executable, "-c", PIN_WITH_SHORT_TIMEOUT, str(tmp_path)], capture_output=True,
                              text=True, timeout=120)
    assert held.returncode == 1
    assert held.stderr == (f"{tmp_path / 'models-lock.json'} stayed locked by another process for 0.2 s; tiny is "
                           "in place but its pin (c0ffee) was not recorded: pull it again\n")
    assert not (tmp_path / "models-lock.json").exists()
