-- codegen-lsp for Neovim 0.7 and later: one module, no plugin dependencies.
--
--   vim.opt.runtimepath:append('/path/to/codegen-lsp/editor-client/neovim')  -- or copy this file to ~/.config/nvim/lua/
--   require('codegen_lsp').setup({
--     cmd = { '/path/to/codegen-lsp/.venv/bin/codegen-lsp', 'serve' },
--     settings = { model = '/path/to/model.gguf' },   -- the "codegenLsp" section (`codegen-lsp settings-schema`)
--   })
--
-- On 0.7-0.9 it starts the server with vim.lsp.start_client from a FileType autocmd and attaches buffers
-- with vim.lsp.buf_attach_client (vim.lsp.start exists from 0.8, but the same code path serves 0.7-0.9);
-- on 0.10+ it calls vim.lsp.start. The buffer that becomes current is named to the server (codegenLsp/focus,
-- M.focus) so it warms up the first suggestion there. A buffer the server will not complete (its `exclude`,
-- `respectGitignore`, `disabledLanguages` settings) is said once and kept in b:codegen_lsp_off, which
-- M.status() returns for a statusline: "codegen-lsp: off for this file (matches .env)". Tested on 0.7.2
-- (tests/e2e/test_neovim.py). See docs/editors.md.

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

local defaults = {
  name = 'codegen-lsp',
  cmd = { 'codegen-lsp', 'serve' },
  -- Neovim filetypes whose languageId the server has a grammar for: generated from the server's
  -- language table into codegen_lsp/languages.lua (`npm run sync-languages` in editor-client/).
  filetypes = vim.deepcopy(require('codegen_lsp.languages').filetypes),
  -- The first directory upwards holding one of these is the workspace root (else the file's directory).
  root_markers = { 'codegen-lsp.toml', '.git', 'pyproject.toml', 'setup.py', 'package.json', 'go.mod',
                   'Cargo.toml', 'pom.xml', 'build.gradle', 'CMakeLists.txt', 'Makefile' },
  settings = {},    -- the "codegenLsp" section: { model = '/path/to/model.gguf', maxTokens = 64, ... }
  keymaps = {       -- buffer-local, set when the server attaches; `keymaps = false` sets none
    synthesize = '<leader>cs',  -- normal: whole buffer; visual: the selected lines
    complete = '<M-\\>',        -- insert: ask for an inline suggestion at the cursor (shown as virtual text)
    accept = '<M-l>',           -- insert: insert the suggestion shown
    dismiss = '<M-h>',          -- insert: hide it (it also goes when the cursor moves or insert mode ends)
    next = '<M-]>',             -- insert: show the next suggestion (an explicit request gets several)
    prev = '<M-[>',             -- insert: show the previous one
  },
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
local shown = nil   -- the suggestions on screen: { bufnr, extmark, texts, index, text (texts[index]), range, encoding, row, col }

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
  map('i', keys.complete, M.complete, 'codegen-lsp: inline suggestion')
  map('i', keys.accept, M.accept, 'codegen-lsp: accept the suggestion')
  map('i', keys.dismiss, M.dismiss, 'codegen-lsp: dismiss the suggestion')
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
    on_attach = function(c, bufnr)
      map_keys(bufnr)
      if bufnr == api.nvim_get_current_buf() then
        M.schedule_focus()  -- didOpen went out just before: warm up where the cursor is
      end
      if config.on_attach then
        config.on_attach(c, bufnr)
      end
    end,
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

local function attach(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  local fname = api.nvim_buf_get_name(bufnr)
  if fname == '' then
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
  local group = api.nvim_create_augroup('codegen_lsp', { clear = true })
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = config.filetypes,
    callback = function(args) attach(args.buf) end,
  })
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
      M.dismiss()
    end,
  })
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(config.filetypes, vim.bo[bufnr].filetype) then
      attach(bufnr)
    end
  end
end

--- The codegen-lsp client attached to `bufnr` (default: current), or nil.
function M.client(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local attached = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr }) or vim.lsp.buf_get_clients(bufnr)
  for _, client in pairs(attached) do
    if client.name == config.name then
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
--- as virtual text. `opts.on_done(text or nil)` is called when the answer is in.
function M.complete(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  local function finish(text)
    if opts.on_done then
      opts.on_done(text)
    end
  end
  if not client then
    notify('no codegen-lsp client is attached to this buffer', vim.log.levels.WARN)
    return finish(nil)
  end
  if M.status(bufnr) then
    vim.notify(M.status(bufnr), vim.log.levels.INFO)  -- the server would answer nothing: say why instead
    return finish(nil)
  end
  M.dismiss()
  local encoding = client.offset_encoding or 'utf-16'
  local row, col = unpack(api.nvim_win_get_cursor(0))
  row = row - 1
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = util.make_text_document_params(bufnr),
    position = { line = row, character = to_lsp_col(line_text(bufnr, row), col, encoding) },
    context = { triggerKind = 1 },  -- Invoked
  }
  call(client, 'request', 'textDocument/inlineCompletion', params, function(err, result)
    if err then
      notify('inline completion: ' .. tostring(err.message), vim.log.levels.WARN)
      return finish(nil)
    end
    local items = result and (result.items or result) or {}
    local item = items[1]
    local cur_row, cur_col = unpack(api.nvim_win_get_cursor(0))
    if not item or api.nvim_get_current_buf() ~= bufnr or api.nvim_buf_get_changedtick(bufnr) ~= tick
        or cur_row - 1 ~= row or cur_col ~= col then
      return finish(nil)  -- nothing, or the buffer/cursor moved on meanwhile
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
    shown = { bufnr = bufnr, texts = texts, index = 1, range = item.range, encoding = encoding, row = row, col = col }
    render()
    finish(texts[1])
  end, bufnr)
end

--- Show the next (`step` 1) or previous (-1) of the suggestions the last request returned, cycling.
--- Returns the text now shown, or nil when nothing is shown.
function M.cycle(step)
  if not shown or shown.bufnr ~= api.nvim_get_current_buf() then
    return nil
  end
  shown.index = (shown.index - 1 + (step or 1)) % #shown.texts + 1
  render()
  return shown.text
end

--- Insert the suggestion shown (over the item's range when it has one) and put the cursor after it.
function M.accept()
  if not shown or shown.bufnr ~= api.nvim_get_current_buf() then
    return false
  end
  local s = shown
  M.dismiss()
  local srow, scol, erow, ecol = s.row, s.col, s.row, s.col
  if s.range then
    srow, erow = s.range.start.line, s.range['end'].line
    scol = to_byte_col(line_text(s.bufnr, srow), s.range.start.character, s.encoding)
    ecol = to_byte_col(line_text(s.bufnr, erow), s.range['end'].character, s.encoding)
  end
  local lines = vim.split(s.text, '\n', { plain = true })
  api.nvim_buf_set_text(s.bufnr, srow, scol, erow, ecol, lines)
  local last_row = srow + #lines - 1
  local last_col = (#lines == 1 and scol or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return true
end

return M
