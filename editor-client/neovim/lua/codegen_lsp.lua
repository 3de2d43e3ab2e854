-- codegen-lsp for Neovim 0.7 and later: one module, no plugin dependencies.
--
--   vim.opt.runtimepath:append('/path/to/codegen-lsp/editor-client/neovim')  -- or copy this file to ~/.config/nvim/lua/
--   require('codegen_lsp').setup({
--     cmd = { '/path/to/codegen-lsp/.venv/bin/codegen-lsp', 'serve' },
--     settings = { model = '/path/to/model.gguf' },   -- the "codegenLsp" section (`codegen-lsp settings-schema`)
--   })
--
-- Suggestions as you type: TextChangedI/TextChangedP start a timer (`debounce_ms`); when it fires in insert
-- mode with the text unchanged, an Automatic textDocument/inlineCompletion goes out and its answer is shown as
-- ghost text, unless the text or cursor moved meanwhile or a newer request was made (the older one is
-- cancelled). `:CodegenLsp toggle|enable|disable|status`, and `auto_suggest = { python = false }` per filetype.
-- Accept the whole suggestion, its next word or its next line; the rest stays shown.
--
-- Neovim 0.11+: lsp/codegen_lsp.lua (next to lua/) is a config for `vim.lsp.enable('codegen_lsp')`; its
-- on_attach calls M.on_attach, so the keys and suggestions as you type come without setup(). Neovim 0.12+
-- (vim.lsp.inline_completion exists): the ghost text as you type is Neovim's own; the keys call it.
--
-- On 0.7-0.9 it starts the server with vim.lsp.start_client from a FileType autocmd and attaches buffers
-- with vim.lsp.buf_attach_client (vim.lsp.start exists from 0.8, but the same code path serves 0.7-0.9);
-- on 0.10+ it calls vim.lsp.start. The buffer that becomes current is named to the server (codegenLsp/focus,
-- M.focus) so it warms up the first suggestion there. A buffer the server will not complete (its `exclude`,
-- `respectGitignore`, `disabledLanguages` settings) is said once and kept in b:codegen_lsp_off, which
-- M.status() returns for a statusline: "codegen-lsp: off for this file (matches .env)". Tested on 0.7.2
-- and on 0.11.4 (tests/e2e/test_neovim.py). See docs/editors.md.

local M = {}

local api = vim.api
local util = vim.lsp.util

M.SECTION = 'codegenLsp'
M.SYNTHESIZE_TITLE = 'Synthesize from comments (codegen-lsp)'
M.SYNTHESIZE_KIND = 'refactor.rewrite.codegen.synthesize'
M.SYNTHESIZE_COMMAND = 'codegen-lsp.synthesize'
M.FOCUS_NOTIFICATION = 'codegenLsp/focus'
M.FOCUS_SETTLE_MS = 150  -- a buffer entered for this long counts as the one worked in
M.EXCLUSION_NOTIFICATION = 'codegenLsp/exclusion'
M.OFF_VAR = 'codegen_lsp_off'  -- b:codegen_lsp_off: "codegen-lsp: off for this file (<the rule>)"
M.LSP_NAME = 'codegen_lsp'  -- the name of lsp/codegen_lsp.lua for vim.lsp.config()/vim.lsp.enable() (0.11+)
M.ROOT_MARKERS = { 'codegen-lsp.toml', '.git', 'pyproject.toml', 'setup.py', 'package.json', 'go.mod',
                   'Cargo.toml', 'pom.xml', 'build.gradle', 'CMakeLists.txt', 'Makefile' }

local defaults = {
  name = 'codegen-lsp',
  cmd = { 'codegen-lsp', 'serve' },
  -- Neovim filetypes whose languageId the server has a grammar for: generated from the server's
  -- language table into codegen_lsp/languages.lua (`npm run sync-languages` in editor-client/).
  filetypes = vim.deepcopy(require('codegen_lsp.languages').filetypes),
  -- The first directory upwards holding one of these is the workspace root (else the file's directory).
  root_markers = vim.deepcopy(M.ROOT_MARKERS),
  settings = {},    -- the "codegenLsp" section: { model = '/path/to/model.gguf', maxTokens = 64, ... }
  keymaps = {       -- buffer-local, set when the server attaches; `keymaps = false` sets none
    synthesize = '<leader>cs',  -- normal: whole buffer; visual: the selected lines
    complete = '<M-\\>',        -- insert: ask for an inline suggestion at the cursor (shown as virtual text)
    accept = '<M-l>',           -- insert: insert the suggestion shown
    accept_word = '<M-Right>',  -- insert: insert its next word only (the rest stays shown)
    accept_line = '<M-Down>',   -- insert: insert the rest of its current line only (the rest stays shown)
    dismiss = '<M-h>',          -- insert: hide it (it also goes when the cursor moves or insert mode ends)
    next = '<M-]>',             -- insert: show the next suggestion (an explicit request gets several)
    prev = '<M-[>',             -- insert: show the previous one
  },
  -- Suggestions as you type: true, false, or per filetype { python = false, ['*'] = true } (unlisted: '*',
  -- else true). `:CodegenLsp toggle` / `enable` / `disable` switch them for the session; the complete key
  -- works either way.
  auto_suggest = true,
  debounce_ms = 300,  -- typing must pause this long before a suggestion is asked for
  start = true,   -- false: setup() starts no server; the client comes from vim.lsp.enable('codegen_lsp') (0.11+)
  native = true,  -- 0.12+: let vim.lsp.inline_completion show the suggestions as you type (false: this module)
  on_attach = nil,  -- function(client, bufnr) called after ours
  capabilities = nil,  -- extra client capabilities, deep-merged over Neovim's defaults
}

-- Newer versions: methods are called client:request() (0.11 warns about client.request()), string index
-- functions take an encoding (0.11), vim.lsp.start() replaces start_client() (0.8; start_client warns in 0.11).
local has_011 = vim.fn.has('nvim-0.11') == 1
local has_010 = vim.fn.has('nvim-0.10') == 1
local use_lsp_start = has_010 and vim.lsp.start ~= nil

local function call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local uv = vim.uv or vim.loop
local config = vim.deepcopy(defaults)
local clients = {}  -- root directory -> client id
local focus_timer = nil  -- pending codegenLsp/focus (see schedule_focus)
local ns = api.nvim_create_namespace('codegen_lsp_inline')
local shown = nil   -- the suggestions on screen: { bufnr, extmark, texts, index, text (texts[index]), range, encoding, row,
                    -- col, tick (the changedtick once shown: a partial accept's own change) }
local auto_on = true        -- suggestions as you type (:CodegenLsp toggle); see M.auto_enabled
local debounce_timer = nil  -- pending automatic request (see on_text_changed)
local pending = nil         -- the inline completion request in flight: { client_id, id, seq }
local seq = 0               -- numbers the requests: only the newest one's answer is shown
local autocmds_ready = false
local warned_missing = false  -- the "server not installed" warning is given once

local function notify(msg, level)
  vim.notify('codegen-lsp: ' .. msg, level or vim.log.levels.INFO)
end

-- The "codegenLsp" section; accepts { model = ... } or { codegenLsp = { model = ... } }.
local function section(settings)
  local s = settings or {}
  if type(s[M.SECTION]) == 'table' then
    s = s[M.SECTION]
  end
  if vim.tbl_isempty(s) then
    return vim.empty_dict()  -- an object, not [], on the wire
  end
  return s
end

local function find_root(fname)
  local dir = vim.fn.fnamemodify(fname, ':p:h')
  for _, marker in ipairs(config.root_markers) do
    local found = vim.fn.finddir(marker, dir .. ';')
    if found == '' then
      found = vim.fn.findfile(marker, dir .. ';')
    end
    if found ~= '' then
      local path = vim.fn.fnamemodify(found, ':p'):gsub('/$', '')  -- a directory's :p ends in '/'
      return vim.fn.fnamemodify(path, ':h')
    end
  end
  return dir
end

local function map_keys(bufnr)
  local keys = config.keymaps
  if not keys then
    return
  end
  local function map(mode, lhs, rhs, desc)
    if lhs then
      vim.keymap.set(mode, lhs, rhs, { buffer = bufnr, silent = true, desc = desc })
    end
  end
  map('n', keys.synthesize, function() M.synthesize() end, 'codegen-lsp: synthesize from comments (buffer)')
  -- <Esc> first so that the '< and '> marks hold this selection.
  map('x', keys.synthesize, '<Esc><Cmd>lua require("codegen_lsp").synthesize({ visual = true })<CR>',
      'codegen-lsp: synthesize from comments (selection)')
  map('i', keys.complete, function() M.complete() end, 'codegen-lsp: inline suggestion')
  map('i', keys.accept, function() M.accept() end, 'codegen-lsp: accept the suggestion')
  map('i', keys.accept_word, function() M.accept_word() end, 'codegen-lsp: accept the next word of the suggestion')
  map('i', keys.accept_line, function() M.accept_line() end, 'codegen-lsp: accept the next line of the suggestion')
  map('i', keys.dismiss, function() M.dismiss() end, 'codegen-lsp: dismiss the suggestion')
  map('i', keys.next, function() M.cycle(1) end, 'codegen-lsp: next suggestion')
  map('i', keys.prev, function() M.cycle(-1) end, 'codegen-lsp: previous suggestion')
end

local function make_capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  -- 0.7 answers workspace/configuration from `settings` but does not advertise it.
  caps.workspace.configuration = true
  caps.workspace.didChangeConfiguration = { dynamicRegistration = false }
  caps.textDocument.inlineCompletion = { dynamicRegistration = false }  -- served by M.complete()
  if config.capabilities then
    caps = vim.tbl_deep_extend('force', caps, config.capabilities)
  end
  return caps
end

--- `codegenLsp/exclusion` {uri, reason}: the server will not complete that document (reason: the rule that
--- matched), or will again (reason null). Kept in the buffer's b:codegen_lsp_off and said once.
local function on_exclusion(_, result)
  if type(result) ~= 'table' or type(result.uri) ~= 'string' then
    return
  end
  local reason = result.reason
  if reason == vim.NIL then
    reason = nil
  end
  local ok, fname = pcall(vim.uri_to_fname, result.uri)
  local bufnr = ok and vim.fn.bufnr(fname) or -1
  if bufnr < 0 or (reason ~= nil and type(reason) ~= 'string') then
    return
  end
  if reason then
    local text = 'codegen-lsp: off for this file (' .. reason .. ')'
    api.nvim_buf_set_var(bufnr, M.OFF_VAR, text)
    vim.notify(text, vim.log.levels.INFO)
  else
    pcall(api.nvim_buf_del_var, bufnr, M.OFF_VAR)
  end
  pcall(vim.cmd, 'redrawstatus')
end

M.on_exclusion = on_exclusion  -- for lsp/codegen_lsp.lua's handlers

--- For a statusline: "codegen-lsp: off for this file (matches .env)" when the server will not complete
--- buffer `bufnr` (default: current), else nil.
function M.status(bufnr)
  local ok, text = pcall(api.nvim_buf_get_var, bufnr or api.nvim_get_current_buf(), M.OFF_VAR)
  return ok and text or nil
end

local function client_config(root)
  local settings = section(config.settings)
  return {
    name = config.name,
    cmd = config.cmd,
    root_dir = root,
    init_options = { [M.SECTION] = settings },
    settings = { [M.SECTION] = settings },
    capabilities = make_capabilities(),
    handlers = { [M.EXCLUSION_NOTIFICATION] = on_exclusion },
    on_attach = function(c, bufnr) M.on_attach(c, bufnr) end,
  }
end

local function start_or_get(root)
  local id = clients[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if client and not vim.lsp.client_is_stopped(id) then
    return id
  end
  id = vim.lsp.start_client(client_config(root))
  clients[root] = id
  return id
end

-- The server program, when `cmd` names one that is not there: said once (not per buffer or keystroke).
local function server_missing()
  local cmd = config.cmd
  if type(cmd) ~= 'table' or type(cmd[1]) ~= 'string' or vim.fn.executable(cmd[1]) == 1 then
    return false
  end
  if not warned_missing then
    warned_missing = true
    notify(('`%s` is not installed or not on PATH, so there are no suggestions. Install the server (in a '
      .. 'checkout: `make install`; or `pip install` the wheel that `make dist` builds), or give its path: '
      .. "require('codegen_lsp').setup({ cmd = { '/path/to/.venv/bin/codegen-lsp', 'serve' } })"):format(cmd[1]),
      vim.log.levels.WARN)
  end
  return true
end

local function attach(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  local fname = api.nvim_buf_get_name(bufnr)
  if fname == '' then
    return
  end
  -- 0.11+: vim.lsp.enable('codegen_lsp') starts the client itself (lsp/codegen_lsp.lua); do not start a second.
  if vim.lsp.is_enabled and vim.lsp.is_enabled(M.LSP_NAME) then
    return
  end
  if server_missing() then
    return
  end
  local root = find_root(fname)
  if use_lsp_start then  -- 0.10+: reuses the client of the same name and root
    clients[root] = vim.lsp.start(client_config(root), { bufnr = bufnr })
    return
  end
  local id = start_or_get(root)
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

-- 0.12+: Neovim's own inline completion (vim.lsp.inline_completion) shows the suggestions as you type.
local function use_native()
  return config.native ~= false and vim.lsp.inline_completion ~= nil
end

local function auto_for_filetype(filetype)
  local auto = config.auto_suggest
  if type(auto) == 'table' then
    local on = auto[filetype]
    if on == nil then
      on = auto['*']
    end
    return on ~= false
  end
  return auto ~= false
end

--- Whether suggestions come as you type in buffer `bufnr` (default: current): switched on (`auto_suggest`,
--- :CodegenLsp enable/disable/toggle) and not turned off for its filetype.
function M.auto_enabled(bufnr)
  return auto_on and auto_for_filetype(vim.bo[bufnr or api.nvim_get_current_buf()].filetype)
end

local function cancel_pending()
  if debounce_timer then
    debounce_timer:stop()
  end
  if pending then
    local client = vim.lsp.get_client_by_id(pending.client_id)
    if client and pending.id then
      pcall(call, client, 'cancel_request', pending.id)
    end
    pending = nil
  end
end

-- 0.12+: tell Neovim's inline completion whether it runs in `bufnr` (it also needs the client attached).
local function sync_native(bufnr)
  if use_native() and api.nvim_buf_is_loaded(bufnr) and M.client(bufnr) then
    pcall(vim.lsp.inline_completion.enable, M.auto_enabled(bufnr), { bufnr = bufnr })
  end
end

--- Switch suggestions as you type on (true), off (false) or over (nil) for this session.
function M.set_auto(on)
  if on == nil then
    on = not auto_on
  end
  auto_on = on and true or false
  if not auto_on then
    cancel_pending()
    M.dismiss()
  end
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    sync_native(bufnr)
  end
  return auto_on
end

--- :CodegenLsp toggle | enable | disable | status
function M.command(arg)
  arg = vim.trim(arg or '')
  if arg == 'toggle' or arg == '' then
    M.set_auto(nil)
  elseif arg == 'enable' or arg == 'on' then
    M.set_auto(true)
  elseif arg == 'disable' or arg == 'off' then
    M.set_auto(false)
  elseif arg ~= 'status' then
    return notify('unknown argument "' .. arg .. '" (toggle, enable, disable, status)', vim.log.levels.ERROR)
  end
  local bufnr = api.nvim_get_current_buf()
  local state = auto_on and 'on' or 'off'
  if auto_on and not auto_for_filetype(vim.bo[bufnr].filetype) then
    state = 'on, but off for filetype ' .. vim.bo[bufnr].filetype .. ' (auto_suggest)'
  end
  notify('suggestions as you type: ' .. state .. (M.status(bufnr) and ('; ' .. M.status(bufnr)) or ''))
end

-- Typing (TextChangedI, TextChangedP): hide what no longer fits, cancel the request in flight, and ask again
-- once typing has paused for `debounce_ms`, if still in insert mode with the same text.
local function on_text_changed(args)
  local bufnr = args.buf
  local tick = api.nvim_buf_get_changedtick(bufnr)
  if shown and shown.bufnr == bufnr and shown.tick == tick then
    return  -- a partial accept's own change: the rest of the suggestion stays
  end
  M.dismiss()
  cancel_pending()
  if use_native() or not M.auto_enabled(bufnr) or not M.client(bufnr) or M.status(bufnr) then
    return
  end
  debounce_timer = debounce_timer or uv.new_timer()
  debounce_timer:start(config.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_get_current_buf() ~= bufnr or api.nvim_buf_get_changedtick(bufnr) ~= tick
        or api.nvim_get_mode().mode:sub(1, 1) ~= 'i' or not M.auto_enabled(bufnr) then
      return
    end
    M.complete({ automatic = true })
  end))
end

-- The autocmds and the :CodegenLsp command, once (setup(), or the first on_attach without setup()).
local function ensure_autocmds()
  if autocmds_ready then
    return
  end
  autocmds_ready = true
  local group = api.nvim_create_augroup('codegen_lsp', { clear = true })
  -- Entering a buffer (another window, :edit, :buffer) makes it the one worked in. A buffer entered
  -- before its client is ready gets its focus from on_attach instead.
  api.nvim_create_autocmd('BufEnter', {
    group = group,
    callback = function() M.schedule_focus() end,
  })
  -- Unloaded, its didClose goes out: the server tells again when it is opened again.
  api.nvim_create_autocmd('BufUnload', {
    group = group,
    callback = function(args) pcall(api.nvim_buf_del_var, args.buf, M.OFF_VAR) end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave', 'CursorMovedI' }, {
    group = group,
    callback = function(args)
      if shown and args.event == 'CursorMovedI' then
        local row, col = unpack(api.nvim_win_get_cursor(0))
        if shown.bufnr == args.buf and shown.row == row - 1 and shown.col == col then
          return  -- the cursor is still where the suggestion was asked for
        end
      end
      if args.event ~= 'CursorMovedI' then
        cancel_pending()  -- an answer that comes after insert mode ends is not shown either
      end
      M.dismiss()
    end,
  })
  api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, {
    group = group,
    callback = on_text_changed,
  })
  api.nvim_create_user_command('CodegenLsp', function(a) M.command(a.args) end, {
    nargs = '?',
    complete = function() return { 'toggle', 'enable', 'disable', 'status' } end,
    desc = 'codegen-lsp: suggestions as you type (toggle, enable, disable, status)',
  })
end

--- Called when a codegen-lsp client attaches to `bufnr`: by setup()'s clients, and by lsp/codegen_lsp.lua's
--- (vim.lsp.enable, 0.11+), so that one also gets the keys and the suggestions as you type. Call it from your
--- own on_attach if your vim.lsp.config('codegen_lsp', ...) replaces that one.
function M.on_attach(client, bufnr)
  ensure_autocmds()
  map_keys(bufnr)
  sync_native(bufnr)
  if bufnr == api.nvim_get_current_buf() then
    M.schedule_focus()  -- didOpen went out just before: warm up where the cursor is
  end
  if config.on_attach then
    config.on_attach(client, bufnr)
  end
end

--- Configure and start: attaches to every buffer of `opts.filetypes` (and those already open).
function M.setup(opts)
  config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if opts and opts.keymaps == false then
    config.keymaps = false
  end
  if opts and opts.filetypes then
    config.filetypes = opts.filetypes  -- a list replaces, it does not merge
  end
  if opts and opts.root_markers then
    config.root_markers = opts.root_markers
  end
  if opts and opts.auto_suggest ~= nil then
    config.auto_suggest = opts.auto_suggest  -- a table replaces the boolean
  end
  auto_on = config.auto_suggest ~= false
  warned_missing = false
  autocmds_ready = false
  ensure_autocmds()
  if config.start == false then
    return
  end
  api.nvim_create_autocmd('FileType', {
    group = 'codegen_lsp',
    pattern = config.filetypes,
    callback = function(args) attach(args.buf) end,
  })
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(config.filetypes, vim.bo[bufnr].filetype) then
      attach(bufnr)
    end
  end
end

--- The codegen-lsp client attached to `bufnr` (default: current), or nil: setup()'s (named `name`), or
--- vim.lsp.enable('codegen_lsp')'s.
function M.client(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local attached = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr }) or vim.lsp.buf_get_clients(bufnr)
  for _, client in pairs(attached) do
    if client.name == config.name or client.name == M.LSP_NAME then
      return client
    end
  end
  return nil
end

--- Push new settings (the "codegenLsp" section) to running servers, e.g. another model.
function M.set_settings(settings)
  config.settings = settings
  local s = section(settings)
  for _, id in pairs(clients) do
    local client = vim.lsp.get_client_by_id(id)
    if client then
      client.config.settings = { [M.SECTION] = s }
      call(client, 'notify', 'workspace/didChangeConfiguration', { settings = { [M.SECTION] = s } })
    end
  end
end

-- LSP character offset of byte column `col` in `line`.
local function to_lsp_col(line, col, encoding)
  col = math.min(col, #line)
  if encoding == 'utf-8' then
    return col
  end
  if has_011 then
    return vim.str_utfindex(line, encoding, col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return encoding == 'utf-32' and utf32 or utf16
end

-- Byte column of LSP character offset `character` in `line`.
local function to_byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding ~= 'utf-32')
  end
  return ok and col or #line
end

local function line_text(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

--- Tell the server that the current buffer is the one worked in, and where its cursor is
--- (`codegenLsp/focus` {textDocument, position}, the position in the client's offset encoding): it then
--- warms up, at low priority, the prompt a suggestion there would need, so the first one is fast.
--- Only for a buffer our (initialized) client is attached to; returns the params sent, or nil.
function M.focus()
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client or (has_010 and not client.initialized) then  -- 0.7-0.9 list initialized clients only
    return nil
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  row = row - 1
  local params = {
    textDocument = util.make_text_document_params(bufnr),
    position = { line = row, character = to_lsp_col(line_text(bufnr, row), col, client.offset_encoding or 'utf-16') },
  }
  call(client, 'notify', M.FOCUS_NOTIFICATION, params)
  return params
end

--- M.focus() once the current buffer has stayed current for FOCUS_SETTLE_MS: going through buffers
--- quickly sends only the last one, and a buffer we do not serve at that moment sends nothing.
function M.schedule_focus()
  focus_timer = focus_timer or uv.new_timer()
  focus_timer:stop()
  focus_timer:start(M.FOCUS_SETTLE_MS, 0, vim.schedule_wrap(M.focus))
end

-- Range of whole lines `first`..`last` (0-based, inclusive).
local function lines_range(bufnr, first, last, encoding)
  local text = line_text(bufnr, last)
  return {
    start = { line = first, character = 0 },
    ['end'] = { line = last, character = to_lsp_col(text, #text, encoding) },
  }
end

local function apply_action(client, action, bufnr, done)
  if action.edit then
    util.apply_workspace_edit(action.edit, client.offset_encoding)
  end
  local command = action.command
  if type(command) == 'table' then
    -- Our command applies its edit with workspace/applyEdit (handled by Neovim) and answers a report.
    call(client, 'request', 'workspace/executeCommand', { command = command.command, arguments = command.arguments },
      function(err, result)
        if err then
          return done(false, err.message, action)
        end
        done(result == nil or result.applied ~= false, result and result.summary or 'done', action)
      end, bufnr)
  elseif action.edit then
    done(true, 'applied', action)
  else
    done(false, 'the server had nothing to insert (see :LspLog or the message above)', action)
  end
end

--- Run "Synthesize from comments" on the current buffer: the whole buffer, or the lines of the last
--- visual selection with { visual = true }, or { range = <LSP range> }. Asynchronous; `opts.on_done`
--- is called with (ok, message, action): the code action as applied (its edit, or its command).
function M.synthesize(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or api.nvim_get_current_buf()
  local done = opts.on_done or function(ok, msg)
    notify('synthesize: ' .. tostring(msg), ok and vim.log.levels.INFO or vim.log.levels.WARN)
  end
  local client = M.client(bufnr)
  if not client then
    return done(false, 'no codegen-lsp client is attached to this buffer')
  end
  local encoding = client.offset_encoding or 'utf-16'
  local range = opts.range
  if not range and opts.visual then
    local first, last = api.nvim_buf_get_mark(bufnr, '<')[1], api.nvim_buf_get_mark(bufnr, '>')[1]
    range = lines_range(bufnr, first - 1, last - 1, encoding)
  elseif not range then
    range = lines_range(bufnr, 0, api.nvim_buf_line_count(bufnr) - 1, encoding)
  end
  local params = {
    textDocument = util.make_text_document_params(bufnr),
    range = range,
    context = { diagnostics = {}, only = { M.SYNTHESIZE_KIND } },
  }
  call(client, 'request', 'textDocument/codeAction', params, function(err, actions)
    if err then
      return done(false, err.message)
    end
    local action
    for _, a in ipairs(actions or {}) do
      if a.title == M.SYNTHESIZE_TITLE or (a.kind == M.SYNTHESIZE_KIND and not action) then
        action = a
      end
    end
    if not action then
      return done(false, 'nothing to synthesize here (write one comment per step, without code under it)')
    end
    local resolves = type(client.server_capabilities.codeActionProvider) == 'table'
      and client.server_capabilities.codeActionProvider.resolveProvider
    if action.edit or action.command or not resolves then
      return apply_action(client, action, bufnr, done)
    end
    api.nvim_echo({ { 'codegen-lsp: synthesizing...' } }, false, {})
    call(client, 'request', 'codeAction/resolve', action, function(rerr, resolved)
      if rerr then
        return done(false, rerr.message)
      end
      apply_action(client, resolved or action, bufnr, done)
    end, bufnr)
  end, bufnr)
end

--- Draw shown.texts[shown.index] as virtual text at the cursor it was asked for.
local function render()
  if shown.extmark then
    pcall(api.nvim_buf_del_extmark, shown.bufnr, ns, shown.extmark)
  end
  shown.text = shown.texts[shown.index]
  local lines = vim.split(shown.text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], 'Comment' } })
  end
  shown.extmark = api.nvim_buf_set_extmark(shown.bufnr, ns, shown.row, shown.col, {
    virt_text = { { lines[1], 'Comment' } },
    virt_text_pos = has_010 and 'inline' or 'overlay',  -- 0.7-0.9: drawn over any text after the cursor
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
end

--- Hide the inline suggestion.
function M.dismiss()
  if shown then
    pcall(api.nvim_buf_del_extmark, shown.bufnr, ns, shown.extmark)
    shown = nil
  end
end

--- The suggestion being shown: { text = ..., bufnr = ..., row = ..., col = ... } or nil.
function M.suggestion()
  if not shown then
    return nil
  end
  return { text = shown.text, bufnr = shown.bufnr, row = shown.row, col = shown.col, index = shown.index,
           count = #shown.texts }
end

--- Ask for an inline suggestion at the cursor (textDocument/inlineCompletion) and show the first item
--- as virtual text. `opts.on_done(text or nil)` is called when the answer is in. `opts.automatic`: asked for
--- by typing (triggerKind Automatic, one suggestion; silent when there is nothing to say, and shown only in
--- insert mode). A newer request cancels this one; an answer for an older text or cursor is never shown.
function M.complete(opts)
  opts = opts or {}
  local automatic = opts.automatic
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  local function finish(text)
    if opts.on_done then
      opts.on_done(text)
    end
  end
  if not client then
    if not automatic and not server_missing() then
      notify('no codegen-lsp client is attached to this buffer', vim.log.levels.WARN)
    end
    return finish(nil)
  end
  if M.status(bufnr) then
    if not automatic then
      vim.notify(M.status(bufnr), vim.log.levels.INFO)  -- the server would answer nothing: say why instead
    end
    return finish(nil)
  end
  cancel_pending()
  M.dismiss()
  local encoding = client.offset_encoding or 'utf-16'
  local row, col = unpack(api.nvim_win_get_cursor(0))
  row = row - 1
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = util.make_text_document_params(bufnr),
    position = { line = row, character = to_lsp_col(line_text(bufnr, row), col, encoding) },
    context = { triggerKind = automatic and 2 or 1 },  -- Automatic, Invoked
  }
  seq = seq + 1
  local this = seq
  local ok, id = call(client, 'request', 'textDocument/inlineCompletion', params, function(err, result)
    if pending and pending.seq == this then
      pending = nil
    end
    if this ~= seq then
      return finish(nil)  -- a newer request superseded this one
    end
    if err then
      if err.code ~= -32800 and not automatic then  -- -32800: RequestCancelled
        notify('inline completion: ' .. tostring(err.message), vim.log.levels.WARN)
      end
      return finish(nil)
    end
    local items = result and (result.items or result) or {}
    local item = items[1]
    local cur_row, cur_col = unpack(api.nvim_win_get_cursor(0))
    if not item or api.nvim_get_current_buf() ~= bufnr or api.nvim_buf_get_changedtick(bufnr) ~= tick
        or cur_row - 1 ~= row or cur_col ~= col
        or (automatic and api.nvim_get_mode().mode:sub(1, 1) ~= 'i') then
      return finish(nil)  -- nothing, or the buffer/cursor/mode moved on meanwhile
    end
    local texts = {}
    for _, it in ipairs(items) do
      local t = it.insertText
      if type(t) == 'table' then
        t = t.value  -- a StringValue snippet: shown and inserted as plain text
      end
      if type(t) == 'string' and t ~= '' then
        table.insert(texts, t)
      end
    end
    if #texts == 0 then
      return finish(nil)
    end
    shown = { bufnr = bufnr, texts = texts, index = 1, range = item.range, encoding = encoding, row = row, col = col,
              tick = tick }
    render()
    finish(texts[1])
  end, bufnr)
  if ok then
    pending = { client_id = client.id, id = id, seq = this }
  end
end

--- Show the next (`step` 1) or previous (-1) of the suggestions the last request returned, cycling.
--- Returns the text now shown, or nil when nothing is shown.
function M.cycle(step)
  if use_native() and not shown then
    pcall(vim.lsp.inline_completion.select, { count = step or 1 })
    return nil
  end
  if not shown or shown.bufnr ~= api.nvim_get_current_buf() then
    return nil
  end
  shown.index = (shown.index - 1 + (step or 1)) % #shown.texts + 1
  render()
  return shown.text
end

-- The next word of `text`: leading blanks, then a run of word characters (UTF-8 letters count) or of other
-- non-blank characters; a line break counts as a word together with the next line's indentation.
function M.next_word(text)
  local blanks = text:match('^[ \t]*')
  local rest = text:sub(#blanks + 1)
  if rest:sub(1, 1) == '\n' then
    return blanks .. rest:match('^\n[ \t]*')
  end
  return blanks .. (rest:match('^[%w_\128-\255]+') or rest:match('^[^%w_\128-\255%s]+') or rest:sub(1, 1))
end

-- The rest of the current line of `text`; when `text` starts with a line break, that break and the next line.
function M.next_line(text)
  return text:match('^[ \t]*\n[^\n]*') or text:match('^[^\n]*')
end

-- Insert `part` (the start of the suggestion shown) over the item's range, or at the cursor; cursor after it.
-- Returns the row and column after it.
local function insert_part(s, part)
  local srow, scol, erow, ecol = s.row, s.col, s.row, s.col
  if s.range then
    srow, erow = s.range.start.line, s.range['end'].line
    scol = to_byte_col(line_text(s.bufnr, srow), s.range.start.character, s.encoding)
    ecol = to_byte_col(line_text(s.bufnr, erow), s.range['end'].character, s.encoding)
  end
  local lines = vim.split(part, '\n', { plain = true })
  api.nvim_buf_set_text(s.bufnr, srow, scol, erow, ecol, lines)
  local last_row = srow + #lines - 1
  local last_col = (#lines == 1 and scol or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return last_row, last_col
end

--- Insert the suggestion shown (over the item's range when it has one) and put the cursor after it.
function M.accept()
  if use_native() and not shown then
    return vim.lsp.inline_completion.get()
  end
  if not shown or shown.bufnr ~= api.nvim_get_current_buf() then
    return false
  end
  local s = shown
  M.dismiss()
  insert_part(s, s.text)
  return true
end

-- 0.12+ native: insert `pick(text)` of its current item (untested here: no 0.12 build).
local function native_accept_part(pick)
  return vim.lsp.inline_completion.get({ on_accept = function(item)
    local text = type(item.insert_text) == 'string' and item.insert_text or (item.insert_text or {}).value or ''
    local part = pick(text)
    local r = item.range
    local row, col
    if r then
      row, col = r.start.row, r.start.col
      api.nvim_buf_set_text(0, row, col, r.end_.row, r.end_.col, {})
    else
      row, col = unpack(api.nvim_win_get_cursor(0))
      row = row - 1
    end
    insert_part({ bufnr = api.nvim_get_current_buf(), row = row, col = col }, part)
  end })
end

local function accept_part(pick)
  if use_native() and not shown then
    return native_accept_part(pick)
  end
  if not shown or shown.bufnr ~= api.nvim_get_current_buf() then
    return false
  end
  local s = shown
  local part = pick(s.text)
  if part == '' or part == s.text then
    return M.accept()
  end
  M.dismiss()
  local row, col = insert_part(s, part)
  local rest = s.text:sub(#part + 1)
  -- The rest stays shown at the cursor; this change (its changedtick) does not count as typing.
  shown = { bufnr = s.bufnr, texts = { rest }, index = 1, encoding = s.encoding, row = row, col = col,
            tick = api.nvim_buf_get_changedtick(s.bufnr) }
  render()
  return true
end

--- Insert the next word of the suggestion shown (M.next_word: leading blanks and one word); the rest stays.
function M.accept_word()
  return accept_part(M.next_word)
end

--- Insert the rest of the current line of the suggestion shown (M.next_line); the rest stays.
function M.accept_line()
  return accept_part(M.next_line)
end

return M
