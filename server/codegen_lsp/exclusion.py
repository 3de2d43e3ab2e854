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

Pure apart from the file system's answer to realpath and the `gitignored` port. A document's paths and
glob verdict are worked out once (its first check) and kept until `forget` (the server calls it when the
document is opened, so a symlink pointed elsewhere counts from its next open); git's answer is asked for
on every check, from gitignore.py's cache. That keeps a check to a few stats (bench exclusion). The
completion core asks through `CompletionPorts.excluded` (completion.py), synthesis through the server;
nothing else decides.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from urllib.parse import unquote, urlsplit

from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

# Files that hold secrets in most projects: excluded unless the user's list re-includes them (`!.env.example`).
DEFAULT_EXCLUDE = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "*.p12", ".npmrc", ".pypirc",
                   ".netrc", "secrets.*", "credentials*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
KNOWN_DOCUMENTS = 4096  # documents whose paths and glob verdict are kept (a long session starts over past it)


class GitIgnoredPort(Protocol):
    """git's answer (gitignore.GitIgnored): {path: why git ignores it, or None}, and forgetting paths."""

    def __call__(self, paths: Sequence[str]) -> Mapping[str, str | None]: ...

    def forget(self, paths: Sequence[str]) -> None: ...


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
    """`path` relative to `root` (both normalized, absolute) with '/' separators, or None when not below it."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix):].replace(os.sep, "/")


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
        self._known: dict[str, tuple[str | None, tuple[str, ...]]] = {}  # uri → (glob verdict, paths for git)

    def reason_for(self, uri: str, language: str | None = None) -> str | None:
        """Why the document at `uri` (of languageId `language`) must not reach a model, or None."""
        if language and language.lower() in self.disabled_languages:
            return f"language {language} is in disabledLanguages"
        why, git_paths = self._examine(uri)
        if why is not None or self.gitignored is None or not git_paths:
            return why
        answers = self.gitignored(git_paths)
        for path in git_paths:
            if answers.get(path):
                return answers[path]
        return None

    def prime(self, uris: Iterable[str]) -> None:
        """Ask git about these documents in one call (the open ones, when the rules change), so the checks
        that follow answer from its cache."""
        if self.gitignored is None:
            return
        paths = [path for uri in uris for path in self._examine(uri)[1]]
        if paths:
            self.gitignored(list(dict.fromkeys(paths)))

    def forget(self, uri: str) -> None:
        """`uri` is opened (again): its paths are resolved afresh and git asked again at its next check."""
        known = self._known.pop(uri, None)
        if known is not None and self.gitignored is not None:
            self.gitignored.forget(known[1])

    def _examine(self, uri: str) -> tuple[str | None, tuple[str, ...]]:
        """(the glob that excludes `uri`, or None; the paths git is asked about), worked out once."""
        known = self._known.get(uri)
        if known is None:
            if len(self._known) >= KNOWN_DOCUMENTS:
                self._known.clear()
            given, name = uri_path(uri)
            if given is None:
                known = (self._match_name(name), ())
            else:
                views = self._views(given)
                why = next((w for path in views if (w := self._match_path(path)) is not None), None)
                known = (why, tuple(self._git_paths(views)))
            self._known[uri] = known
        return known

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
