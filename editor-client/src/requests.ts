// Arguments and results of the server commands the client calls through workspace/executeCommand.
// These ids belong to the server; ours (codegenLsp.*) must differ, since languageclient registers
// the server's executeCommandProvider ids as VS Code commands.

export const SYNTHESIZE_COMMAND = 'codegen-lsp.synthesize';
export const LIST_MODELS_COMMAND = 'codegen-lsp.listModels';

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface SynthesizeArgs {
  uri: string;
  version: number;
  range?: LspRange;
}

/** The selection becomes the range only when it is non-empty. */
export function synthesizeArguments(uri: string, version: number, selection?: LspRange): [SynthesizeArgs] {
  const args: SynthesizeArgs = { uri, version };
  if (selection && !samePosition(selection.start, selection.end)) {
    args.range = {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    };
  }
  return [args];
}

function samePosition(a: LspPosition, b: LspPosition): boolean {
  return a.line === b.line && a.character === b.character;
}

/** A turn of the synthesize reply: status is inserted | kept | empty | parse-error | timeout | cancelled. */
export interface SynthesisTurnReport {
  title: string;
  status: string;
  detail: string;
  generatedTokens: number;
}

/**
 * The reply of `codegen-lsp.synthesize` (server/codegen_lsp/features/synthesize.py, `_report` and the
 * refusal in `synthesize_command`). test/fixtures/synthesize-reply.json holds replies captured from the
 * server (tests/e2e/test_synthesis_reply.py checks that they still have this shape).
 */
export interface SynthesisReply {
  applied: boolean;
  /** Why it ended early ("cancelled", "document changed") or why it did not run; null when it ran to the end. */
  stopped: string | null;
  /** Turns counted by status, e.g. "2 inserted, 1 empty"; "; stopped: …" when it ended early. */
  summary: string;
  turns: SynthesisTurnReport[];
}

function isSynthesisReply(result: unknown): result is SynthesisReply {
  if (typeof result !== 'object' || result === null) {
    return false;
  }
  const { applied, stopped, summary, turns } = result as Record<string, unknown>;
  return typeof applied === 'boolean' && (stopped === null || typeof stopped === 'string')
    && typeof summary === 'string' && Array.isArray(turns);
}

/**
 * The server applies the edit itself (workspace/applyEdit). When it applied one, the client says what
 * was done (the reply's summary). When it applied nothing, the server has already said why
 * (window/showMessage), so the client adds nothing; nor for a reply it does not recognize.
 */
export function synthesisMessage(result: unknown): string | undefined {
  if (!isSynthesisReply(result) || !result.applied || result.summary.length === 0) {
    return undefined;
  }
  return `codegen-lsp: Synthesize from comments: ${result.summary}`;
}

export interface ModelItem {
  label: string;
  description: string;
  /** What is written to codegenLsp.model ("" = the embedded default). */
  value: string;
}

/** The listModels answer as quick-pick items, the current model marked; malformed entries dropped. */
export function modelItems(result: unknown): ModelItem[] {
  if (typeof result !== 'object' || result === null) {
    return [];
  }
  const { current, models } = result as { current?: unknown; models?: unknown };
  if (!Array.isArray(models)) {
    return [];
  }
  const items: ModelItem[] = [];
  for (const m of models as unknown[]) {
    if (typeof m !== 'object' || m === null) {
      continue;
    }
    const { label, value, description } = m as { label?: unknown; value?: unknown; description?: unknown };
    if (typeof label !== 'string' || typeof value !== 'string') {
      continue;
    }
    const desc = typeof description === 'string' ? description : '';
    const isCurrent = typeof current === 'string' && current === value;
    items.push({ label, value, description: isCurrent ? (desc ? `current · ${desc}` : 'current') : desc });
  }
  return items;
}
