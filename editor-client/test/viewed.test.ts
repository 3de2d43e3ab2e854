import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { didViewParams, Settler } from '../src/viewed';

test('the middle line of the first visible range, for our languages and files only', () => {
  const langs = ['python', 'javascript'];
  assert.deepEqual(didViewParams('file:///a.py', 'python', [{ start: 100, end: 141 }], langs),
    { uri: 'file:///a.py', line: 120 });
  assert.equal(didViewParams('file:///a.md', 'markdown', [{ start: 0, end: 10 }], langs), undefined);
  assert.equal(didViewParams('untitled:1', 'python', [{ start: 0, end: 10 }], langs), undefined);
  assert.equal(didViewParams('file:///a.py', 'python', [], langs), undefined);
});

test('a settler sends only the last value once it settles, per key', async () => {
  const sent: number[] = [];
  const settler = new Settler<number>(20, (v) => sent.push(v));
  settler.offer('a', 1);
  settler.offer('a', 2);
  settler.offer('b', 7);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(sent.sort(), [2, 7]);
  settler.offer('a', 3);
  settler.dispose();
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(sent.sort(), [2, 7]);
});
