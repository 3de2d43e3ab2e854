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
// The client-only settings (codegenLsp.client.*) are written from CLIENT_PROPERTIES below.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PREFIX = 'codegenLsp.';
export const KEPT_KEYS = ['type', 'default', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'items'];

export const CLIENT_PROPERTIES = {
  'codegenLsp.client.serverCommand': {
    type: 'array',
    items: { type: 'string' },
    default: [],
    markdownDescription: 'Full command line that starts the server over stdio, e.g. `["/opt/venv/bin/codegen-lsp", "serve"]`. Empty: `<python> -m codegen_lsp serve`. Changing it restarts the server.',
  },
  'codegenLsp.client.pythonPath': {
    type: 'string',
    default: '',
    markdownDescription: 'Interpreter that runs `-m codegen_lsp serve`. Empty: the Python extension\'s selected interpreter, else `python3`. Changing it restarts the server.',
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
