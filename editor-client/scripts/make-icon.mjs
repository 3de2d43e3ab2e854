#!/usr/bin/env node
// Draws the extension's icon, images/icon.png (128x128 RGBA): a rounded dark tile with lines of code, the
// last one ending in a cursor and a grey "ghost text" suggestion. Only node's zlib: no image library.
//
//   node scripts/make-icon.mjs [out.png]
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const SIZE = 128;

/** Coverage (0..1) of pixel (x, y) by a rounded rectangle, 4x4 supersampled for smooth edges. */
function roundedRect(x, y, left, top, width, height, radius) {
  let hits = 0;
  for (let sy = 0; sy < 4; sy++) {
    for (let sx = 0; sx < 4; sx++) {
      const px = x + (sx + 0.5) / 4;
      const py = y + (sy + 0.5) / 4;
      if (px < left || px > left + width || py < top || py > top + height) continue;
      const cx = Math.min(Math.max(px, left + radius), left + width - radius);
      const cy = Math.min(Math.max(py, top + radius), top + height - radius);
      if ((px - cx) ** 2 + (py - cy) ** 2 <= radius ** 2) hits++;
    }
  }
  return hits / 16;
}

// [left, top, width, height, radius, rgba]
const TILE = [4, 4, 120, 120, 24, [30, 30, 46, 255]];
const TYPED = [236, 239, 244, 255];
const KEYWORD = [137, 180, 250, 255];
const GHOST = [140, 146, 170, 150];
const SHAPES = [
  TILE,
  [22, 30, 22, 10, 5, KEYWORD], [50, 30, 44, 10, 5, TYPED],
  [34, 52, 56, 10, 5, TYPED],
  [34, 74, 26, 10, 5, KEYWORD], [64, 74, 12, 10, 5, TYPED],
  [80, 70, 4, 18, 2, [250, 179, 135, 255]], // the cursor
  [88, 74, 22, 10, 5, GHOST], [34, 96, 46, 10, 5, GHOST], // the suggestion
];

function pixels() {
  const rgba = Buffer.alloc(SIZE * SIZE * 4);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let [r, g, b, a] = [0, 0, 0, 0];
      for (const [left, top, width, height, radius, color] of SHAPES) {
        const cover = roundedRect(x, y, left, top, width, height, radius) * color[3] / 255;
        if (cover === 0) continue;
        // "over" compositing, straight alpha
        const outA = cover + a * (1 - cover);
        r = (color[0] * cover + r * a * (1 - cover)) / outA;
        g = (color[1] * cover + g * a * (1 - cover)) / outA;
        b = (color[2] * cover + b * a * (1 - cover)) / outA;
        a = outA;
      }
      rgba.set([Math.round(r), Math.round(g), Math.round(b), Math.round(a * 255)], (y * SIZE + x) * 4);
    }
  }
  return rgba;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function iconPng() {
  const rgba = pixels();
  const raw = Buffer.alloc(SIZE * (SIZE * 4 + 1));
  for (let y = 0; y < SIZE; y++) {
    raw[y * (SIZE * 4 + 1)] = 0; // filter: none
    rgba.copy(raw, y * (SIZE * 4 + 1) + 1, y * SIZE * 4, (y + 1) * SIZE * 4);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(SIZE, 0);
  header.writeUInt32BE(SIZE, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const out = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'images', 'icon.png');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, iconPng());
console.log(`wrote ${out}`);
