/**
 * Files the server will not complete (its `exclude`, `respectGitignore` and `disabledLanguages` settings):
 * it sends `codegenLsp/exclusion` {uri, reason} when such a document is opened, and again whenever that
 * changes (`reason` null: served again). The status bar then reads "codegen-lsp: off for this file
 * (matches .env)" while that document is the active one. Pure: extension.ts feeds it the notifications,
 * the closed documents and the active editor's URI (as code2Protocol writes it, as the server got it).
 */

export const EXCLUSION_NOTIFICATION = 'codegenLsp/exclusion';

export interface ExclusionNotice {
  uri: string;
  /** The rule that matched ("matches .env", "ignored by git: build/ in .gitignore:1", ...); null: served again. */
  reason: string | null;
}

/** The notice in `params`, or undefined when it is malformed. */
export function exclusionNotice(params: unknown): ExclusionNotice | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const p = params as { uri?: unknown; reason?: unknown };
  if (typeof p.uri !== 'string' || !(typeof p.reason === 'string' || p.reason === null)) {
    return undefined;
  }
  return { uri: p.uri, reason: p.reason };
}

/** What the server said about each open document it will not complete. */
export class Exclusions {
  private readonly reasons = new Map<string, string>();

  /** Applies a notification; whether it was one (malformed ones are ignored). */
  update(params: unknown): boolean {
    const notice = exclusionNotice(params);
    if (!notice) {
      return false;
    }
    if (notice.reason === null) {
      this.reasons.delete(notice.uri);
    } else {
      this.reasons.set(notice.uri, notice.reason);
    }
    return true;
  }

  /** The document was closed: the server tells again if it is opened again. */
  closed(uri: string): void {
    this.reasons.delete(uri);
  }

  /** A new server: it tells about the documents as they are opened to it. */
  clear(): void {
    this.reasons.clear();
  }

  reasonFor(uri: string | undefined): string | undefined {
    return uri === undefined ? undefined : this.reasons.get(uri);
  }
}

/** The words the status shows for an excluded document. */
export function offText(reason: string): string {
  return `codegen-lsp: off for this file (${reason})`;
}
