-- codegen-lsp for Neovim 0.11+ without setup(): with editor-client/neovim on the runtimepath,
--
--   vim.lsp.config('codegen_lsp', { settings = { codegenLsp = { model = '/path/to/model.gguf' } } })  -- optional
--   vim.lsp.enable('codegen_lsp')
--
-- starts `codegen-lsp serve` for the filetypes below (root: the first directory upwards holding one of
-- root_markers). Its on_attach is the module's (lua/codegen_lsp.lua): the insert-mode keys, suggestions as you
-- type and `:CodegenLsp toggle`; on 0.12+ the ghost text is Neovim's own vim.lsp.inline_completion. A
-- vim.lsp.config('codegen_lsp', { on_attach = ... }) of yours replaces it: call
-- require('codegen_lsp').on_attach(client, bufnr) from yours. Use this or require('codegen_lsp').setup(),
-- not both (setup() starts no second server while this one is enabled).
local codegen_lsp = require('codegen_lsp')

return {
  cmd = { 'codegen-lsp', 'serve' },
  filetypes = vim.deepcopy(require('codegen_lsp.languages').filetypes),
  root_markers = vim.deepcopy(codegen_lsp.ROOT_MARKERS),
  -- The "codegenLsp" section (`codegen-lsp settings-schema`); also sent as initializationOptions (before_init).
  settings = { codegenLsp = vim.empty_dict() },
  capabilities = { textDocument = { inlineCompletion = { dynamicRegistration = false } } },
  handlers = { [codegen_lsp.EXCLUSION_NOTIFICATION] = codegen_lsp.on_exclusion },
  before_init = function(params, config)
    local section = (config.settings or {}).codegenLsp
    params.initializationOptions = { codegenLsp = section or vim.empty_dict() }
  end,
  on_attach = function(client, bufnr)
    codegen_lsp.on_attach(client, bufnr)
  end,
}
