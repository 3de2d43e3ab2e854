import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShownSuggestion, parseStats, statsLines } from '../src/stats';
import { statusView } from '../src/status';
import { Snooze, suggestionState } from '../src/suggestions';

// As server/codegen_lsp/events.py SuggestionStats.to_json writes them.
const MODEL = {
  uri: 'file:///w/a.py', version: 3, kind: 'request', source: 'model', reason: 'ok', finish: 'stop',
  promptTokens: 120, evaluatedPromptTokens: 35, generatedTokens: 12, maxTokens: 64, promptMs: 180.4,
  generateMs: 60.2, draftedTokens: 0, acceptedTokens: 0, window: 'full',
};
const CACHE = { uri: 'file:///w/a.py', version: 4, kind: 'request', source: 'typed-through cache', reason: 'ok', finish: null,
  promptTokens: 0, evaluatedPromptTokens: 0, generatedTokens: 0, maxTokens: 0, promptMs: 0, generateMs: 0, window: '' };

test('a model suggestion: latency, tokens and source', () => {
  const stats = parseStats(MODEL);
  assert.ok(stats);
  assert.deepEqual(statsLines(stats), [
    'Last suggestion: 241 ms in the model (prompt 180 ms, generation 60 ms)',
    'Tokens: 120 prompt tokens (35 evaluated, 85 reused from the cache), 12 generated',
    'Source: the model (full window)',
  ]);
});

test('a cached suggestion names its cache; a refused one says why', () => {
  assert.deepEqual(statsLines(parseStats(CACHE)!), [
    'Last suggestion: from the typed-through cache, no model call',
    'Source: typed-through cache',
  ]);
  const excluded = parseStats({ ...CACHE, source: 'none', reason: 'excluded (matches .env)' })!;
  assert.deepEqual(statsLines(excluded), ['Last suggestion: no model call', 'No suggestion: excluded (matches .env)']);
  const empty = parseStats({ ...MODEL, reason: 'empty completion', evaluatedPromptTokens: 120 })!;
  assert.equal(statsLines(empty)[1], 'Tokens: 120 prompt tokens (120 evaluated), 12 generated');
  assert.equal(statsLines(empty).at(-1), 'No suggestion: empty completion');
});

test('only a request shown to the user counts as the last suggestion', () => {
  assert.equal(isShownSuggestion(parseStats(MODEL)!), true);
  assert.equal(isShownSuggestion(parseStats({ ...MODEL, kind: 'speculative' })!), false);
  assert.equal(isShownSuggestion(parseStats({ ...MODEL, kind: 'warm', reason: 'warmed' })!), false);
  assert.equal(isShownSuggestion(parseStats({ ...MODEL, reason: 'superseded by a newer request' })!), false);
  assert.equal(isShownSuggestion(parseStats({ ...MODEL, reason: 'request cancelled' })!), false);
  assert.equal(isShownSuggestion(parseStats({ ...MODEL, reason: 'the model did not answer within 20000 ms' })!), true);
});

test('malformed stats are ignored; missing numbers read as 0', () => {
  assert.equal(parseStats(null), undefined);
  assert.equal(parseStats('x'), undefined);
  assert.equal(parseStats({ kind: 'request', source: 'model' }), undefined);
  const partial = parseStats({ kind: 'request', source: 'model', reason: 'ok', promptMs: -3, generateMs: 'x' })!;
  assert.equal(partial.promptMs, 0);
  assert.equal(partial.generateMs, 0);
  assert.equal(partial.window, '');
});

test('the tooltip carries the last stats; without any (an old server) it is unchanged', () => {
  const ready = { kind: 'ready', model: 'm.gguf' } as const;
  const plain = statusView(ready);
  const withStats = statusView(ready, { lastStats: parseStats(MODEL) });
  assert.equal(withStats.text, plain.text);
  assert.equal(withStats.accessibilityLabel, plain.accessibilityLabel);
  assert.equal(withStats.tooltip, `${plain.tooltip}\n\nLast suggestion: 241 ms in the model (prompt 180 ms, generation 60 ms)\n` +
    'Tokens: 120 prompt tokens (35 evaluated, 85 reused from the cache), 12 generated\nSource: the model (full window)');
  assert.equal(plain.tooltip, 'codegen-lsp: m.gguf ready');
  // An error's tooltip is the reason alone.
  assert.equal(statusView({ kind: 'error', reason: 'boom' }, { lastStats: parseStats(MODEL) }).tooltip, 'boom');
  // The switches' tooltips carry it too.
  const off = statusView(ready, { suggestions: suggestionState({ '*': false }, 'python', new Snooze()), lastStats: parseStats(CACHE) });
  assert.match(off.tooltip, /suggestions are off[\s\S]*\n\nLast suggestion: from the typed-through cache/);
});
