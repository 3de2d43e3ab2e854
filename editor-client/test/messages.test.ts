import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { INSTALL_HINT, INSTALL_URL, looksNotInstalled, NOT_INSTALLED_ADVICE, startFailedMessage } from '../src/messages';
import { describeEarlyExit, describeSpawnError } from '../src/serverCommand';

// Bundled to out/test/: the extension's folder is two up, the repository three.
const CLIENT = join(__dirname, '..', '..');
const REPO = join(CLIENT, '..');

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

function readmeAnchors(): Set<string> {
  const text = readFileSync(join(REPO, 'README.md'), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1])));
}

test('every link to the repository README points at a heading it has', () => {
  const anchors = readmeAnchors();
  assert.ok(anchors.has('installing-with-plain-pip'), [...anchors].join(', ')); // the slug rule itself
  const links = [INSTALL_URL, ...INSTALL_HINT.join(' ').matchAll(/https:\/\/github\.com\/codegen-lsp\/codegen-lsp#([\w-]+)/g)]
    .map((m) => (typeof m === 'string' ? m.split('#')[1] : m[1]));
  const readme = readFileSync(join(CLIENT, 'README.md'), 'utf8');
  links.push(...[...readme.matchAll(/github\.com\/codegen-lsp\/codegen-lsp#([\w-]+)/g)].map((m) => m[1]));
  assert.ok(links.length >= 3, String(links));
  for (const link of links) {
    assert.ok(anchors.has(link), `#${link} is no heading of README.md (${[...anchors].join(', ')})`);
  }
});

test('nothing tells users to pip install codegen-lsp from PyPI: it is not there', () => {
  const files = [
    join(CLIENT, 'README.md'), join(CLIENT, 'package.json'),
    ...readdirSync(join(CLIENT, 'src')).map((f) => join(CLIENT, 'src', f)),
  ];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /pip3? install (-U |--upgrade )?codegen[-_]lsp(?![-_\w.*])/i, file);
  }
  assert.doesNotMatch(INSTALL_HINT.join('\n'), /pip install codegen-lsp\b(?!-)/);
  assert.match(INSTALL_HINT.join('\n'), /make install/);
  assert.match(INSTALL_HINT.join('\n'), /pip install dist\/codegen_lsp-\*\.whl/);
});

test('a server that is not installed gets the install advice in its one message', () => {
  const missing = describeSpawnError(Object.assign(new Error('spawn x ENOENT'), { code: 'ENOENT' }), '/nope/codegen-lsp');
  const noModule = describeEarlyExit(1, null, 'Traceback ...\n/usr/bin/python3: No module named codegen_lsp\n');
  for (const reason of [missing, noModule]) {
    assert.equal(looksNotInstalled(reason), true, reason);
    const message = startFailedMessage('/nope/codegen-lsp serve', reason);
    assert.ok(message.startsWith(`codegen-lsp: cannot start the server (/nope/codegen-lsp serve): ${reason}. `), message);
    assert.ok(message.endsWith(NOT_INSTALLED_ADVICE), message);
  }
  assert.match(NOT_INSTALLED_ADVICE, /make install.*\.venv\/bin\/codegen-lsp.*pip install dist\/codegen_lsp-\*\.whl.*make dist/);
  // Any other failure is only the reason: the server is installed, the advice would mislead.
  const crashed = describeEarlyExit(3, null, 'ValueError: bad setting');
  assert.equal(looksNotInstalled(crashed), false);
  assert.equal(startFailedMessage('py -m codegen_lsp serve', crashed),
    'codegen-lsp: cannot start the server (py -m codegen_lsp serve): the server exited with code 3: ValueError: bad setting');
});
