// Client-only settings (codegenLsp.client.*; the server ignores the "client" key) and the rules
// that depend on them. Pure: `get` is a stand-in for WorkspaceConfiguration.get.

export const SECTION = 'codegenLsp';

export interface ClientSettings {
  serverCommand: string[];
  pythonPath: string;
  completionFallback: boolean;
  maxRestarts: number;
}

export const CLIENT_DEFAULTS: ClientSettings = {
  serverCommand: [],
  pythonPath: '',
  completionFallback: false,
  maxRestarts: 3,
};

/** Settings that change how the server is launched: the only ones that restart the client. */
export const RESTART_KEYS = [`${SECTION}.client.serverCommand`, `${SECTION}.client.pythonPath`];

/** Reads and sanitizes the client settings; a wrong type falls back to the default. */
export function readClientSettings(get: (key: string) => unknown): ClientSettings {
  const serverCommand = get('client.serverCommand');
  const pythonPath = get('client.pythonPath');
  const completionFallback = get('client.completionFallback');
  const maxRestarts = get('client.maxRestarts');
  return {
    serverCommand: Array.isArray(serverCommand) && serverCommand.every((s) => typeof s === 'string')
      ? serverCommand.filter((s: string) => s.length > 0)
      : CLIENT_DEFAULTS.serverCommand,
    pythonPath: typeof pythonPath === 'string' ? pythonPath : CLIENT_DEFAULTS.pythonPath,
    completionFallback: typeof completionFallback === 'boolean' ? completionFallback : CLIENT_DEFAULTS.completionFallback,
    maxRestarts: typeof maxRestarts === 'number' && Number.isFinite(maxRestarts) && maxRestarts >= 0
      ? Math.floor(maxRestarts)
      : CLIENT_DEFAULTS.maxRestarts,
  };
}

/** Whether a configuration change needs a client restart (`affects` = event.affectsConfiguration). */
export function needsRestart(affects: (key: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(key));
}

/** "" in the model picker means the embedded default model: reset the setting instead. */
export function modelSettingValue(value: string): string | undefined {
  return value === '' ? undefined : value;
}
