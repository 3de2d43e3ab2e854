// User-facing texts. The e2e tests and the docs rely on them verbatim.

export const INSTALL_URL = 'https://github.com/codegen-lsp/codegen-lsp#install';
export const HOW_TO_INSTALL = 'How to install';
export const SHOW_LOGS = 'Show logs';

export const INSTALL_HINT = [
  'To install the server: `pip install codegen-lsp` (then set codegenLsp.client.pythonPath to that interpreter),',
  'or from a checkout of the repository: `make run` (creates .venv; point codegenLsp.client.pythonPath at .venv/bin/python).',
  `See ${INSTALL_URL}`,
];

export function startFailedMessage(commandLine: string, reason: string): string {
  return `codegen-lsp: cannot start the server (${commandLine}): ${reason}`;
}

export function restartingMessage(attempt: number, max: number): string {
  return `codegen-lsp: the server stopped unexpectedly; restarting (${attempt}/${max})`;
}

export function gaveUpMessage(crashes: number): string {
  return `codegen-lsp: the server crashed ${crashes} times in 3 minutes; not restarting. `
    + 'Fix the cause (see Show logs) and run "codegen-lsp: Restart server".';
}
