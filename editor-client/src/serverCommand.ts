// How the server is launched, and how a failed launch is described to the user. Pure.

export interface ServerCommand {
  command: string;
  args: string[];
}

export const DEFAULT_PYTHON = 'python3';
// The server's info lines already reach the output channel as window/logMessage: stderr keeps warnings only.
export const MODULE_ARGS = ['-m', 'codegen_lsp', 'serve', '--log-level', 'warning'];

/**
 * `serverCommand` (non-empty) wins as is; otherwise an interpreter runs `-m codegen_lsp serve`:
 * `pythonPath`, else the Python extension's interpreter, else python3.
 */
export function resolveServerCommand(opts: {
  serverCommand: readonly string[];
  pythonPath: string;
  extensionPython?: string;
}): ServerCommand {
  if (opts.serverCommand.length > 0) {
    return { command: opts.serverCommand[0], args: opts.serverCommand.slice(1) };
  }
  const python = opts.pythonPath.trim() || opts.extensionPython || DEFAULT_PYTHON;
  return { command: python, args: [...MODULE_ARGS] };
}

/** A shell-like rendering for messages (quotes words with spaces or quotes). */
export function formatCommandLine(cmd: ServerCommand): string {
  return [cmd.command, ...cmd.args].map(quote).join(' ');
}

function quote(word: string): string {
  if (word !== '' && !/[\s"'\\$`]/.test(word)) {
    return word;
  }
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Turns a spawn error (ENOENT, EACCES, ...) into a short reason. */
export function describeSpawnError(err: unknown, command: string): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (code === 'ENOENT') {
    return `executable "${command}" not found`;
  }
  if (code === 'EACCES') {
    return `permission denied running "${command}"`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Reason for a server that exited before it answered `initialize`. */
export function describeEarlyExit(code: number | null, signal: string | null, stderrTail: string): string {
  const how = code !== null ? `the server exited with code ${code}` : `the server was killed by ${signal ?? 'a signal'}`;
  const last = lastLine(stderrTail);
  return last ? `${how}: ${last}` : how;
}

/** The last non-blank line of stderr (the exception message of a Python traceback). */
export function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length > 0 ? lines[lines.length - 1] : '';
}

/** Keeps the end of a growing stderr buffer bounded. */
export function appendTail(tail: string, chunk: string, limit = 4096): string {
  const joined = tail + chunk;
  return joined.length > limit ? joined.slice(joined.length - limit) : joined;
}

/**
 * The interpreter selected in the Python extension (ms-python.python), from its exports.
 * Every step is guarded: an old or odd API yields undefined and we fall back silently.
 */
export async function pythonFromExtensionApi(exports: unknown): Promise<string | undefined> {
  try {
    const environments = (exports as { environments?: unknown } | undefined)?.environments as
      | {
          getActiveEnvironmentPath?: (resource?: unknown) => unknown;
          resolveEnvironment?: (env: unknown) => Promise<unknown> | unknown;
        }
      | undefined;
    if (!environments || typeof environments.getActiveEnvironmentPath !== 'function'
      || typeof environments.resolveEnvironment !== 'function') {
      return undefined;
    }
    const active = environments.getActiveEnvironmentPath();
    if (!active) {
      return undefined;
    }
    const resolved = (await environments.resolveEnvironment(active)) as
      | { executable?: { uri?: { fsPath?: unknown } } }
      | undefined;
    const fsPath = resolved?.executable?.uri?.fsPath;
    return typeof fsPath === 'string' && fsPath.length > 0 ? fsPath : undefined;
  } catch {
    return undefined;
  }
}
