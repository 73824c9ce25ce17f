/**
 * The per-generation manifest: path → sha256, size, inode and mtime of every published file, so a
 * republish recognises unchanged files without reading a byte of them.
 *
 * It is sharded into buckets (`..zeta-manifest/<count>-<index>.json`, files assigned by a hash of
 * their path) so that a republish with one changed file rewrites one small bucket and hardlinks the
 * rest from the current generation, exactly like the payload files: a single 10,000-file manifest
 * would cost ~1.7 MB of writes per generation, more than the changed file itself.
 *
 * The manifest is a hint, never an authority: an entry is only used for a file whose lstat still
 * shows the recorded inode, size and mtime (state.ts), and a hardlink made on its word is checked
 * again after the link (generation.ts). A missing or malformed manifest only costs re-hashing.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export const MANIFEST_DIR = '..zeta-manifest';
const MANIFEST_VERSION = 2;
/** Files per bucket aimed at: a changed file rewrites ~64 entries (~7 KB). */
const FILES_PER_BUCKET = 64;
const MAX_BUCKETS = 4096;
const BUCKET_FILE = /^(\d{1,4})-(\d{1,4})\.json$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What the manifest records per file; mode and gid come from lstat, not from here. */
export interface ManifestEntry {
  sha256: string;
  size: number;
  ino: number;
  mtimeMs: number;
}

export interface Manifest {
  buckets: number;
  entries: Map<string, ManifestEntry>;
  /** Raw text and inode of each bucket file as read: a bucket is reused only if byte-identical. */
  bucketFiles: Map<string, { text: string; ino: number }>;
}

/** Bucket count for n files; an existing count is kept while it stays within 4× of ideal, so a few added files never reshuffle every bucket. */
export function bucketCount(files: number, previous?: number): number {
  let ideal = 1;
  while (ideal * FILES_PER_BUCKET < files && ideal < MAX_BUCKETS) ideal *= 2;
  if (previous && previous <= MAX_BUCKETS && previous * 4 >= ideal && previous <= ideal * 4) return previous;
  return ideal;
}

export function bucketFileName(buckets: number, index: number): string {
  return `${buckets}-${index}.json`;
}

/** FNV-1a over the path's UTF-16 code units: stable across runs and Node versions, which is all it needs. */
export function bucketOf(p: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) {
    h ^= p.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % buckets;
}

/** Serialise one bucket deterministically (sorted paths), so equal content gives equal bytes. */
export function serializeBucket(entries: [string, ManifestEntry][]): string {
  const files: Record<string, [string, number, number, number]> = {};
  for (const [p, e] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) files[p] = [e.sha256, e.size, e.ino, e.mtimeMs];
  return JSON.stringify({ version: MANIFEST_VERSION, files }) + '\n';
}

/**
 * Bucket file name → serialised text, for the buckets `only` lists (default: all). Serialising only
 * what changed keeps a 10,000-file republish from re-encoding 1.7 MB to find one changed bucket.
 */
export function manifestBuckets(entries: Map<string, ManifestEntry>, buckets: number, only?: Set<number>): Map<string, string> {
  const grouped = new Map<number, [string, ManifestEntry][]>();
  for (let i = 0; i < buckets; i++) if (!only || only.has(i)) grouped.set(i, []);
  for (const [p, e] of entries) grouped.get(bucketOf(p, buckets))?.push([p, e]);
  return new Map([...grouped].map(([i, list]) => [bucketFileName(buckets, i), serializeBucket(list)]));
}

/**
 * Buckets whose content differs from the previous manifest's, with the same bucket count: an entry
 * carried over unchanged is the very object read from the previous manifest, so identity decides.
 */
export function changedBuckets(entries: Map<string, ManifestEntry>, buckets: number, previous: Manifest): Set<number> {
  const changed = new Set<number>();
  for (const [p, e] of entries) if (previous.entries.get(p) !== e) changed.add(bucketOf(p, buckets));
  for (const p of previous.entries.keys()) if (!entries.has(p)) changed.add(bucketOf(p, buckets));
  return changed;
}

/**
 * Read a generation's manifest; undefined when absent or not exactly what we write (a complete set of
 * buckets of one count, each well-formed). A symlink or other non-regular entry makes the whole
 * manifest invalid, and bucket files are opened with O_NOFOLLOW.
 */
export function readManifest(genDir: string): Manifest | undefined {
  const dir = path.join(genDir, MANIFEST_DIR);
  let dirents;
  try {
    dirents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  let buckets: number | undefined;
  const seen = new Set<number>();
  const entries = new Map<string, ManifestEntry>();
  const bucketFiles = new Map<string, { text: string; ino: number }>();
  try {
    for (const d of dirents) {
      const m = BUCKET_FILE.exec(d.name);
      if (!m || !d.isFile()) return undefined;
      const count = Number(m[1]);
      const index = Number(m[2]);
      if (buckets === undefined) buckets = count;
      if (count !== buckets || count < 1 || count > MAX_BUCKETS || index >= count || d.name !== bucketFileName(count, index)) return undefined;
      seen.add(index);
      const { text, ino } = readNoFollow(path.join(dir, d.name));
      const parsed = JSON.parse(text) as { version?: unknown; files?: unknown };
      if (parsed.version !== MANIFEST_VERSION || typeof parsed.files !== 'object' || parsed.files === null) return undefined;
      for (const [p, v] of Object.entries(parsed.files as Record<string, unknown>)) {
        const e = entryOf(v);
        if (!e) return undefined;
        entries.set(p, e);
      }
      bucketFiles.set(d.name, { text, ino });
    }
  } catch {
    return undefined;
  }
  if (buckets === undefined || seen.size !== buckets) return undefined;
  return { buckets, entries, bucketFiles };
}

function readNoFollow(file: string): { text: string; ino: number } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return { ino: fstatSync(fd).ino, text: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

function entryOf(v: unknown): ManifestEntry | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [sha256, size, ino, mtimeMs] = v as unknown[];
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return undefined;
  if (![size, ino, mtimeMs].every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) return undefined;
  return { sha256, size: size as number, ino: ino as number, mtimeMs: mtimeMs as number };
}
