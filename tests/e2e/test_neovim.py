"""The Neovim config (editor-client/neovim) against the real server in a real, headless Neovim (0.7+).

Each test writes an init.lua that loads the config with this interpreter's server and a tiny real model,
plus a Lua driver that opens a file, waits for the server, acts, writes the buffer and quits: `:cq`
(non-zero) on any failure or timeout. Python asserts on the file written and on a JSON report.

Needs `nvim` on PATH (Debian: `apt-get install -y neovim`); without it these tests fail, unless
CODEGEN_LSP_SKIP_NEOVIM=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import REPO_ROOT
from support.snippets import MTPB_STYLE_PROGRAM, comments_only

NEOVIM_CONFIG = REPO_ROOT / "editor-client" / "neovim"
INSTALL = "apt-get install -y neovim"
SYNTHESIZE = "Synthesize from comments (codegen-lsp)"
SYNTHESIZE_KIND = "refactor.rewrite.codegen.synthesize"
NVIM_TIMEOUT_S = 150

# From tests/e2e/test_features.py: the memorizing model completes this at (5, 8) with exactly this.
COMPLETE_SOURCE = "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        \n"
COMPLETE_SUGGESTION = "return fh.read()"


@pytest.fixture
def nvim() -> str:
    """The nvim binary, or "": a missing nvim fails the test itself (see require_nvim), not its setup."""
    if os.environ.get("CODEGEN_LSP_SKIP_NEOVIM") == "1":
        pytest.skip("CODEGEN_LSP_SKIP_NEOVIM=1")
    return shutil.which("nvim") or ""


def require_nvim(nvim: str) -> None:
    if not nvim:
        pytest.fail(f"`nvim` is not on PATH: install Neovim 0.7 or later (Debian/Ubuntu: `{INSTALL}`), "
                    "or set CODEGEN_LSP_SKIP_NEOVIM=1 to skip the Neovim tests", pytrace=False)


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

local function wait_for(what, timeout_ms, condition)
  if not vim.wait(timeout_ms, condition, 20) then
    error('timed out after ' .. timeout_ms .. ' ms waiting for ' .. what, 0)
  end
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

local ok, err = pcall(function()
SCENARIO
end)
report.ok, report.error = ok, not ok and tostring(err) or nil
save_report()
if not ok then
  emit('DRIVER FAILED: ' .. tostring(err))
  vim.cmd('cquit 3')
end
vim.cmd('qall!')
"""


def run_nvim(nvim: str, tmp_path: Path, model, scenario: str, **settings) -> dict:
    """Run `scenario` (Lua) in a headless Neovim with the config loaded; the driver's report."""
    require_nvim(nvim)
    init = tmp_path / "init.lua"
    options = {"model": str(model.gguf_path), **settings}
    init.write_text(
        f"vim.opt.runtimepath:prepend({lua_string(str(NEOVIM_CONFIG))})\n"
        "vim.o.swapfile = false\n"
        "vim.o.shadafile = 'NONE'\n"
        "vim.lsp.set_log_level('debug')\n"
        "require('codegen_lsp').setup({\n"
        f"  cmd = {{ {lua_string(sys.executable)}, '-m', 'codegen_lsp', 'serve', '--log-level', 'info' }},\n"
        f"  settings = {lua_table(options)},\n"
        "})\n", encoding="utf-8")
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
        proc = subprocess.run([nvim, "--headless", "--clean", "-u", str(init), "-c", f"luafile {driver}"],
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


def test_synthesize_whole_file_in_neovim(nvim: str, synthesizing_codegen1, tmp_path: Path):
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
    assert report["offset_encoding"] == "utf-16"  # 0.7 sends no general.positionEncodings: the LSP default
    change = report["synthesis"]["edit"]["documentChanges"][0]
    assert len(change["edits"]) == 3  # one insert per turn without code, as in test_synthesis.py
    assert all(e["range"]["start"] == e["range"]["end"] for e in change["edits"])
    assert path.read_text(encoding="utf-8") == MTPB_STYLE_PROGRAM


def test_code_action_list_offers_synthesis(nvim: str, synthesizing_codegen1, tmp_path: Path):
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


def test_builtin_code_action_menu_resolves_and_applies(nvim: str, synthesizing_codegen1, tmp_path: Path):
    """No config function involved: 0.7's own vim.lsp.buf.code_action() resolves our action and applies it."""
    path = tmp_path / "builtin.py"
    path.write_text(comments_only(MTPB_STYLE_PROGRAM), encoding="utf-8")
    report = run_nvim(nvim, tmp_path, synthesizing_codegen1, f"""
  local bufnr = open_and_wait({lua_string(str(path))})
  vim.ui.select = function(items, opts, on_choice)  -- the menu: pick our title
    report.menu = vim.tbl_map(opts.format_item, items)
    for _, item in ipairs(items) do
      if item[2].title == {lua_string(SYNTHESIZE)} then return on_choice(item) end
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


def test_synthesize_visual_selection_only(nvim: str, synthesizing_codegen1, tmp_path: Path):
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


def test_inline_complete_shows_and_accepts_the_suggestion(nvim: str, memorizing_codegen1, tmp_path: Path):
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


def test_inline_candidates_cycle_and_the_shown_one_is_accepted(nvim: str, smollm2: Path, tmp_path: Path):
    """An explicit request gets several suggestions (SmolLM2, a real model); the cycle keys' function
    shows the next one, wraps around, and accept inserts the one shown."""
    from types import SimpleNamespace

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



def test_opening_a_file_warms_the_model_at_the_cursor(nvim: str, memorizing_codegen1, tmp_path: Path):
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
  vim.wait(600, function() return false end)
  report.after_hop = vim.deepcopy(report.focus_sent)
  vim.cmd('buffer #')             -- the scratch buffer, and staying there
  vim.wait(600, function() return false end)
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


def test_an_excluded_file_says_off_for_this_file_in_its_status(nvim: str, tiny_codegen1, tmp_path: Path):
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
  vim.wait(300)
  report.other_status = cg.status(other) or vim.NIL
  report.said = said
""")
    text = "codegen-lsp: off for this file (matches credentials*)"
    assert report["status"] == report["var"] == text, report
    assert report["answered"] is False and report["other_status"] is None
    assert report["said"] == [text, text], report["said"]  # the notice, then the complete key
