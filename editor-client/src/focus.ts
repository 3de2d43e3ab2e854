/**
 * The document the person works in goes to the server so it can warm up: when the active editor
 * changes to a document the client serves (and once when the client starts), `codegenLsp/focus`
 * {textDocument: {uri}, position} names it and its primary cursor. The server then evaluates, at low
 * priority, the prompt a suggestion at that cursor would need, so the first suggestion there is fast.
 * Pure: the extension wires it to `onDidChangeActiveTextEditor` (through a `Settler`, so flipping
 * through tabs sends only the last one) and converts the position with the client's code2Protocol
 * converter.
 */

export const FOCUS_NOTIFICATION = 'codegenLsp/focus';
export const FOCUS_SETTLE_MS = 150; // an editor active for this long counts as the one worked in

/** The URI schemes the client syncs (its documentSelector): others never reach the server. */
export const SERVED_SCHEMES: readonly string[] = ['file', 'untitled'];

export interface LspPosition {
  line: number;
  character: number;
}

export interface FocusParams {
  textDocument: { uri: string };
  position?: LspPosition;
}

/** Whether the client syncs a document of this scheme and language (the documentSelector's rule). */
export function servesDocument(scheme: string, languageId: string, languages: readonly string[]): boolean {
  return SERVED_SCHEMES.includes(scheme) && languages.includes(languageId);
}

/**
 * The notification for the active editor: `uri` as the client sends it (code2Protocol), `scheme` and
 * `languageId` of the document, `position` its primary cursor already converted (undefined: unknown,
 * left out). Undefined when there is no editor or the client does not serve its document.
 */
export function focusParams(editor: { uri: string; scheme: string; languageId: string; position?: LspPosition } | undefined,
  languages: readonly string[]): FocusParams | undefined {
  if (!editor || !servesDocument(editor.scheme, editor.languageId, languages)) {
    return undefined;
  }
  const params: FocusParams = { textDocument: { uri: editor.uri } };
  const p = editor.position;
  if (p && Number.isInteger(p.line) && Number.isInteger(p.character) && p.line >= 0 && p.character >= 0) {
    params.position = { line: p.line, character: p.character };
  }
  return params;
}
