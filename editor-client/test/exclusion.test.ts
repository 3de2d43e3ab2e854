import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exclusionNotice, Exclusions, offText } from '../src/exclusion';
import { statusView } from '../src/status';

const ENV = 'file:///work/app/.env';
const APP = 'file:///work/app/app.py';

test('the notice is read strictly; malformed ones change nothing', () => {
  assert.deepEqual(exclusionNotice({ uri: ENV, reason: 'matches .env' }), { uri: ENV, reason: 'matches .env' });
  assert.deepEqual(exclusionNotice({ uri: ENV, reason: null }), { uri: ENV, reason: null });
  for (const bad of [null, 'x', {}, { uri: ENV }, { uri: 3, reason: 'x' }, { uri: ENV, reason: 5 }]) {
    assert.equal(exclusionNotice(bad), undefined, JSON.stringify(bad));
  }
  const exclusions = new Exclusions();
  assert.equal(exclusions.update({ uri: ENV }), false);
  assert.equal(exclusions.reasonFor(ENV), undefined);
});

test('an excluded document is remembered until it is served again, closed, or the server restarts', () => {
  const exclusions = new Exclusions();
  assert.equal(exclusions.update({ uri: ENV, reason: 'matches .env' }), true);
  assert.equal(exclusions.reasonFor(ENV), 'matches .env');
  assert.equal(exclusions.reasonFor(APP), undefined);
  assert.equal(exclusions.reasonFor(undefined), undefined);
  exclusions.update({ uri: ENV, reason: null });
  assert.equal(exclusions.reasonFor(ENV), undefined);
  exclusions.update({ uri: ENV, reason: 'ignored by git: build/ in .gitignore:1' });
  exclusions.closed(ENV);
  assert.equal(exclusions.reasonFor(ENV), undefined);
  exclusions.update({ uri: ENV, reason: 'matches .env' });
  exclusions.clear();
  assert.equal(exclusions.reasonFor(ENV), undefined);
});

test('the status says the active file is off, and why, while the server runs', () => {
  assert.equal(offText('matches .env'), 'codegen-lsp: off for this file (matches .env)');
  for (const status of [{ kind: 'ready', model: 'm.gguf' }, { kind: 'generating', model: 'm.gguf' },
    { kind: 'loading', model: 'm.gguf' }] as const) {
    const view = statusView(status, { offReason: 'matches .env' });
    assert.equal(view.text, '$(circle-slash) codegen-lsp: off for this file (matches .env)');
    assert.equal(view.accessibilityLabel, 'codegen-lsp: off for this file (matches .env)');
    assert.match(view.tooltip, /codegenLsp\.exclude/);
    assert.equal(view.error, false);
  }
  // Not excluded: the model as before; starting, stopped and errors still win over "off".
  assert.equal(statusView({ kind: 'ready', model: 'm.gguf' }).text, '$(check) codegen-lsp: m.gguf');
  assert.equal(statusView({ kind: 'error', reason: 'boom' }, { offReason: 'matches .env' }).text, '$(error) codegen-lsp');
  assert.equal(statusView({ kind: 'starting' }, { offReason: 'matches .env' }).text, '$(sync~spin) codegen-lsp');
  assert.equal(statusView({ kind: 'stopped' }, { offReason: 'matches .env' }).text, '$(circle-slash) codegen-lsp');
});
