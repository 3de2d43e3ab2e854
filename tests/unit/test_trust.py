"""Workspace trust's decisions (trust.py): which values of a repository's codegen-lsp.toml wait for consent,
how the question names them, and how an answer is remembered."""

from __future__ import annotations

from pathlib import Path

from codegen_lsp.trust import (Pending, anchor_model_path, question, recall, remember, split_workspace_values,
                               trust_memory)


def test_values_that_send_code_elsewhere_wait_and_the_rest_applies(tmp_path: Path):
    now, held = split_workspace_values({"remoteUrl": "http://evil.example:8080", "remoteApiKey": "k",
                                        "remoteModel": "m", "maxTokens": 3}, tmp_path, tmp_path / "cache")
    assert now == {"maxTokens": 3}
    assert held.values == {"remoteUrl": "http://evil.example:8080", "remoteApiKey": "k", "remoteModel": "m"}


def test_a_model_outside_the_workspace_and_the_cache_waits(tmp_path: Path):
    root, cache, elsewhere = tmp_path / "repo", tmp_path / "cache", tmp_path / "elsewhere"
    for folder in (root, cache, elsewhere):
        folder.mkdir()
    for model, waits in [(str(elsewhere / "m.gguf"), True), ("/etc/passwd", True), (str(root / "m.gguf"), False),
                         (str(cache / "models" / "m.gguf"), False), ("smollm2-135m", False)]:
        now, held = split_workspace_values({"model": model}, root, cache)
        assert (model in held.values.values()) is waits, model
        assert ("model" in now) is not waits, model


def test_a_link_in_the_workspace_to_a_file_elsewhere_is_elsewhere(tmp_path: Path):
    root, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    root.mkdir(), elsewhere.mkdir()
    (elsewhere / "m.gguf").write_bytes(b"GGUF")
    (root / "m.gguf").symlink_to(elsewhere / "m.gguf")
    values = anchor_model_path({"model": "m.gguf"}, root)
    assert values == {"model": str(root / "m.gguf")}  # relative paths mean the workspace, not the server's cwd
    _, held = split_workspace_values(values, root, tmp_path / "cache")
    assert held.values == {"model": str(root / "m.gguf")}
    _, held = split_workspace_values(anchor_model_path({"model": "../elsewhere/m.gguf"}, root), root, tmp_path / "c")
    assert held


def test_keys_the_user_sets_are_not_asked_about(tmp_path: Path):
    now, held = split_workspace_values({"remoteUrl": "http://evil.example", "model": "/elsewhere/m.gguf"},
                                       tmp_path, tmp_path / "cache", user_keys={"remoteUrl", "model"})
    assert not held and now == {"model": "/elsewhere/m.gguf"}  # the user's own model wins when merged later
    assert Pending({"remoteUrl": "u", "model": "m"}).without({"remoteUrl"}).values == {"model": "m"}


def test_the_question_names_the_host_and_the_path(tmp_path: Path):
    text = question(Pending({"remoteUrl": "http://evil.example:8080/v1", "model": "/data/x.gguf"}),
                    tmp_path / "codegen-lsp.toml")
    assert "evil.example:8080" in text and "/data/x.gguf" in text and str(tmp_path / "codegen-lsp.toml") in text


def test_an_answer_holds_only_for_the_values_it_was_given_for(tmp_path: Path):
    memory = trust_memory(tmp_path / "cache")
    root = tmp_path / "repo"
    first = Pending({"remoteUrl": "http://a.example"})
    assert recall(memory, root, first) is None
    remember(memory, root, first, allowed=True)
    assert recall(memory, root, first) is True
    assert recall(memory, root, Pending({"remoteUrl": "http://b.example"})) is None  # a changed URL asks again
    assert recall(memory, tmp_path / "other", first) is None  # per workspace
    remember(memory, root, first, allowed=False)
    assert recall(trust_memory(tmp_path / "cache"), root, first) is False  # read back from the file


def test_loosening_the_exclusions_waits_and_the_stricter_patterns_apply_now(tmp_path: Path):
    values = {"exclude": ["*.log", "!.env"], "respectGitignore": False, "maxTokens": 32}
    now, held = split_workspace_values(values, tmp_path, tmp_path / "cache")
    assert now == {"exclude": ["*.log"], "maxTokens": 32}
    assert held.values == {"exclude": ["*.log", "!.env"], "respectGitignore": False}
    asked = question(held, tmp_path / "codegen-lsp.toml")
    assert "exclude !.env" in asked and "respectGitignore false" in asked, asked
    # Stricter values do not ask; the user's own settings never do.
    assert split_workspace_values({"exclude": ["*.log"], "respectGitignore": True}, tmp_path, tmp_path)[1].values == {}
    assert split_workspace_values(values, tmp_path, tmp_path, {"exclude", "respectGitignore"})[1].values == {}
