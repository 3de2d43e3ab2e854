"""Which documents never reach a model: the one decision, made before any prompt is built.

A document is excluded when its languageId is in `disabledLanguages`, when its path matches one of the
`exclude` globs (built-in defaults for secrets first, the user's after them; `!pattern` re-includes), or,
with `respectGitignore`, when git ignores it (gitignore.py: git's own answer). `Exclusion.reason_for(uri,
language)` names the rule that matched ("matches .env", "ignored by git: build/ in .gitignore:1",
"language markdown is in disabledLanguages") or says None.

The globs are gitignore patterns (the `pathspec` library's, not a hand-written matcher), matched without
regard to case (`.ENV` is `.env` on the file systems of macOS and Windows, and a privacy rule errs on the
side of excluding) against the path relative to the workspace root, so a pattern without a slash matches
a name at any depth and one with a slash is anchored at the root; a file outside the workspace (or with no
workspace) is matched by its name. A path is matched twice, as the editor gave it and resolved
(symlinks followed, `os.path.realpath`), each against the workspace root as given and resolved: excluded
if either says so (the stricter answer wins, so a `!` re-include through one of them cannot undo an
exclusion through the other). Non-UTF-8 bytes in a file URI stay as surrogate escapes, so they match
`?`/`*` and reach git as the same bytes.

Pure apart from two things it is handed or asks once per call: the file system's answer to realpath, and
the `gitignored` port. The completion core asks through `CompletionPorts.excluded` (completion.py),
synthesis through the server; nothing else decides.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

# Files that hold secrets in most projects: excluded unless the user's list re-includes them (`!.env.example`).
DEFAULT_EXCLUDE = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "*.p12", ".npmrc", ".pypirc",
                   ".netrc", "secrets.*", "credentials*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# (paths) -> {path: why git ignores it, or None}; gitignore.GitIgnored is the real one.
GitIgnoredPort = Callable[[Sequence[str]], Mapping[str, str | None]]


class GlobError(ValueError):
    """A pattern of `exclude` that is not a glob; the message says which and why."""


def compile_glob(pattern: str) -> GitIgnoreBasicPattern:
    """One `exclude` entry as a case-folded gitignore pattern; GlobError when it is malformed, and when it
    would silently match nothing (empty, a `#` comment), which gitignore allows but a setting should not."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise GlobError(f"{pattern!r} is empty")
    if _CONTROL.search(pattern):
        raise GlobError(f"{pattern!r} holds a control character")
    if pattern.startswith("#"):
        raise GlobError(f"{pattern!r} starts with # (a comment in gitignore syntax; write \\# for a leading #)")
    try:
        compiled = GitIgnoreBasicPattern(pattern.lower())
    except (GitIgnorePatternError, re.error, ValueError) as exc:
        raise GlobError(f"{pattern!r} is not a glob ({exc})") from None
    if compiled.include is None or compiled.regex is None:
        raise GlobError(f"{pattern!r} matches nothing")
    return compiled


def check_globs(patterns: Iterable[str]) -> None:
    """GlobError for the first malformed pattern (the settings' validator)."""
    for pattern in patterns:
        compile_glob(pattern)


def uri_path(uri: str) -> tuple[str | None, str]:
    """(the file-system path of a file: URI, or None for other schemes; the name the URI ends with)."""
    parts = urlsplit(uri)
    path = unquote(parts.path, errors="surrogateescape")
    if parts.scheme != "file":
        return None, posixpath.basename(path.rstrip("/")) or path or uri
    if os.name == "nt" and re.match(r"^/[A-Za-z]:", path):  # file:///c:/x
        path = path[1:]
    if parts.netloc and parts.netloc != "localhost":  # file://server/share: a UNC path
        path = f"//{parts.netloc}{path}"
    return path, os.path.basename(path.rstrip("/\\")) or path


def _relative(path: str, root: str) -> str | None:
    """`path` relative to `root` with '/' separators, or None when it is not below it."""
    if not root:
        return None
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return None
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


class Exclusion:
    """The exclusion rules of one workspace. `patterns`: the user's `exclude` (checked: GlobError), after
    DEFAULT_EXCLUDE; `root`: the workspace root (None: every file is "outside"); `gitignored`: git's answer
    (None: `respectGitignore` off, or no root)."""

    def __init__(self, patterns: Sequence[str] = (), disabled_languages: Iterable[str] = (),
                 root: str | os.PathLike | None = None, gitignored: GitIgnoredPort | None = None) -> None:
        self.patterns = (*DEFAULT_EXCLUDE, *patterns)
        self._rules = [(text, compile_glob(text)) for text in self.patterns]
        self.disabled_languages = frozenset(language.lower() for language in disabled_languages)
        self.root = os.fspath(root) if root is not None else None
        roots = [os.path.normpath(self.root)] if self.root else []
        if roots:
            resolved = os.path.realpath(roots[0])
            if resolved != roots[0]:
                roots.append(resolved)
        self._roots = tuple(roots)
        self.gitignored = gitignored

    def reason_for(self, uri: str, language: str | None = None) -> str | None:
        """Why the document at `uri` (of languageId `language`) must not reach a model, or None."""
        if language and language.lower() in self.disabled_languages:
            return f"language {language} is in disabledLanguages"
        given, name = uri_path(uri)
        if given is None:
            return self._match_name(name)
        views = self._views(given)
        for path in views:
            if (why := self._match_path(path)) is not None:
                return why
        if self.gitignored is not None:
            answers = self.gitignored(self._git_paths(views))
            for path in self._git_paths(views):
                if answers.get(path):
                    return answers[path]
        return None

    def prime(self, uris: Iterable[str]) -> None:
        """Ask git about these documents in one call (the open ones, when the rules change), so the checks
        that follow answer from its cache."""
        if self.gitignored is None:
            return
        paths = []
        for uri in uris:
            given, _ = uri_path(uri)
            if given is not None:
                paths.extend(self._git_paths(self._views(given)))
        if paths:
            self.gitignored(list(dict.fromkeys(paths)))

    # -- matching --------------------------------------------------------------------------------------

    @staticmethod
    def _views(given: str) -> tuple[str, ...]:
        """The path as the editor gave it (normalized lexically) and resolved, symlinks followed."""
        lexical = os.path.normpath(given)
        try:
            resolved = os.path.realpath(lexical)
        except (OSError, ValueError):
            return (lexical,)
        return (lexical,) if resolved == lexical else (lexical, resolved)

    @staticmethod
    def _git_paths(views: tuple[str, ...]) -> list[str]:
        """What git is asked about: resolved paths only (git refuses a path beyond a symlink, and one refusal
        fails the whole batch): the resolved file, and the given name in its resolved folder (a symlinked
        file keeps its own name there, e.g. `secrets.txt -> /elsewhere/real.txt`)."""
        resolved = views[-1]
        folder, name = os.path.split(views[0])
        try:
            named = os.path.join(os.path.realpath(folder), name)
        except (OSError, ValueError):
            named = resolved
        return list(dict.fromkeys((resolved, named)))

    def _match_path(self, path: str) -> str | None:
        """Inside the workspace: its relative path, against each form of the root; outside: its name."""
        relatives = [rel for root in self._roots if (rel := _relative(path, root)) is not None]
        if not relatives:
            return self._match_name(os.path.basename(path))
        for rel in relatives:
            if (why := self._match(rel)) is not None:
                return why
        return None

    def _match_name(self, name: str) -> str | None:
        return self._match(name) if name else None

    def _match(self, relative: str) -> str | None:
        """The last rule that matches decides (gitignore's rule): an exclusion names its pattern."""
        folded = relative.lower()
        for text, rule in reversed(self._rules):
            if rule.match_file(folded) is not None:
                return f"matches {text}" if rule.include else None
        return None
