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

/** The server applies the edit itself; the client only shows its `message`, if any. */
export function synthesisMessage(result: unknown): string | undefined {
  if (typeof result === 'object' && result !== null) {
    const message = (result as { message?: unknown }).message;
    if (typeof message === 'string' && message.length > 0) {
      return message;
    }
  }
  return undefined;
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
