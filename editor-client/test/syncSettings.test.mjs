import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLIENT_PROPERTIES, configurationFromSchema, convertProperty } from '../scripts/sync-settings.mjs';

test('anyOf with null becomes a type list, keeping bounds; title is dropped', () => {
  assert.deepEqual(
    convertProperty({
      anyOf: [{ type: 'integer', minimum: 1, maximum: 256 }, { type: 'null' }],
      default: null, description: 'CPU threads', title: 'Threads',
    }),
    { type: ['integer', 'null'], default: null, minimum: 1, maximum: 256, markdownDescription: 'CPU threads' },
  );
  assert.deepEqual(
    convertProperty({ type: 'number', default: 0.75, exclusiveMinimum: 0, exclusiveMaximum: 1, title: 'P' }),
    { type: 'number', default: 0.75, exclusiveMinimum: 0, exclusiveMaximum: 1 },
  );
});

test('package.json is in sync with the conversion of its own server settings', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const props = pkg.contributes.configuration.properties;
  for (const [key, value] of Object.entries(CLIENT_PROPERTIES)) {
    assert.deepEqual(props[key], value);
  }
  const config = configurationFromSchema({ properties: { a: { type: 'string', default: 'x', title: 'A' } } });
  assert.deepEqual(Object.keys(config.properties), ['codegenLsp.a', ...Object.keys(CLIENT_PROPERTIES)]);
});
