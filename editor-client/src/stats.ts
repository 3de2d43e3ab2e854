// The server's `codegenLsp/stats` notification (server/codegen_lsp/events.py, SuggestionStats): one per
// suggestion it computed, asked for ("request") or ahead of one ("speculative", "warm"). The status bar
// tooltip shows the last one asked for: its latency, tokens and where it came from. Pure.
//
// A server too old to send it: nothing arrives, the tooltip has no "Last suggestion" lines.

export const STATS_NOTIFICATION = 'codegenLsp/stats';

/** The fields the tooltip uses (camelCase, as the server writes them). */
export interface SuggestionStats {
  uri: string;
  kind: string;
  /** "model", "typed-through cache", "recent-context cache" or "none". */
  source: string;
  /** "ok", or why there is no suggestion. */
  reason: string;
  promptTokens: number;
  evaluatedPromptTokens: number;
  generatedTokens: number;
  promptMs: number;
  generateMs: number;
  /** "full" or "short" prompt window; "" without a model call. */
  window: string;
}

/** The server's reasons for a request that never became the suggestion shown (another one did). */
const REPLACED = new Set(['superseded by a newer request', 'request cancelled']);

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** The stats in `params`; undefined when malformed. */
export function parseStats(params: unknown): SuggestionStats | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const p = params as Record<string, unknown>;
  if (typeof p.kind !== 'string' || typeof p.source !== 'string' || typeof p.reason !== 'string') {
    return undefined;
  }
  return {
    uri: typeof p.uri === 'string' ? p.uri : '',
    kind: p.kind,
    source: p.source,
    reason: p.reason,
    promptTokens: num(p.promptTokens),
    evaluatedPromptTokens: num(p.evaluatedPromptTokens),
    generatedTokens: num(p.generatedTokens),
    promptMs: num(p.promptMs),
    generateMs: num(p.generateMs),
    window: typeof p.window === 'string' ? p.window : '',
  };
}

/**
 * Whether these stats describe the suggestion the user was last given (or refused): a request's, not one
 * computed ahead, and not one a newer keystroke replaced before it was shown.
 */
export function isShownSuggestion(stats: SuggestionStats): boolean {
  return stats.kind === 'request' && !REPLACED.has(stats.reason);
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The tooltip's lines for one suggestion's stats. */
export function statsLines(stats: SuggestionStats): string[] {
  const lines: string[] = [];
  if (stats.source === 'model') {
    lines.push(`Last suggestion: ${ms(stats.promptMs + stats.generateMs)} in the model ` +
      `(prompt ${ms(stats.promptMs)}, generation ${ms(stats.generateMs)})`);
    const reused = stats.promptTokens - stats.evaluatedPromptTokens;
    lines.push(`Tokens: ${plural(stats.promptTokens, 'prompt token')} (${stats.evaluatedPromptTokens} evaluated` +
      (reused > 0 ? `, ${reused} reused from the cache` : '') + `), ${stats.generatedTokens} generated`);
    lines.push(`Source: the model${stats.window ? ` (${stats.window} window)` : ''}`);
  } else if (stats.source === 'none') {
    lines.push('Last suggestion: no model call');
  } else {
    lines.push(`Last suggestion: from the ${stats.source}, no model call`);
    lines.push(`Source: ${stats.source}`);
  }
  if (stats.reason !== 'ok') {
    lines.push(`No suggestion: ${stats.reason}`);
  }
  return lines;
}
