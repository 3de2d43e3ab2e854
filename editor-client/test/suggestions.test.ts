import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  enabledFor,
  formatClock,
  formatRemaining,
  quietEverywhere,
  quietSection,
  readEnableMap,
  Snooze,
  snoozeChoiceLabel,
  suggestionState,
  toggledAll,
  withLanguage,
} from '../src/suggestions';

test('the enable map: a language\'s entry wins over "*", and on without either', () => {
  assert.deepEqual(enabledFor({}, 'python'), { enabled: true, by: undefined });
  assert.deepEqual(enabledFor({ '*': false }, 'python'), { enabled: false, by: '*' });
  assert.deepEqual(enabledFor({ '*': true, python: false }, 'python'), { enabled: false, by: 'python' });
  assert.deepEqual(enabledFor({ '*': true, python: false }, 'go'), { enabled: true, by: '*' });
  assert.deepEqual(enabledFor({ '*': false, python: true }, 'python'), { enabled: true, by: 'python' });
  assert.deepEqual(enabledFor({ '*': false, python: true }, undefined), { enabled: false, by: '*' });
  // Inherited keys are no entries: "constructor" is not a language someone configured.
  assert.deepEqual(enabledFor({}, 'constructor'), { enabled: true, by: undefined });
});

test('the setting is read defensively: only boolean entries count', () => {
  assert.deepEqual(readEnableMap(undefined), {});
  assert.deepEqual(readEnableMap(['python']), {});
  assert.deepEqual(readEnableMap('off'), {});
  assert.deepEqual(readEnableMap({ '*': true, python: 'no', go: false }), { '*': true, go: false });
});

test('toggle flips "*"; the language switch writes only what differs from "*"', () => {
  assert.deepEqual(toggledAll({}), { '*': false });
  assert.deepEqual(toggledAll({ '*': false, go: false }), { '*': true, go: false });
  assert.deepEqual(withLanguage({ '*': true }, 'python', false), { '*': true, python: false });
  assert.deepEqual(withLanguage({ '*': true, python: false }, 'python', true), { '*': true });
  assert.deepEqual(withLanguage({ '*': false }, 'python', true), { '*': false, python: true });
  assert.deepEqual(withLanguage({}, 'python', true), {});
});

test('a snooze ends by itself at its time; a new one counts from now', () => {
  let now = 1_000_000;
  const snooze = new Snooze(() => now);
  assert.equal(snooze.active(), false);
  assert.equal(snooze.start(15), 1_000_000 + 15 * 60_000);
  assert.equal(snooze.active(), true);
  now += 14 * 60_000;
  assert.equal(snooze.remainingMs(), 60_000);
  now += 60_000 - 1;
  assert.equal(snooze.active(), true);
  now += 1;
  assert.equal(snooze.active(), false);
  assert.equal(snooze.endsAt(), undefined);
  assert.equal(snooze.remainingMs(), 0);
  snooze.start(5);
  now += 60_000;
  snooze.start(5);
  assert.equal(snooze.remainingMs(), 5 * 60_000);
  snooze.cancel();
  assert.equal(snooze.active(), false);
  assert.throws(() => snooze.start(0), RangeError);
  assert.throws(() => snooze.start(Number.NaN), RangeError);
});

test('the state of a document: a snooze first, then the language, then "*"', () => {
  let now = 0;
  const snooze = new Snooze(() => now);
  assert.deepEqual(suggestionState({}, 'python', snooze), { kind: 'on' });
  assert.deepEqual(suggestionState({ '*': false }, 'python', snooze), { kind: 'off' });
  assert.deepEqual(suggestionState({ python: false }, 'python', snooze), { kind: 'offForLanguage', languageId: 'python' });
  assert.deepEqual(suggestionState({ python: false }, 'go', snooze), { kind: 'on' });
  assert.deepEqual(suggestionState({ python: false }, undefined, snooze), { kind: 'on' });
  snooze.start(30);
  now = 10 * 60_000;
  assert.deepEqual(suggestionState({}, 'python', snooze), { kind: 'snoozed', until: 30 * 60_000, remainingMs: 20 * 60_000 });
  assert.equal(suggestionState({ '*': false }, 'python', snooze).kind, 'snoozed');
  now = 30 * 60_000;
  assert.deepEqual(suggestionState({}, 'python', snooze), { kind: 'on' }); // re-enabled by itself
});

test('remaining time and clock texts', () => {
  assert.equal(formatRemaining(1), '1 min');
  assert.equal(formatRemaining(60_000), '1 min');
  assert.equal(formatRemaining(60_001), '2 min');
  assert.equal(formatRemaining(59 * 60_000), '59 min');
  assert.equal(formatRemaining(65 * 60_000), '1 h 05 min');
  assert.equal(formatClock(new Date(2026, 0, 2, 9, 5).getTime()), '09:05');
  assert.equal(formatClock(new Date(2026, 0, 2, 14, 30).getTime()), '14:30');
  assert.deepEqual([5, 15, 60, 120].map(snoozeChoiceLabel), ['5 minutes', '15 minutes', '1 hour', '2 hours']);
});

test('quiet (no warm-ups asked of the server) while snoozed or off in every served language', () => {
  let now = 0;
  const snooze = new Snooze(() => now);
  const served = ['python', 'go'];
  assert.equal(quietEverywhere({}, served, snooze), false);
  assert.equal(quietEverywhere({ '*': false }, served, snooze), true);
  assert.equal(quietEverywhere({ '*': false, go: true }, served, snooze), false);
  assert.equal(quietEverywhere({ python: false }, served, snooze), false);
  assert.equal(quietEverywhere({ python: false, go: false }, served, snooze), true);
  snooze.start(5);
  assert.equal(quietEverywhere({}, served, snooze), true);
  now = 5 * 60_000;
  assert.equal(quietEverywhere({}, served, snooze), false);
  assert.deepEqual(quietSection({ model: 'm.gguf', warmAfterMs: 800 }), { model: 'm.gguf', warmAfterMs: 0 });
  assert.deepEqual(quietSection(null), { warmAfterMs: 0 });
});
