// Unit tests without VS Code: esbuild bundles test/*.test.ts (the pure modules only) into
// out/test/, then node's built-in runner runs them together with the .mjs script tests.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as esbuild from 'esbuild';

const tsTests = readdirSync('test').filter((f) => f.endsWith('.test.ts'));
const mjsTests = readdirSync('test').filter((f) => f.endsWith('.test.mjs'));

await esbuild.build({
  entryPoints: tsTests.map((f) => `test/${f}`),
  outdir: 'out/test',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // A test that pulls in the vscode API is a mistake: fail the bundle instead of the run.
  logLevel: 'warning',
});

const files = [
  ...tsTests.map((f) => `out/test/${f.replace(/\.ts$/, '.js')}`),
  ...mjsTests.map((f) => `test/${f}`),
];
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
