/**
 * The files of an OCI image layout, wherever they are: a directory (`oci-layout:`) or a tar archive
 * (`oci-archive:`, read by byte range without unpacking). Names are layout-relative (`index.json`,
 * `blobs/sha256/<hex>`).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { SourceError } from '../errors.js';
import { readCapped } from './blobs.js';
import { readEntry, type TarIndex } from './tar-index.js';

export interface LayoutFiles {
  /** For messages: the directory or archive path. */
  label: string;
  /** Whole small file, at most `cap` bytes; null when absent. */
  read(rel: string, cap: number, what: string): Promise<Buffer | null>;
  /** Size of a regular file, or null when absent. */
  size(rel: string): Promise<number | null>;
  open(rel: string): Promise<Readable>;
}

export function directoryFiles(dir: string): LayoutFiles {
  return {
    label: dir,
    read: (rel, cap, what) => readCapped(path.join(dir, rel), cap, what),
    size: async (rel) => {
      const st = await fs.stat(path.join(dir, rel)).catch(() => null);
      return st?.isFile() ? st.size : null;
    },
    open: async (rel) => createReadStream(path.join(dir, rel)),
  };
}

export function archiveFiles(index: TarIndex): LayoutFiles {
  return {
    label: index.file,
    read: async (rel, cap, what) => {
      const e = index.entries.get(rel);
      if (!e) return null;
      if (e.size > cap) throw new SourceError(`${what} is larger than ${cap} bytes`);
      const chunks: Buffer[] = [];
      for await (const c of readEntry(index, rel)!) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    size: async (rel) => index.entries.get(rel)?.size ?? null,
    open: async (rel) => {
      const stream = readEntry(index, rel);
      if (!stream) throw new SourceError(`${rel} is missing from ${index.file}`);
      return stream;
    },
  };
}
