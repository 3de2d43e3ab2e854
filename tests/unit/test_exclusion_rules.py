"""The exclusion rules (exclusion.py, gitignore.py): which files never reach a model, and the rule named.

Globs on plain URIs (no file needs to exist), symlinks and odd names on a real temp tree, and git's
answers in a real temp repository (`git init`): cached, refreshed when a .gitignore changes, asked in
batches, and a workspace without git (not a repository, git missing, git too slow) said once in the log
while the globs still apply."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codegen_lsp.exclusion import DEFAULT_EXCLUDE, Exclusion, GlobError, compile_glob
from codegen_lsp.gitignore import GitIgnored
from codegen_lsp.settings import Settings, SettingsError, parse_settings

WS = "/ws"


def uri(path: str) -> str:
    return "file://" + path


def reason(path: str, patterns=(), root: str | None = WS, language: str = "python") -> str | None:
    return Exclusion(patterns, root=root).reason_for(uri(path), language)


@pytest.mark.parametrize("path, rule", [
    ("/ws/.env", ".env"), ("/ws/.env.local", ".env.*"), ("/ws/tls/server.pem", "*.pem"), ("/ws/a.key", "*.key"),
    ("/ws/id_rsa", "id_rsa*"), ("/ws/keys/id_rsa.pub", "id_rsa*"), ("/ws/id_ed25519", "id_ed25519*"),
    ("/ws/cert.p12", "*.p12"), ("/ws/.npmrc", ".npmrc"), ("/ws/.pypirc", ".pypirc"), ("/ws/.netrc", ".netrc"),
    ("/ws/config/secrets.yaml", "secrets.*"), ("/ws/credentials.json", "credentials*"),
    ("/ws/deep/a/b/c/d/.env", ".env"),  # nested: a pattern without a slash matches the name at any depth
    ("/ws/.env/inside.txt", ".env"),  # a folder that matches takes its files along
])
def test_the_defaults_exclude_files_that_hold_secrets_and_name_the_rule(path: str, rule: str):
    assert rule in DEFAULT_EXCLUDE
    assert reason(path) == f"matches {rule}"


@pytest.mark.parametrize("path", ["/ws/env.py", "/ws/main.py", "/ws/my.env.py", "/ws/secretsmanager.py",
                                  "/ws/keys.py", "/ws/docs/pem.md", "/ws/environment/settings.py"])
def test_ordinary_files_are_served(path: str):
    assert reason(path) is None


def test_the_users_globs_add_to_the_defaults():
    patterns = ["*.secret", "config/prod/*.yaml", "**/fixtures/**"]
    assert reason("/ws/a/b/token.secret", patterns) == "matches *.secret"
    assert reason("/ws/config/prod/db.yaml", patterns) == "matches config/prod/*.yaml"
    assert reason("/ws/x/config/prod/db.yaml", patterns) is None  # a slash anchors it at the workspace root
    assert reason("/ws/tests/fixtures/big/data.json", patterns) == "matches **/fixtures/**"
    assert reason("/ws/.env", patterns) == "matches .env"  # the defaults stay


def test_a_bang_pattern_re_includes_and_the_last_matching_rule_decides():
    patterns = ["!.env.example", "*.yaml", "!keep.yaml"]
    assert reason("/ws/.env.example", patterns) is None
    assert reason("/ws/.env.local", patterns) == "matches .env.*"
    assert reason("/ws/deploy/app.yaml", patterns) == "matches *.yaml"
    assert reason("/ws/deploy/keep.yaml", patterns) is None
    assert reason("/ws/deploy/keep.yaml", [*patterns, "deploy/"]) == "matches deploy/"  # excluded again, later


def test_case_does_not_matter():
    assert reason("/ws/.ENV") == "matches .env"
    assert reason("/ws/keys/ID_RSA") == "matches id_rsa*"
    assert reason("/ws/Secrets.JSON") == "matches secrets.*"
    assert reason("/ws/token.SECRET", ["*.Secret"]) == "matches *.Secret"
    assert Exclusion(disabled_languages=["Markdown"]).reason_for(uri("/ws/a.md"), "markdown") == \
        "language markdown is in disabledLanguages"


def test_disabled_languages_exclude_by_language_id():
    rules = Exclusion(disabled_languages=["plaintext", "markdown"], root=WS)
    assert rules.reason_for(uri("/ws/notes.txt"), "plaintext") == "language plaintext is in disabledLanguages"
    assert rules.reason_for(uri("/ws/notes.txt"), "python") is None
    assert rules.reason_for("untitled:Untitled-1", "markdown") == "language markdown is in disabledLanguages"


def test_spaces_and_non_utf8_bytes_in_the_uri():
    assert reason("/ws/my%20dir/.env") == "matches .env"
    assert reason("/ws/my%20dir/a.key") == "matches *.key"
    assert reason("/ws/my%20dir/prod.yaml", ["my dir/*.yaml"]) == "matches my dir/*.yaml"
    assert reason("/ws/%FF%FE/.env") == "matches .env"  # Latin-1 bytes that are not UTF-8
    assert reason("/ws/caf%E9.py") is None
    assert reason("/ws/caf%E9.py", ["caf?.py"]) == "matches caf?.py"  # the byte is one character


def test_files_outside_the_workspace_and_without_one_are_matched_by_name():
    assert reason("/elsewhere/id_rsa") == "matches id_rsa*"
    assert reason("/elsewhere/config/prod/db.yaml", ["config/prod/*.yaml"]) is None  # anchored at /ws
    assert reason("/home/me/credentials-service/main.py") is None  # folders above the file are not the file
    assert reason("/ws/.env", root=None) == "matches .env"
    assert Exclusion().reason_for("untitled:Untitled-1", "python") is None


@pytest.mark.parametrize("pattern", ["a\\", "!", "[b-a].py", "", "   ", "# a comment", "a\x00b", "tab\there"])
def test_a_malformed_glob_is_refused_with_the_setting_name_and_the_defaults_stay(pattern: str):
    with pytest.raises(GlobError):
        compile_glob(pattern)
    with pytest.raises(SettingsError) as refused:
        parse_settings(Settings(), {"exclude": ["*.ok", pattern]})
    assert refused.value.key == "exclude" and "setting 'exclude'" in str(refused.value), refused.value
    assert repr(pattern) in str(refused.value)
    kept = parse_settings(Settings(), {"exclude": ["*.ok"]})  # what stays after the refusal
    rules = Exclusion(kept.exclude, root=WS)
    assert rules.reason_for(uri("/ws/.env"), "python") == "matches .env"
    assert rules.reason_for(uri("/ws/a.ok"), "python") == "matches *.ok"


# -- symlinks: the path as given and resolved, the stricter answer wins ---------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    (workspace / "src").mkdir(parents=True)
    (workspace / "private").mkdir()
    outside.mkdir()
    return workspace, outside


def test_a_symlink_in_the_workspace_to_a_secret_outside_it_is_excluded(tree):
    workspace, outside = tree
    (outside / ".env").write_text("TOKEN=1\n")
    (workspace / "src" / "config.txt").symlink_to(outside / ".env")
    rules = Exclusion(root=workspace)
    assert rules.reason_for((workspace / "src" / "config.txt").as_uri(), "plaintext") == "matches .env"


def test_a_symlink_outside_the_workspace_into_an_excluded_folder_is_excluded(tree):
    workspace, outside = tree
    (workspace / "private" / "token.txt").write_text("x\n")
    (outside / "link.txt").symlink_to(workspace / "private" / "token.txt")
    rules = Exclusion(["/private/"], root=workspace)
    assert rules.reason_for((outside / "link.txt").as_uri(), "plaintext") == "matches /private/"
    assert Exclusion(root=workspace).reason_for((outside / "link.txt").as_uri(), "plaintext") is None


def test_a_re_include_through_one_view_does_not_undo_an_exclusion_through_the_other(tree):
    workspace, _ = tree
    (workspace / ".env").write_text("TOKEN=1\n")
    (workspace / "notes.txt").symlink_to(workspace / ".env")
    rules = Exclusion(["!notes.txt"], root=workspace)
    assert rules.reason_for((workspace / "notes.txt").as_uri(), "plaintext") == "matches .env"


def test_a_symlinked_workspace_root_matches_anchored_patterns_both_ways(tree, tmp_path: Path):
    workspace, _ = tree
    (workspace / "src" / "gen.py").write_text("x = 1\n")
    link = tmp_path / "ws-link"
    link.symlink_to(workspace)
    for root in (link, workspace):
        rules = Exclusion(["/src/gen.py"], root=root)
        for path in (link / "src" / "gen.py", workspace / "src" / "gen.py"):
            assert rules.reason_for(path.as_uri(), "python") == "matches /src/gen.py", (root, path)


# -- git --------------------------------------------------------------------------------------------

def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    for name in ("build/out.js", "src/app.py", "src/gen/table.py", "run.log", "keep.log", "tracked.log"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")
    git(root, "add", "-f", "tracked.log", ".gitignore")
    git(root, "commit", "-qm", "init")
    return root


def with_git(root: Path, patterns=(), **kwargs) -> tuple[Exclusion, GitIgnored, list[str]]:
    said: list[str] = []
    ignored = GitIgnored(root, said.append, **kwargs)
    return Exclusion(patterns, root=root, gitignored=ignored), ignored, said


def test_files_git_ignores_are_excluded_with_the_rule_git_names(repo: Path):
    rules, ignored, said = with_git(repo)
    check = lambda name: rules.reason_for((repo / name).as_uri(), "python")  # noqa: E731
    assert check("build/out.js") == "ignored by git: build/ in .gitignore:1"
    assert check("run.log") == "ignored by git: *.log in .gitignore:2"
    assert check("build/not-yet-written.js") == "ignored by git: build/ in .gitignore:1"
    assert check("keep.log") is None  # re-included by `!keep.log`
    assert check("tracked.log") is None  # tracked: git does not ignore it
    assert check("src/app.py") is None
    assert said == []


def test_git_answers_are_cached_and_asked_again_when_a_gitignore_changes(repo: Path):
    rules, ignored, _ = with_git(repo)
    table = (repo / "src" / "gen" / "table.py").as_uri()
    assert rules.reason_for(table, "python") is None
    calls = ignored.calls
    for _ in range(20):
        assert rules.reason_for(table, "python") is None
    assert ignored.calls == calls  # per request: no git call
    (repo / "src" / "gen" / ".gitignore").write_text("table.py\n")  # a nested .gitignore appears
    assert rules.reason_for(table, "python") == "ignored by git: table.py in src/gen/.gitignore:1"
    (repo / ".gitignore").write_text("build/\n")  # the root one changes: *.log no longer ignored
    assert rules.reason_for((repo / "run.log").as_uri(), "python") is None


def test_the_open_documents_are_asked_about_in_one_git_call(repo: Path):
    rules, ignored, _ = with_git(repo)
    uris = [(repo / "build" / f"f{i}.js").as_uri() for i in range(50)] + [(repo / "src" / "app.py").as_uri()]
    rules.prime(uris)
    assert ignored.calls == 1
    assert all(rules.reason_for(u, "javascript") for u in uris[:50]) and rules.reason_for(uris[-1], "python") is None
    assert ignored.calls == 1


def test_a_symlinked_name_is_asked_about_too(repo: Path, tmp_path: Path):
    (repo / ".gitignore").write_text("local-settings.txt\n")
    elsewhere = repo / "src" / "real.txt"
    elsewhere.write_text("x\n")
    (repo / "local-settings.txt").symlink_to(elsewhere)
    rules, _, _ = with_git(repo)
    assert rules.reason_for((repo / "local-settings.txt").as_uri(), "plaintext") == \
        "ignored by git: local-settings.txt in .gitignore:1"


def test_a_non_utf8_file_name_reaches_git_as_its_bytes(repo: Path):
    (repo / ".gitignore").write_bytes(b"caf\xe9.txt\n")  # matches those bytes, not a replacement character
    name = os.fsdecode(b"caf\xe9.txt")
    (repo / name).write_text("x\n")
    rules, _, said = with_git(repo)
    expected = "ignored by git: caf\\xe9.txt in .gitignore:1"  # the byte as people can read it
    assert rules.reason_for(uri(str(repo)) + "/caf%E9.txt", "plaintext") == expected
    assert rules.reason_for(uri(str(repo)) + "/cafe.txt", "plaintext") is None
    assert said == []


def test_a_file_git_refuses_alone_does_not_spoil_the_batch(repo: Path, tmp_path: Path):
    source = tmp_path / "module-src"
    source.mkdir()
    git(source, "init", "-q")
    (source / "a.txt").write_text("a\n")
    git(source, "add", "a.txt")
    git(source, "commit", "-qm", "a")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(source), "mod")
    rules, ignored, said = with_git(repo)
    rules.prime([(repo / "mod" / "a.txt").as_uri(), (repo / "run.log").as_uri()])
    assert rules.reason_for((repo / "run.log").as_uri(), "plaintext") == "ignored by git: *.log in .gitignore:2"
    assert rules.reason_for((repo / "mod" / "a.txt").as_uri(), "plaintext") is None
    assert len(said) == 1 and "refused" in said[0] and ignored.off is None


def test_not_a_git_repository_is_said_once_and_the_globs_still_apply(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    rules, ignored, said = with_git(plain)
    for _ in range(3):
        assert rules.reason_for((plain / "build" / "out.js").as_uri(), "javascript") is None
        assert rules.reason_for((plain / ".env").as_uri(), "plaintext") == "matches .env"
    assert len(said) == 1 and "is not in a git repository" in said[0] and said[0].startswith("respectGitignore"), said


def test_git_missing_is_said_once_and_the_globs_still_apply(repo: Path):
    rules, _, said = with_git(repo, git=str(repo / "no-such-git"))
    for _ in range(3):
        assert rules.reason_for((repo / "build" / "out.js").as_uri(), "javascript") is None
        assert rules.reason_for((repo / "id_rsa").as_uri(), "plaintext") == "matches id_rsa*"
    assert len(said) == 1 and "git is not installed" in said[0], said


def test_every_git_call_has_a_deadline(repo: Path, tmp_path: Path):
    slow = tmp_path / "slow-git"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    slow.chmod(0o755)
    rules, _, said = with_git(repo, git=str(slow), deadline_s=0.3)
    started = time.monotonic()
    for _ in range(3):
        assert rules.reason_for((repo / "build" / "out.js").as_uri(), "javascript") is None
        assert rules.reason_for((repo / ".env").as_uri(), "plaintext") == "matches .env"
    assert time.monotonic() - started < 5  # one deadline, then git is not asked again
    assert len(said) == 1 and "did not answer within 0.3 s" in said[0], said


def test_a_document_is_resolved_once_and_afresh_when_opened_again(tree, repo: Path):
    """Paths and globs are worked out at a document's first check (a check is then a few stats); the server
    calls `forget` on didOpen, so a symlink pointed elsewhere counts from the document's next open."""
    workspace, outside = tree
    (outside / "plain.txt").write_text("x\n")
    (outside / ".env").write_text("TOKEN=1\n")
    link = workspace / "src" / "current.txt"
    link.symlink_to(outside / "plain.txt")
    rules = Exclusion(root=workspace)
    assert rules.reason_for(link.as_uri(), "plaintext") is None
    link.unlink()
    link.symlink_to(outside / ".env")
    assert rules.reason_for(link.as_uri(), "plaintext") is None  # kept from its first check
    rules.forget(link.as_uri())
    assert rules.reason_for(link.as_uri(), "plaintext") == "matches .env"

    git_rules, ignored, _ = with_git(repo)
    out = (repo / "src" / "app.py").as_uri()
    assert git_rules.reason_for(out, "python") is None
    calls = ignored.calls
    git_rules.forget(out)
    assert git_rules.reason_for(out, "python") is None and ignored.calls == calls + 1  # git asked afresh
