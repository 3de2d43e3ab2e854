// The extension's manifest: what vsce, Open VSX and VS Code read from package.json.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configurationFromSchema, SCOPES } from '../scripts/sync-settings.mjs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const props = pkg.contributes.configuration.properties;

test('settings that name a program or hold a key are machine-scoped, and stay so when regenerated', () => {
  for (const key of ['codegenLsp.client.serverCommand', 'codegenLsp.client.pythonPath', 'codegenLsp.remoteApiKey']) {
    assert.equal(props[key].scope, 'machine', key);
    assert.equal(SCOPES[key], 'machine', key);
  }
  // The server schema knows no scope: the script adds it.
  const config = configurationFromSchema({ properties: {
    remoteApiKey: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    maxTokens: { type: 'integer', default: 64 },
  } });
  assert.equal(config.properties['codegenLsp.remoteApiKey'].scope, 'machine');
  assert.equal(config.properties['codegenLsp.maxTokens'].scope, undefined);
  assert.equal(config.properties['codegenLsp.client.serverCommand'].scope, 'machine');
  // Every scoped setting exists, and nothing else is scoped by accident.
  const scoped = Object.entries(props).filter(([, v]) => v.scope).map(([k]) => k).sort();
  assert.deepEqual(scoped, Object.keys(SCOPES).sort());
});

test('the switches: codegenLsp.client.enable is a Copilot-style map, on by default', () => {
  const enable = props['codegenLsp.client.enable'];
  assert.equal(enable.type, 'object');
  assert.deepEqual(enable.default, { '*': true });
  assert.deepEqual(enable.additionalProperties, { type: 'boolean' });
  const commands = pkg.contributes.commands.map((c) => c.command);
  for (const id of ['codegenLsp.toggle', 'codegenLsp.snooze', 'codegenLsp.toggleLanguage', 'codegenLsp.showMenu']) {
    assert.ok(commands.includes(id), id);
  }
});

test('accept next line is bound, only while a suggestion shows; next word keeps VS Code\'s own key', () => {
  const bindings = pkg.contributes.keybindings;
  const line = bindings.find((b) => b.command === 'editor.action.inlineSuggest.acceptNextLine');
  assert.equal(line?.key, 'alt+end');
  assert.match(line.when, /\binlineSuggestionVisible\b/);
  // VS Code binds ctrl+right (cmd+right) to acceptNextWord itself (microsoft/vscode#167927): no second binding here.
  assert.equal(bindings.find((b) => b.command === 'editor.action.inlineSuggest.acceptNextWord'), undefined);
  assert.ok(pkg.engines.vscode.startsWith('^1.9'), pkg.engines.vscode);
});

test('packaging builds first and the metadata is registry-ready', () => {
  assert.equal(pkg.scripts['vscode:prepublish'], 'npm run build');
  assert.match(pkg.scripts.package, /vsce package/);
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(new URL('../LICENSE', import.meta.url), 'utf8'), /MIT License/);
  assert.match(pkg.repository.url, /^https:\/\/github\.com\/.+\.git$/);
  assert.ok(pkg.homepage && pkg.bugs.url, 'homepage and bugs');
  assert.ok(pkg.categories.length > 0 && pkg.keywords.length > 0);
  const icon = readFileSync(new URL(`../${pkg.icon}`, import.meta.url));
  assert.deepEqual([...icon.subarray(1, 4)], [0x50, 0x4e, 0x47]); // PNG
  assert.deepEqual([icon.readUInt32BE(16), icon.readUInt32BE(20)], [128, 128]);
  const ignore = readFileSync(new URL('../.vscodeignore', import.meta.url), 'utf8');
  assert.match(ignore, new RegExp(`^!${pkg.icon.replace('.', '\\.')}$`, 'm'));
  assert.ok(existsSync(new URL('../scripts/make-icon.mjs', import.meta.url)));
});

test('the docs name only commands and settings the extension has', () => {
  const docs = readFileSync(new URL('../../docs/editors.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('\n## VS Code\n'), docs.indexOf('\n## ', docs.indexOf('\n## VS Code\n') + 5));
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const commands = new Set(pkg.contributes.commands.map((c) => c.command));
  for (const text of [section, readme]) {
    const named = [...text.matchAll(/`(codegenLsp\.[A-Za-z.]+)`/g)].map((m) => m[1]);
    assert.ok(named.length > 3, named);
    for (const name of named) {
      assert.ok(commands.has(name) || props[name], `${name} is neither a command nor a setting`);
    }
    for (const m of text.matchAll(/"(codegenLsp\.[A-Za-z.]+)":/g)) {
      assert.ok(props[m[1]], `${m[1]} is no setting`);
    }
  }
});
