import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  appendTail,
  describeEarlyExit,
  describeSpawnError,
  formatCommandLine,
  pythonFromExtensionApi,
  resolveServerCommand,
} from '../src/serverCommand';

test('serverCommand wins as is', () => {
  assert.deepEqual(
    resolveServerCommand({ serverCommand: ['/x/codegen-lsp', 'serve'], pythonPath: '/py', extensionPython: '/ext' }),
    { command: '/x/codegen-lsp', args: ['serve'] },
  );
});

test('python: pythonPath, else the Python extension, else python3', () => {
  const args = ['-m', 'codegen_lsp', 'serve', '--log-level', 'warning'];
  assert.deepEqual(resolveServerCommand({ serverCommand: [], pythonPath: '/py', extensionPython: '/ext' }), { command: '/py', args });
  assert.deepEqual(resolveServerCommand({ serverCommand: [], pythonPath: '', extensionPython: '/ext' }), { command: '/ext', args });
  assert.deepEqual(resolveServerCommand({ serverCommand: [], pythonPath: ' ' }), { command: 'python3', args });
});

test('command lines quote words with spaces', () => {
  assert.equal(formatCommandLine({ command: '/a b/python', args: ['-m', 'codegen_lsp', 'serve'] }), "'/a b/python' -m codegen_lsp serve");
  assert.equal(formatCommandLine({ command: 'x', args: ['', "it's"] }), "x '' 'it'\\''s'");
});

test('failure reasons', () => {
  assert.equal(describeSpawnError(Object.assign(new Error('spawn nope ENOENT'), { code: 'ENOENT' }), 'nope'), 'executable "nope" not found');
  assert.equal(describeSpawnError(Object.assign(new Error('x'), { code: 'EACCES' }), '/f'), 'permission denied running "/f"');
  assert.equal(describeSpawnError(new Error('other'), 'x'), 'other');
  assert.equal(
    describeEarlyExit(1, null, 'Traceback...\n  File "x"\nModuleNotFoundError: No module named codegen_lsp\n\n'),
    'the server exited with code 1: ModuleNotFoundError: No module named codegen_lsp',
  );
  assert.equal(describeEarlyExit(null, 'SIGKILL', ''), 'the server was killed by SIGKILL');
  assert.equal(appendTail('abc', 'def', 4), 'cdef');
});

test('the Python extension API is used defensively', async () => {
  const api = {
    environments: {
      getActiveEnvironmentPath: () => ({ id: 'e', path: '/venv/bin/python' }),
      resolveEnvironment: async () => ({ executable: { uri: { fsPath: '/venv/bin/python3.12' } } }),
    },
  };
  assert.equal(await pythonFromExtensionApi(api), '/venv/bin/python3.12');
  assert.equal(await pythonFromExtensionApi(undefined), undefined);
  assert.equal(await pythonFromExtensionApi({}), undefined);
  assert.equal(await pythonFromExtensionApi({ environments: { ...api.environments, resolveEnvironment: async () => undefined } }), undefined);
  assert.equal(
    await pythonFromExtensionApi({ environments: { ...api.environments, resolveEnvironment: () => { throw new Error('boom'); } } }),
    undefined,
  );
});
