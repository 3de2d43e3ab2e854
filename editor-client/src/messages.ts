// User-facing texts. The e2e tests and the docs rely on them verbatim.

/** The root README's install section (its "## Install" heading; test/messages.test.ts checks it exists). */
export const INSTALL_URL = 'https://github.com/codegen-lsp/codegen-lsp#install';
export const HOW_TO_INSTALL = 'How to install';
export const SHOW_LOGS = 'Show logs';

/**
 * Written to the log when the server cannot be started. codegen-lsp is not on PyPI: it is installed from a
 * checkout, or from the wheel `make dist` builds there.
 */
export const INSTALL_HINT = [
  'The server is not on PyPI; install it from a checkout of the repository (https://github.com/codegen-lsp/codegen-lsp):',
  '- `make install` in the checkout (creates .venv), then set codegenLsp.client.serverCommand to ' +
    '["<checkout>/.venv/bin/codegen-lsp", "serve"];',
  '- or `make dist` there and `pip install dist/codegen_lsp-*.whl` into a Python 3.11+ (build llama-cpp-python ' +
    'first as the README says), then set codegenLsp.client.pythonPath to that interpreter.',
  `See ${INSTALL_URL} and, for the wheel, https://github.com/codegen-lsp/codegen-lsp#installing-with-plain-pip`,
];

/** Appended to the start failure when the server is not installed where the extension looked. */
export const NOT_INSTALLED_ADVICE = 'Install it from a checkout: `make install`, then point codegenLsp.client.serverCommand ' +
  'at .venv/bin/codegen-lsp; or `pip install dist/codegen_lsp-*.whl` (the wheel `make dist` builds). It is not on PyPI.';

/** Whether a start failure means "not installed": no such program, or a Python without the codegen_lsp module. */
export function looksNotInstalled(reason: string): boolean {
  return /^executable ".*" not found$/.test(reason) || /No module named '?codegen_lsp'?/.test(reason);
}

export function startFailedMessage(commandLine: string, reason: string): string {
  const message = `codegen-lsp: cannot start the server (${commandLine}): ${reason}`;
  return looksNotInstalled(reason) ? `${message}. ${NOT_INSTALLED_ADVICE}` : message;
}

export function restartingMessage(attempt: number, max: number): string {
  return `codegen-lsp: the server stopped unexpectedly; restarting (${attempt}/${max})`;
}

export function gaveUpMessage(crashes: number): string {
  return `codegen-lsp: the server crashed ${crashes} times in 3 minutes; not restarting. `
    + 'Fix the cause (see Show logs) and run "codegen-lsp: Restart server".';
}
