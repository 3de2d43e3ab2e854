#!/usr/bin/env node
// Regenerates contributes.configuration in package.json from the server's settings JSON Schema,
// so `node scripts/sync-settings.mjs` is the whole update after a server setting changes.
//
//   node scripts/sync-settings.mjs [schema.json]
//
// Without a file it runs `codegen-lsp settings-schema` ($CODEGEN_LSP, else ../.venv/bin/codegen-lsp).
//
// Conversion rule (mirrored in tests/unit/test_vscode_settings_sync.py; change both together):
//   every schema property P becomes "codegenLsp.P";
//   anyOf [{type: X, ...bounds}, {type: "null"}] becomes type [X, "null"] plus the bounds;
//   kept keys: type, default, description (as markdownDescription), enum, minimum, maximum,
//   exclusiveMinimum, exclusiveMaximum, items; everything else (title, ...) is dropped.
// The client-only settings (codegenLsp.client.*) are written from CLIENT_PROPERTIES below, and every
// setting named in SCOPES gets that "scope" (the schema has no such notion), so a regeneration keeps them.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PREFIX = 'codegenLsp.';
export const KEPT_KEYS = ['type', 'default', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'items'];

/**
 * VS Code's setting scopes for the settings that name a program to run or hold a key: "machine" means user
 * (or remote) settings only, so a workspace's .vscode/settings.json cannot set them (VS Code ignores such a
 * value there and says so), and Settings Sync does not copy them to other machines.
 * - client.serverCommand, client.pythonPath: the program the extension starts (code execution);
 * - remoteApiKey: a secret; it would otherwise be readable from, and committed with, a workspace's settings.
 * Deliberately left at the default (window) scope: `model` (a file the server only reads, chosen per project by
 * "Pick model"; it is in restrictedConfigurations, so an untrusted workspace cannot set it), `remoteUrl` (also
 * restricted: a team may point a project at its own inference server).
 */
export const SCOPES = {
  'codegenLsp.remoteApiKey': 'machine',
  'codegenLsp.client.serverCommand': 'machine',
  'codegenLsp.client.pythonPath': 'machine',
};

export const CLIENT_PROPERTIES = {
  'codegenLsp.client.enable': {
    type: 'object',
    additionalProperties: { type: 'boolean' },
    default: { '*': true },
    markdownDescription: 'Inline suggestions on or off, per languageId, like `github.copilot.enable`: e.g. `{"*": true, "markdown": false}`. A language\'s own entry wins over `"*"`. Set by "codegen-lsp: Toggle suggestions" (`"*"`) and "Toggle suggestions for this language". While off, no request reaches the server. (`codegenLsp.disabledLanguages` goes further: nothing of those files reaches the model at all.)',
  },
  'codegenLsp.client.serverCommand': {
    type: 'array',
    items: { type: 'string' },
    default: [],
    scope: 'machine',
    markdownDescription: 'Full command line that starts the server over stdio, e.g. `["/path/to/codegen-lsp/.venv/bin/codegen-lsp", "serve"]` after `make install` in a checkout. Empty: `<python> -m codegen_lsp serve`. User (or remote) settings only: a workspace cannot choose the program that runs. Changing it restarts the server.',
  },
  'codegenLsp.client.pythonPath': {
    type: 'string',
    default: '',
    scope: 'machine',
    markdownDescription: 'Interpreter that runs `-m codegen_lsp serve` (one you installed the server into). Empty: the Python extension\'s selected interpreter, else `python3`. User (or remote) settings only: a workspace cannot choose the program that runs. Changing it restarts the server.',
  },
  'codegenLsp.client.completionFallback': {
    type: 'boolean',
    default: false,
    markdownDescription: 'Also show the server\'s suggestions in the completion list (off: inline suggestions only).',
  },
  'codegenLsp.client.maxRestarts': {
    type: 'integer',
    default: 3,
    minimum: 0,
    markdownDescription: 'Server crashes tolerated within 3 minutes before the client stops restarting it.',
  },
};

/** One schema property → one VS Code configuration property. */
export function convertProperty(prop) {
  let source = prop;
  const out = {};
  if (Array.isArray(prop.anyOf)) {
    const nonNull = prop.anyOf.filter((s) => s.type !== 'null');
    const hasNull = nonNull.length < prop.anyOf.length;
    if (nonNull.length !== 1 || typeof nonNull[0].type !== 'string') {
      throw new Error(`unsupported anyOf: ${JSON.stringify(prop.anyOf)}`);
    }
    // The bounds live inside the non-null branch; the outer default/description stay outside.
    source = { ...nonNull[0], ...withoutKey(prop, 'anyOf') };
    source.type = hasNull ? [nonNull[0].type, 'null'] : nonNull[0].type;
  }
  for (const key of KEPT_KEYS) {
    if (source[key] !== undefined) {
      out[key] = source[key];
    }
  }
  if (typeof source.description === 'string') {
    out.markdownDescription = source.description;
  }
  return out;
}

function withoutKey(obj, key) {
  const copy = { ...obj };
  delete copy[key];
  return copy;
}

/** The whole `contributes.configuration` object for a schema. */
export function configurationFromSchema(schema) {
  const properties = {};
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    properties[PREFIX + name] = convertProperty(prop);
    if (SCOPES[PREFIX + name]) {
      properties[PREFIX + name].scope = SCOPES[PREFIX + name];
    }
  }
  return {
    title: 'codegen-lsp',
    properties: { ...properties, ...CLIENT_PROPERTIES },
  };
}

function readSchema(file, here) {
  if (file) {
    return JSON.parse(readFileSync(file, 'utf8'));
  }
  const exe = process.env.CODEGEN_LSP || resolve(here, '..', '..', '.venv', 'bin', 'codegen-lsp');
  return JSON.parse(execFileSync(exe, ['settings-schema'], { encoding: 'utf8' }));
}

function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkgPath = join(here, '..', 'package.json');
  const schema = readSchema(process.argv[2], here);
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
  pkg.contributes = { ...(pkg.contributes ?? {}), configuration: configurationFromSchema(schema) };
  const text = JSON.stringify(pkg, null, 2) + '\n';
  if (text !== readFileSync(pkgPath, 'utf8')) {
    writeFileSync(pkgPath, text);
    console.log(`updated ${pkgPath}`);
  } else {
    console.log('package.json already in sync');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
