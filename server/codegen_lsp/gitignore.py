"""`respectGitignore`: git's own answer to "does git ignore this file?", for one workspace.

`git check-ignore --stdin -z -v -n` in the workspace's repository, asked about many paths at once, its
answers cached per path until a file that can change them changes (the `.gitignore` of the repository's
root and of every folder down to the file's, the repository's `info/exclude`, the user's global
`git/ignore`: stat'ed on every check, a few microseconds). Tracked files are not ignored (git's rule), and
the rule that matched is named: "ignored by git: build/ in .gitignore:1".

Every git call has a deadline (GIT_DEADLINE_S). A workspace that is not in a git repository, git missing,
a call past its deadline or one that fails: said once through `say`, and from then on nothing is ignored
here (the `exclude` globs still apply, exclusion.py). Only resolved paths inside the repository are asked
about: git refuses a path beyond a symlink or outside the repository, and one refusal fails the batch.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence

GIT_DEADLINE_S = 2.0
_Stamp = tuple[tuple[int, int, int] | None, ...]


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _global_ignore() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "git", "ignore")


class GitIgnored:
    """Callable: (absolute paths) -> {path: why git ignores it, or None}. Only the paths inside the repository
    of `root` get an answer other than None."""

    def __init__(self, root: str | os.PathLike, say: Callable[[str], None], git: str = "git",
                 deadline_s: float = GIT_DEADLINE_S) -> None:
        self.root = os.fspath(root)
        self._say = say
        self._git = git
        self._deadline_s = deadline_s
        self._probed = False
        self.toplevel: str | None = None  # the repository's work tree, once probed
        self._exclude_file = ""  # its info/exclude
        self.off: str | None = None  # why git is not asked (said once)
        self._answers: dict[str, tuple[_Stamp, str | None]] = {}
        self.calls = 0  # git check-ignore runs (the bench and tests read it)
        self._refused_said = False

    def __call__(self, paths: Sequence[str]) -> Mapping[str, str | None]:
        answers: dict[str, str | None] = dict.fromkeys(paths)
        top = self._repository()
        if top is None:
            return answers
        stale: dict[str, _Stamp] = {}
        for path in paths:
            if _inside(path, top):
                stamp = self._stamp(path, top)
                known = self._answers.get(path)
                if known is not None and known[0] == stamp:
                    answers[path] = known[1]
                else:
                    stale[path] = stamp
        if stale:
            asked = self._check(list(stale), top)
            if asked is not None:
                for path, stamp in stale.items():
                    self._answers[path] = (stamp, asked.get(path))
                    answers[path] = asked.get(path)
        return answers

    def forget(self, paths: Sequence[str]) -> None:
        """Drop the answers for `paths` (their document is opened again: asked afresh)."""
        for path in paths:
            self._answers.pop(path, None)

    def _stamp(self, path: str, top: str) -> _Stamp:
        """What git's answer for `path` depends on, besides the index: the ignore files on its way."""
        files = [self._exclude_file, _global_ignore(), os.path.join(top, ".gitignore")]
        folder = os.path.dirname(path)
        rel = os.path.relpath(folder, top)
        if rel != os.curdir:
            here = top
            for part in rel.split(os.sep):
                here = os.path.join(here, part)
                files.append(os.path.join(here, ".gitignore"))
        return tuple(_stat(f) for f in files)

    def _run(self, args: list[str], data: bytes | None, cwd: str) -> subprocess.CompletedProcess | str:
        """git with a deadline; a CompletedProcess, or why it could not run."""
        try:
            return subprocess.run([self._git, *args], input=data, capture_output=True, cwd=cwd,
                                  timeout=self._deadline_s, env=dict(os.environ, GIT_OPTIONAL_LOCKS="0",
                                                                     LC_ALL="C"))
        except FileNotFoundError:
            return f"git is not installed ({self._git!r} not found)"
        except subprocess.TimeoutExpired:
            return f"git did not answer within {self._deadline_s:g} s"
        except OSError as exc:
            return f"git could not run ({exc})"

    def _give_up(self, why: str) -> None:
        self.off = why
        self._say(f"respectGitignore: {why}; files git ignores are not excluded here (the exclude globs still apply)")

    def _repository(self) -> str | None:
        """The repository's work tree, found once (`git rev-parse`); None when git cannot answer."""
        if self.off is not None:
            return None
        if not self._probed:
            self._probed = True
            if not os.path.isdir(self.root):
                self._give_up(f"the workspace {self.root} is not a folder")
                return None
            done = self._run(["rev-parse", "--show-toplevel", "--git-path", "info/exclude"], None, self.root)
            if isinstance(done, str):
                self._give_up(done)
                return None
            lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
            if done.returncode != 0 or len(lines) < 2:
                detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
                if detail and "not a git repository" in detail[0]:
                    self._give_up(f"{self.root} is not in a git repository")
                else:
                    self._give_up(f"git rev-parse failed in {self.root}: {detail[0] if detail else done.returncode}")
                return None
            self.toplevel = os.path.realpath(lines[0])
            self._exclude_file = os.path.join(self.root, lines[1])
        return self.toplevel

    def _check(self, paths: list[str], top: str) -> dict[str, str | None] | None:
        """One `git check-ignore` for all of `paths`; None when it failed (said once, then off)."""
        self.calls += 1
        data = b"".join(os.fsencode(p) + b"\0" for p in paths)
        done = self._run(["check-ignore", "--stdin", "-z", "-v", "-n"], data, top)
        if isinstance(done, str):
            self._give_up(done)
            return None
        if done.returncode not in (0, 1):  # 1: none of them is ignored
            # One path git refuses (e.g. a file of a submodule) fails the batch: ask one by one, and a path
            # refused alone is not ignored here (said once).
            if len(paths) > 1:
                merged: dict[str, str | None] = {}
                for path in paths:
                    one = self._check([path], top)
                    if one is None:
                        return None
                    merged.update(one)
                return merged
            if not self._refused_said:
                self._refused_said = True
                detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
                self._say(f"respectGitignore: git check-ignore refused {paths[0]} "
                          f"({detail[0] if detail else done.returncode}); such files are not checked against "
                          ".gitignore")
            return {paths[0]: None}
        fields = done.stdout.split(b"\0")
        answers: dict[str, str | None] = {}
        for i in range(0, len(fields) - 3, 4):  # source, line number, pattern, path
            # the path as asked (surrogate escapes for bytes that are not UTF-8); the rule as people read it
            source, line, pattern = (f.decode("utf-8", "backslashreplace") for f in fields[i:i + 3])
            path = os.fsdecode(fields[i + 3])
            # -v also names a `!pattern` that matched: git then does not ignore the file
            answers[path] = (f"ignored by git: {pattern} in {_short(source, top)}:{line}"
                             if pattern and not pattern.startswith("!") else None)
        return answers


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def _short(source: str, top: str) -> str:
    """git names a repository's ignore file relative to it, the global one absolutely."""
    if os.path.isabs(source) and _inside(source, top):
        return os.path.relpath(source, top)
    return source
