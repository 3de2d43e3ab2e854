import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CRASH_WINDOW_MS, RestartPolicy } from '../src/restartPolicy';

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('restarts up to maxRestarts crashes, then gives up', () => {
  const c = clock();
  const policy = new RestartPolicy(3, c.now);
  assert.deepEqual(policy.recordCrash(), { restart: true, attempt: 1, max: 3 });
  assert.deepEqual(policy.recordCrash(), { restart: true, attempt: 2, max: 3 });
  assert.deepEqual(policy.recordCrash(), { restart: true, attempt: 3, max: 3 });
  assert.deepEqual(policy.recordCrash(), { restart: false, crashes: 4, max: 3 });
});

test('crashes older than 3 minutes are forgotten', () => {
  const c = clock();
  const policy = new RestartPolicy(2, c.now);
  policy.recordCrash();
  c.advance(60_000);
  policy.recordCrash();
  c.advance(CRASH_WINDOW_MS - 60_000); // the first crash leaves the window
  assert.deepEqual(policy.recordCrash(), { restart: true, attempt: 2, max: 2 });
  assert.equal(policy.recordCrash().restart, false);
});

test('maxRestarts 0 never restarts', () => {
  const policy = new RestartPolicy(0, clock().now);
  assert.deepEqual(policy.recordCrash(), { restart: false, crashes: 1, max: 0 });
});

test('reset starts a fresh count; the limit can change', () => {
  const policy = new RestartPolicy(1, clock().now);
  policy.recordCrash();
  assert.equal(policy.recordCrash().restart, false);
  policy.reset();
  assert.equal(policy.recordCrash().restart, true);
  policy.setMaxRestarts(5);
  assert.deepEqual(policy.recordCrash(), { restart: true, attempt: 2, max: 5 });
});
