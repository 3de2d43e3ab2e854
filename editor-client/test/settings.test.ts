import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gaveUpMessage, restartingMessage, startFailedMessage } from '../src/messages';
import { LIST_MODELS_COMMAND, modelItems, synthesisMessage, synthesizeArguments, SYNTHESIZE_COMMAND } from '../src/requests';
import { CLIENT_DEFAULTS, modelSettingValue, needsRestart, readClientSettings } from '../src/settings';
// Replies of codegen-lsp.synthesize captured from the real server by tests/e2e/test_synthesis_reply.py,
// which also fails when the server's reply no longer has this shape.
import captured from './fixtures/synthesize-reply.json';

test('client settings: defaults and sanitizing', () => {
  assert.deepEqual(readClientSettings(() => undefined), CLIENT_DEFAULTS);
  const values: Record<string, unknown> = {
    'client.serverCommand': ['a', '', 'b'],
    'client.pythonPath': '/py',
    'client.completionFallback': true,
    'client.maxRestarts': 0,
  };
  assert.deepEqual(readClientSettings((k) => values[k]), {
    serverCommand: ['a', 'b'], pythonPath: '/py', completionFallback: true, maxRestarts: 0,
  });
  assert.equal(readClientSettings((k) => (k === 'client.maxRestarts' ? -1 : undefined)).maxRestarts, 3);
  assert.deepEqual(readClientSettings((k) => (k === 'client.serverCommand' ? [1] : undefined)).serverCommand, []);
});

test('only the launch settings restart the client', () => {
  assert.equal(needsRestart((k) => k === 'codegenLsp.client.serverCommand'), true);
  assert.equal(needsRestart((k) => k === 'codegenLsp.client.pythonPath'), true);
  assert.equal(needsRestart((k) => k === 'codegenLsp.maxTokens' || k === 'codegenLsp'), false);
});

test('picking the embedded default resets codegenLsp.model', () => {
  assert.equal(modelSettingValue(''), undefined);
  assert.equal(modelSettingValue('/m/x.gguf'), '/m/x.gguf');
});

test('synthesize arguments: the range only for a non-empty selection', () => {
  assert.notEqual(SYNTHESIZE_COMMAND, 'codegenLsp.synthesizeFromComments');
  const empty = { start: { line: 3, character: 1 }, end: { line: 3, character: 1 } };
  assert.deepEqual(synthesizeArguments('file:///a.py', 7, empty), [{ uri: 'file:///a.py', version: 7 }]);
  const sel = { start: { line: 1, character: 0 }, end: { line: 4, character: 2 } };
  assert.deepEqual(synthesizeArguments('file:///a.py', 7, sel), [{ uri: 'file:///a.py', version: 7, range: sel }]);
});

test('synthesis message from replies the server sent', () => {
  const { allInserted, oneTurnEmpty, nothingToSynthesize } = captured.replies;
  // Applied: say what was done, in the server's own summary.
  assert.equal(allInserted.applied, true);
  assert.equal(synthesisMessage(allInserted), `codegen-lsp: Synthesize from comments: ${allInserted.summary}`);
  assert.match(allInserted.summary, /inserted/);
  assert.equal(oneTurnEmpty.applied, true);
  assert.equal(synthesisMessage(oneTurnEmpty), `codegen-lsp: Synthesize from comments: ${oneTurnEmpty.summary}`);
  assert.match(oneTurnEmpty.summary, /empty/);
  // Nothing applied: the server has already shown why (window/showMessage); no second message.
  assert.equal(nothingToSynthesize.applied, false);
  assert.equal(typeof nothingToSynthesize.stopped, 'string');
  assert.equal(synthesisMessage(nothingToSynthesize), undefined);
  // Not a reply of this server.
  assert.equal(synthesisMessage(null), undefined);
  assert.equal(synthesisMessage('done'), undefined);
  assert.equal(synthesisMessage({ ...allInserted, summary: 3 }), undefined);
  assert.equal(synthesisMessage({ message: 'no comments found' }), undefined);
});

test('model items mark the current model and drop malformed entries', () => {
  assert.equal(LIST_MODELS_COMMAND, 'codegen-lsp.listModels');
  const items = modelItems({
    current: '/m/a.gguf',
    models: [
      { label: 'Embedded default', value: '', description: 'codegen-350M' },
      { label: 'a.gguf', value: '/m/a.gguf', description: '' },
      { label: 42, value: 'x' },
    ],
  });
  assert.deepEqual(items, [
    { label: 'Embedded default', value: '', description: 'codegen-350M' },
    { label: 'a.gguf', value: '/m/a.gguf', description: 'current' },
  ]);
  assert.deepEqual(modelItems(undefined), []);
});

test('messages', () => {
  assert.equal(startFailedMessage('python3 -m codegen_lsp serve', 'x'), 'codegen-lsp: cannot start the server (python3 -m codegen_lsp serve): x');
  assert.equal(restartingMessage(1, 3), 'codegen-lsp: the server stopped unexpectedly; restarting (1/3)');
  assert.equal(gaveUpMessage(4), 'codegen-lsp: the server crashed 4 times in 3 minutes; not restarting. Fix the cause (see Show logs) and run "codegen-lsp: Restart server".');
});
