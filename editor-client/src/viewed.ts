/**
 * What the editor shows goes into the server's context from other files: after the visible range of
 * an editor settles, `codegenLsp/didView` {uri, line} names the line in the middle of it. Pure: the
 * extension wires it to `onDidChangeTextEditorVisibleRanges` and the language client.
 */

export const DID_VIEW_NOTIFICATION = 'codegenLsp/didView';
export const VIEW_SETTLE_MS = 750; // a scroll that stops for this long counts as viewing

export interface LineRange {
  start: number;
  end: number;
}

export interface DidViewParams {
  uri: string;
  line: number;
}

/** The notification for an editor showing `ranges` of `uri` (0-based lines), or undefined if none. */
export function didViewParams(uri: string, languageId: string, ranges: readonly LineRange[],
  languages: readonly string[]): DidViewParams | undefined {
  const first = ranges[0];
  if (!first || !languages.includes(languageId) || !uri.startsWith('file:')) {
    return undefined;
  }
  return { uri, line: Math.max(0, Math.floor((first.start + first.end) / 2)) };
}

/** Calls `send` with the last value given, once `delayMs` passed without a newer one (per key). */
export class Settler<T> {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly delayMs: number, private readonly send: (value: T) => void) {}

  offer(key: string, value: T): void {
    const pending = this.timers.get(key);
    if (pending !== undefined) {
      clearTimeout(pending);
    }
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      this.send(value);
    }, this.delayMs));
  }

  dispose(): void {
    for (const timer of this.timers.values()) {
      clearTimeout(timer);
    }
    this.timers.clear();
  }
}
