/**
 * Random access into a tar archive (oci-archive, docker-archive) without unpacking it: one pass over
 * the headers records where each regular file's bytes are; blobs are then streamed by byte range.
 * Names here are lookup keys only — nothing is ever written to disk under them.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { SourceError } from '../errors.js';
import { SourceNotFoundError } from './types.js';

export interface TarEntry {
  offset: number;
  size: number;
}

export interface TarIndex {
  file: string;
  entries: Map<string, TarEntry>;
}

const BLOCK = 512;
const MAX_ENTRIES = 100_000;
const MAX_META = 1024 * 1024;

export async function indexTar(file: string, label: string): Promise<TarIndex> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SourceNotFoundError(`source not found: ${label}`);
    throw new SourceError(`cannot read ${label}: ${(err as Error).message}`);
  }
  try {
    const total = (await fh.stat()).size;
    const entries = new Map<string, TarEntry>();
    const links = new Map<string, string>();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pending: { path?: string; size?: number } = {};
    let ended = false;
    while (pos + BLOCK <= total) {
      await readExactly(fh, header, pos, label);
      if (header.every((b) => b === 0)) {
        ended = true;
        break;
      }
      const h = parseHeader(header, label, pos);
      const size = pending.size ?? h.size;
      const dataStart = pos + BLOCK;
      if (dataStart + size > total) throw new SourceError(`${label}: truncated archive (entry at byte ${pos} runs past the end)`);
      if (h.type === 'x' || h.type === 'L') {
        if (size > MAX_META) throw new SourceError(`${label}: oversized tar metadata at byte ${pos}`);
        const meta = Buffer.alloc(size);
        await readExactly(fh, meta, dataStart, label);
        pending = h.type === 'L' ? { ...pending, path: meta.toString('utf8').replace(/\0.*$/s, '') } : { ...pending, ...parsePax(meta) };
      } else {
        const name = normalize(pending.path ?? h.name);
        if (h.type === '0' || h.type === '\0' || h.type === '7') entries.set(name, { offset: dataStart, size });
        else if (h.type === '2' || h.type === '1')
          links.set(name, h.type === '2' ? path.posix.join(path.posix.dirname(name), h.linkname) : normalize(h.linkname));
        pending = {};
        if (entries.size + links.size > MAX_ENTRIES) throw new SourceError(`${label}: more than ${MAX_ENTRIES} entries`);
      }
      pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
    // Image archives are written whole; one that stops between entries lost its tail (index.json, …).
    if (!ended) throw new SourceError(`${label}: truncated archive (no end-of-archive marker)`);
    // docker-archive keeps legacy `<id>/layer.tar` symlinks to the real layer files.
    for (const [name, target] of links) {
      const hit = entries.get(normalize(target));
      if (hit) entries.set(name, hit);
    }
    return { file, entries };
  } finally {
    await fh.close();
  }
}

export function readEntry(index: TarIndex, name: string): Readable | undefined {
  const e = index.entries.get(name);
  if (!e) return undefined;
  return e.size === 0 ? Readable.from([]) : createReadStream(index.file, { start: e.offset, end: e.offset + e.size - 1 });
}

interface Header {
  name: string;
  size: number;
  type: string;
  linkname: string;
}

/** Pure: whether a 512-byte block is a tar header, by its checksum (the checksum field counts as spaces). */
export function headerChecksumOk(b: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return parseOctal(b.subarray(148, 156)) === sum;
}

/** Pure: one 512-byte ustar/GNU header, checksum verified so a non-tar file fails clearly. */
export function parseHeader(b: Buffer, label: string, pos: number): Header {
  if (!headerChecksumOk(b)) throw new SourceError(`${label}: not a tar archive (bad header checksum at byte ${pos})`);
  const cstr = (s: number, n: number): string =>
    b
      .subarray(s, s + n)
      .toString('utf8')
      .replace(/\0.*$/s, '');
  const magic = cstr(257, 6);
  const prefix = magic.startsWith('ustar') ? cstr(345, 155) : '';
  const name = prefix ? `${prefix}/${cstr(0, 100)}` : cstr(0, 100);
  // Base-256 (GNU) sizes set the top bit; anything that large is not a trust payload.
  if (b[124]! & 0x80) throw new SourceError(`${label}: entry at byte ${pos} declares a size beyond 8 GiB`);
  return { name, size: parseOctal(b.subarray(124, 136)), type: String.fromCharCode(b[156]!), linkname: cstr(157, 100) };
}

function parseOctal(field: Buffer): number {
  const text = field
    .toString('ascii')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

function parsePax(buf: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < buf.length) {
    const space = buf.indexOf(0x20, i);
    if (space === -1) break;
    const len = Number(buf.subarray(i, space).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= 0 || i + len > buf.length) break;
    const record = buf.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    if (key === 'size' && /^\d+$/.test(value)) out.size = Number(value);
    i += len;
  }
  return out;
}

function normalize(name: string): string {
  return path.posix.normalize(name.replace(/^(\.\/)+/, '')).replace(/\/$/, '');
}

async function readExactly(fh: fs.FileHandle, buf: Buffer, position: number, label: string): Promise<void> {
  const { bytesRead } = await fh.read(buf, 0, buf.length, position);
  if (bytesRead !== buf.length) throw new SourceError(`${label}: truncated archive at byte ${position}`);
}
