/**
 * Content-addressed reads from an OCI image layout. A digest from a manifest is attacker-controlled
 * text until proven otherwise, so it is validated before it becomes part of a path, and every byte
 * read is hashed and compared with it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.js';
import type { LayoutFiles } from './layout-files.js';
import { isSha256Digest } from './reference.js';

/** Manifests, indexes and configs are small; a cap stops a hostile layout from exhausting memory. */
export const MAX_JSON_BLOB_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
  artifactType?: string;
}

/**
 * Path of a blob. Only `sha256:<64 hex>` is accepted: a digest like `sha256:../../../etc/passwd`
 * would otherwise turn into a read anywhere on the host.
 */
export function blobPath(layout: string, digest: string): string {
  return path.join(layout, blobRel(digest, layout));
}

/** Layout-relative name of a blob (`blobs/sha256/<hex>`), after the same validation. */
export function blobRel(digest: string, where: string): string {
  if (!isSha256Digest(digest)) throw new SourceError(`invalid blob digest '${digest.slice(0, 100)}' in ${where}`);
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/** Reads a small file whole, refusing more than `cap` bytes. Missing file → null. */
export async function readCapped(file: string, cap: number, what: string): Promise<Buffer | null> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SourceError(`cannot read ${what}: ${(err as Error).message}`);
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      // Read by chunks rather than trusting stat(): the size check must hold for what is read.
      if (total > cap) throw new SourceError(`${what} is larger than ${cap} bytes`);
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`cannot read ${what}: ${(err as Error).message}`);
  } finally {
    await fh.close();
  }
}

/** Reads a JSON blob (manifest, index, config) and checks its size and sha256 against `desc`. */
export async function readJsonBlob(files: LayoutFiles, desc: Descriptor, what: string): Promise<unknown> {
  const rel = blobRel(desc.digest, files.label);
  if (desc.size > MAX_JSON_BLOB_BYTES) throw new SourceError(`${what} ${desc.digest} is larger than ${MAX_JSON_BLOB_BYTES} bytes`);
  const data = await files.read(rel, MAX_JSON_BLOB_BYTES, `${what} ${desc.digest}`);
  if (data === null) throw new SourceError(`${what} blob ${desc.digest} is missing from ${files.label}`);
  const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (actual !== desc.digest) throw new SourceError(`${what} blob ${desc.digest} is corrupt (content hashes to ${actual})`);
  if (desc.size >= 0 && data.length !== desc.size) {
    throw new SourceError(`${what} blob ${desc.digest} has ${data.length} bytes, descriptor says ${desc.size}`);
  }
  return parseJson(data, `${what} ${desc.digest}`);
}

export function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new SourceError(`${what} is not valid JSON`);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates the shape of a descriptor from untrusted JSON. */
export function toDescriptor(v: unknown, what: string): Descriptor {
  if (!isRecord(v)) throw new SourceError(`${what}: descriptor is not an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string') throw new SourceError(`${what}: descriptor has no mediaType`);
  if (typeof digest !== 'string' || !isSha256Digest(digest)) {
    throw new SourceError(`${what}: descriptor digest '${String(digest).slice(0, 100)}' is not sha256:<64 hex>`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new SourceError(`${what}: descriptor ${digest} has an invalid size`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (isRecord(v.annotations)) d.annotations = stringMap(v.annotations);
  if (isRecord(v.platform)) {
    const p = v.platform;
    d.platform = {};
    if (typeof p.os === 'string') d.platform.os = p.os;
    if (typeof p.architecture === 'string') d.platform.architecture = p.architecture;
    if (typeof p.variant === 'string') d.platform.variant = p.variant;
  }
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  return d;
}

export function stringMap(v: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}
