// What the status bar item shows for each client/server state. Pure: extension.ts applies it.

import { offText } from './exclusion';
import { statsLines, type SuggestionStats } from './stats';
import { formatClock, formatRemaining, type SuggestionState } from './suggestions';

export type ClientStatus =
  | { kind: 'starting' }
  | { kind: 'loading'; model: string | null; builtin?: boolean }
  | { kind: 'ready'; model: string | null; builtin?: boolean; origin?: string }
  | { kind: 'generating'; model: string | null; builtin?: boolean }
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
  /** The server runs its built-in demo model (no codegenLsp.model); absent from older servers. */
  builtin?: boolean;
  /** Where the model came from, in words (the setting, a registry source, built-in); absent from older servers. */
  origin?: string | null;
}

export const STATUS_NOTIFICATION = 'codegenLsp/status';

const NAME = 'codegen-lsp';
export const BUILTIN_LABEL = 'built-in demo model';

function modelName(model: string | null, builtin?: boolean): string {
  if (builtin) {
    return BUILTIN_LABEL;
  }
  return model && model.length > 0 ? model : 'default model';
}

/** The ready tooltip: where the model came from; the demo model says what it is and how to switch. */
function readyTooltip(model: string | null, builtin?: boolean, origin?: string): string {
  if (!builtin) {
    return `${NAME}: ${modelName(model)} ready` + (origin ? `\nfrom ${origin}` : '');
  }
  const file = model ? ` (${model})` : '';
  return `${NAME}: ${BUILTIN_LABEL}${file} ready. It is tiny, for trying things out: run "codegen-lsp: Pick model" ` +
    'or set codegenLsp.model for real suggestions.';
}

/** What the item shows besides the server's state: the user's switches and the last suggestion's stats. */
export interface StatusExtras {
  /** The exclusion rule that keeps the active document from the server (exclusion.ts). */
  offReason?: string;
  /** Whether suggestions are on for the active document (suggestions.ts); absent: on. */
  suggestions?: SuggestionState;
  /** The last suggestion asked for (stats.ts); absent before the first one, and from servers that never send them. */
  lastStats?: SuggestionStats;
}

const TOGGLE_HINT = 'Run "codegen-lsp: Toggle suggestions" to turn them on.';

/** The item for the user's switches when they keep suggestions off; undefined when suggestions are on. */
function suggestionsView(state: SuggestionState | undefined): StatusView | undefined {
  switch (state?.kind) {
    case undefined:
    case 'on':
      return undefined;
    case 'snoozed': {
      const left = formatRemaining(state.remainingMs);
      return view(`$(clock) ${NAME}: snoozed ${left}`,
        `${NAME}: suggestions snoozed until ${formatClock(state.until)} (${left} left); they come back by themselves. ` +
        TOGGLE_HINT.replace('turn them on', 'resume now'),
        `${NAME} snoozed, ${left} left`);
    }
    case 'off':
      return view(`$(circle-slash) ${NAME}: off`,
        `${NAME}: suggestions are off (codegenLsp.client.enable "*" is false). ${TOGGLE_HINT}`,
        `${NAME} off`);
    case 'offForLanguage':
      return view(`$(circle-slash) ${NAME}: off for ${state.languageId}`,
        `${NAME}: suggestions are off for ${state.languageId} (codegenLsp.client.enable "${state.languageId}" is false). ` +
        `Run "codegen-lsp: Toggle suggestions for this language" to turn them on.`,
        `${NAME} off for ${state.languageId}`);
  }
}

/**
 * The item for `status`. While the server runs normally (loading, ready, generating), the user's switches
 * (off, off for this language, snoozed) show first, then an excluded active document ("codegen-lsp: off for
 * this file (matches .env)"); starting, stopped and error states win over both. The last suggestion's
 * stats are added to every tooltip but an error's.
 */
export function statusView(status: ClientStatus, extras: StatusExtras = {}): StatusView {
  const base = baseView(status, extras);
  if (extras.lastStats && status.kind !== 'error') {
    return { ...base, tooltip: `${base.tooltip}\n\n${statsLines(extras.lastStats).join('\n')}` };
  }
  return base;
}

function baseView(status: ClientStatus, { offReason, suggestions }: StatusExtras): StatusView {
  const serving = status.kind === 'ready' || status.kind === 'generating' || status.kind === 'loading';
  const switched = serving ? suggestionsView(suggestions) : undefined;
  if (switched) {
    return switched;
  }
  if (offReason !== undefined && serving) {
    const text = offText(offReason);
    return view(`$(circle-slash) ${text}`,
      `${text}: nothing of it reaches the model. Set by codegenLsp.exclude, codegenLsp.respectGitignore or ` +
      'codegenLsp.disabledLanguages.', text);
  }
  switch (status.kind) {
    case 'starting':
      return view(`$(sync~spin) ${NAME}`, `${NAME}: starting the server`, `${NAME} starting`);
    case 'loading':
      return view(`$(sync~spin) ${NAME}: loading`, `${NAME}: loading ${modelName(status.model, status.builtin)}`,
        `${NAME} loading ${modelName(status.model, status.builtin)}`);
    case 'ready':
      return view(`$(check) ${NAME}: ${modelName(status.model, status.builtin)}`,
        readyTooltip(status.model, status.builtin, status.origin),
        `${NAME} ready ${modelName(status.model, status.builtin)}`);
    case 'generating':
      return view(`$(loading~spin) ${NAME}: ${modelName(status.model, status.builtin)}`,
        `${NAME}: generating with ${modelName(status.model, status.builtin)}`,
        `${NAME} generating ${modelName(status.model, status.builtin)}`);
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
    case 'ready':
      if (typeof p.origin === 'string' && p.origin.length > 0 && p.builtin !== true) {
        return { kind: p.state, model, origin: p.origin };
      }
      return p.builtin === true ? { kind: p.state, model, builtin: true } : { kind: p.state, model };
    case 'loading':
    case 'generating':
      return p.builtin === true ? { kind: p.state, model, builtin: true } : { kind: p.state, model };
    case 'none':
      return { kind: 'error', reason: detail || 'no model loaded' };
    case 'error':
      return { kind: 'error', reason: detail || 'the server reported an error' };
    default:
      return { kind: 'error', reason: `unknown server state ${JSON.stringify(p.state)}` };
  }
}
