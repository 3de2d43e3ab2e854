import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { FOCUS_NOTIFICATION, FOCUS_SETTLE_MS, focusParams, servesDocument } from '../src/focus';
import { LANGUAGES } from '../src/languages';
import { Settler } from '../src/viewed';

const langs = ['python', 'javascript'];

test('the notification names the document and its cursor', () => {
  assert.equal(FOCUS_NOTIFICATION, 'codegenLsp/focus');
  assert.deepEqual(
    focusParams({ uri: 'file:///w/a.py', scheme: 'file', languageId: 'python', position: { line: 12, character: 4 } }, langs),
    { textDocument: { uri: 'file:///w/a.py' }, position: { line: 12, character: 4 } });
});

test('an unknown or malformed cursor is left out, not sent as garbage', () => {
  const doc = { uri: 'file:///w/a.py', scheme: 'file', languageId: 'python' };
  assert.deepEqual(focusParams(doc, langs), { textDocument: { uri: 'file:///w/a.py' } });
  assert.deepEqual(focusParams({ ...doc, position: { line: -1, character: 0 } }, langs),
    { textDocument: { uri: 'file:///w/a.py' } });
  assert.deepEqual(focusParams({ ...doc, position: { line: 1.5, character: 0 } }, langs),
    { textDocument: { uri: 'file:///w/a.py' } });
  assert.equal('position' in focusParams(doc, langs)!, false);
});

test('only documents the client serves: its languages, file and untitled documents', () => {
  const at = { line: 0, character: 0 };
  assert.equal(focusParams(undefined, langs), undefined);  // no active editor (output panel, settings UI)
  assert.equal(focusParams({ uri: 'file:///w/README.md', scheme: 'file', languageId: 'markdown', position: at }, langs),
    undefined);
  assert.equal(focusParams({ uri: 'output:extension-output', scheme: 'output', languageId: 'python', position: at },
    langs), undefined);
  assert.equal(focusParams({ uri: 'git:/w/a.py?ref', scheme: 'git', languageId: 'python', position: at }, langs),
    undefined);  // a diff's old side is not synced
  assert.deepEqual(focusParams({ uri: 'untitled:Untitled-1', scheme: 'untitled', languageId: 'javascript', position: at },
    langs), { textDocument: { uri: 'untitled:Untitled-1' }, position: at });
});

test('served documents are those of the documentSelector: every language of the table', () => {
  for (const language of LANGUAGES) {
    assert.equal(servesDocument('file', language, LANGUAGES), true, language);
    assert.equal(servesDocument('untitled', language, LANGUAGES), true, language);
    assert.equal(servesDocument('vscode-notebook-cell', language, LANGUAGES), false, language);
  }
  assert.equal(servesDocument('file', 'plaintext', LANGUAGES), false);
});

test('flipping through editors sends only the one that stays active', async () => {
  const sent: (string | undefined)[] = [];
  const settler = new Settler<string | undefined>(20, (uri) => sent.push(uri));
  settler.offer('active', 'file:///a.py');
  settler.offer('active', 'file:///b.py');
  settler.offer('active', 'file:///c.py');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(sent, ['file:///c.py']);
  settler.offer('active', 'file:///d.py');
  settler.offer('active', undefined);  // then an editor the client does not serve: the last offer wins
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(sent, ['file:///c.py', undefined]);
  assert.ok(FOCUS_SETTLE_MS > 0 && FOCUS_SETTLE_MS <= 300);
});
