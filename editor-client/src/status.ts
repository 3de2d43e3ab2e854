// What the status bar item shows for each client/server state. Pure: extension.ts applies it.

export type ClientStatus =
  | { kind: 'starting' }
  | { kind: 'loading'; model: string | null }
  | { kind: 'ready'; model: string | null }
  | { kind: 'generating'; model: string | null }
  | { kind: 'error'; reason: string }
  | { kind: 'stopped' };

export interface StatusView {
  text: string;
  tooltip: string;
  accessibilityLabel: string;
  /** Whether the item gets the error background. */
  error: boolean;
}

/** Params of the server's `codegenLsp/status` notification. */
export interface ServerStatusParams {
  state: 'none' | 'loading' | 'ready' | 'generating' | 'error';
  model: string | null;
  detail: string;
}

export const STATUS_NOTIFICATION = 'codegenLsp/status';

const NAME = 'codegen-lsp';

function modelName(model: string | null): string {
  return model && model.length > 0 ? model : 'default model';
}

export function statusView(status: ClientStatus): StatusView {
  switch (status.kind) {
    case 'starting':
      return view(`$(sync~spin) ${NAME}`, `${NAME}: starting the server`, `${NAME} starting`);
    case 'loading':
      return view(`$(sync~spin) ${NAME}: loading`, `${NAME}: loading ${modelName(status.model)}`,
        `${NAME} loading ${modelName(status.model)}`);
    case 'ready':
      return view(`$(check) ${NAME}: ${modelName(status.model)}`, `${NAME}: ${modelName(status.model)} ready`,
        `${NAME} ready ${modelName(status.model)}`);
    case 'generating':
      return view(`$(loading~spin) ${NAME}: ${modelName(status.model)}`,
        `${NAME}: generating with ${modelName(status.model)}`, `${NAME} generating ${modelName(status.model)}`);
    case 'error':
      return { text: `$(error) ${NAME}`, tooltip: status.reason, accessibilityLabel: `${NAME} error: ${status.reason}`, error: true };
    case 'stopped':
      return view(`$(circle-slash) ${NAME}`, `${NAME}: the server is stopped`, `${NAME} stopped`);
  }
}

function view(text: string, tooltip: string, accessibilityLabel: string): StatusView {
  return { text, tooltip, accessibilityLabel, error: false };
}

/** Maps the server's notification to a client status; anything malformed is reported as an error. */
export function fromServerStatus(params: unknown): ClientStatus {
  if (typeof params !== 'object' || params === null) {
    return { kind: 'error', reason: 'malformed codegenLsp/status notification' };
  }
  const p = params as Partial<Record<keyof ServerStatusParams, unknown>>;
  const model = typeof p.model === 'string' ? p.model : null;
  const detail = typeof p.detail === 'string' ? p.detail : '';
  switch (p.state) {
    case 'loading':
    case 'ready':
    case 'generating':
      return { kind: p.state, model };
    case 'none':
      return { kind: 'error', reason: detail || 'no model loaded' };
    case 'error':
      return { kind: 'error', reason: detail || 'the server reported an error' };
    default:
      return { kind: 'error', reason: `unknown server state ${JSON.stringify(p.state)}` };
  }
}
