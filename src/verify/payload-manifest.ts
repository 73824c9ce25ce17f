/**
 * gematik's payload `.manifest`: a sha256sum list (`<hex>  ./path` or `<hex> *path`) of the files in the
 * provisioning payload, plus `.revision`, the commit the payload was built from. The image signature
 * covers the layers and so the manifest; this check ties every staged file to it.
 *
 * Decisions:
 * - The `.manifest` line for itself is ignored: a file cannot contain its own hash.
 * - `.revision` counts as an ordinary payload file: it is verified when listed (gematik lists it) and
 *   reported as unlisted when not, so an operator can tell whether the revision shown is covered.
 * - Anything that is not a directory counts for "unlisted" (symlinks and special files too): the check
 *   is about what the payload carries, and those would be published or followed just the same.
 */
import { lstat, open, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { VerifyError, errorMessage } from '../errors.js';
import { sha256File, walkTree, type TreeEntry } from '../util/fs.js';
import { pool } from '../util/pool.js';
import type { FileCheck } from './types.js';

export const MANIFEST_FILE = '.manifest';
export const REVISION_FILE = '.revision';

/** A FileCheck of kind 'manifest'. */
export type ManifestCheck = FileCheck & { kind: 'manifest' };

export interface PayloadManifestResult {
  /** One per listed file (the self line excluded), plus one failed check per unlisted file under 'error'. */
  checks: ManifestCheck[];
  /** Payload files the manifest does not list (`.manifest` itself excluded), sorted. */
  unlisted: string[];
  /** Listed files, the self line excluded. */
  listed: number;
  /** First line of `.revision` when it is printable and at most 128 characters. */
  revision?: string;
  /** `.revision` is listed in `.manifest`, so the revision reported is covered by it. */
  revisionListed: boolean;
  warnings: string[];
}

/** A real manifest is about 1 KiB; this only stops a hostile one from exhausting memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ENTRIES = 100_000;
const MAX_REVISION_READ = 4096;
const REVISION = /^[\x20-\x7e]{1,128}$/;
/** Hashing a few files at once keeps large payloads fast without opening hundreds of descriptors. */
const PARALLEL = 4;

const LINE = /^([0-9a-fA-F]{64}) [ *]([^\n]+)$/;

/** Names come from the payload: quote any with control characters so they cannot fake a log line. */
const show = (name: string): string => (/[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name);

const manifestError = (reason: string): VerifyError => new VerifyError(`${MANIFEST_FILE}: ${reason}`, MANIFEST_FILE);

/**
 * The payload-relative path of a listed name, or a reason it is refused. Checked before any fs access:
 * `../x` or `/etc/x` would make us hash (and report on) files outside the payload, and a backslash is
 * what sha256sum uses to escape names — we do not guess what such a line meant.
 */
export function listedPath(name: string): string {
  if (name.includes('\\')) throw new Error('contains a backslash');
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new Error('contains a control character');
  if (name.startsWith('/')) throw new Error('is absolute');
  const rel = name.startsWith('./') ? name.slice(2) : name;
  const parts = rel.split('/');
  if (parts.some((p) => p === '..')) throw new Error('contains ".."');
  if (parts.some((p) => p === '' || p === '.')) throw new Error('is not a plain relative path');
  return rel;
}

/** Parse the manifest text into path → lower-case hex; the self line is dropped. */
export function parseManifest(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length > MAX_ENTRIES) throw manifestError(`has more than ${MAX_ENTRIES} lines`);
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(line);
    const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
    if (!m) throw manifestError(`line ${i + 1} is not "<sha256>  <path>": ${shown}`);
    let rel: string;
    try {
      rel = listedPath(m[2]!);
    } catch (err) {
      throw manifestError(`line ${i + 1} path ${JSON.stringify(m[2])} ${errorMessage(err)}`);
    }
    if (rel === MANIFEST_FILE) continue;
    const hex = m[1]!.toLowerCase();
    const seen = entries.get(rel);
    // Two different hashes for one file: whichever we checked, a peer might check the other.
    if (seen !== undefined && seen !== hex) throw manifestError(`lists ${rel} twice with different hashes`);
    entries.set(rel, hex);
  }
  return entries;
}

/** A regular file inside the root, never through a symlink (which could point anywhere on the host). */
async function regularFileInside(root: string, realRoot: string, rel: string): Promise<string> {
  const abs = path.join(root, rel);
  let st;
  try {
    st = await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new Error('is listed in .manifest but missing');
    }
    throw err;
  }
  if (st.isSymbolicLink()) throw new Error('is a symbolic link, not a file');
  if (!st.isFile()) throw new Error('is not a regular file');
  // lstat only covers the last component; a symlinked directory on the way would escape the root.
  const real = await realpath(abs);
  if (real !== path.join(realRoot, rel)) throw new Error('is reached through a symbolic link');
  return abs;
}

async function checkListed(root: string, realRoot: string, rel: string, expected: string): Promise<ManifestCheck> {
  try {
    const abs = await regularFileInside(root, realRoot, rel);
    const actual = await sha256File(abs);
    if (actual !== expected) {
      return { file: rel, kind: 'manifest', ok: false, signers: [], reason: `${rel}: sha256 ${actual} does not match ${expected} in .manifest (file altered)` };
    }
    return { file: rel, kind: 'manifest', ok: true, signers: [] };
  } catch (err) {
    return { file: rel, kind: 'manifest', ok: false, signers: [], reason: `${rel}: ${errorMessage(err)}` };
  }
}

/** The payload's `.revision` (first line, bounded read, printable ASCII only); problems become warnings. */
export async function readRevision(root: string, warnings: string[]): Promise<string | undefined> {
  const abs = path.join(root, REVISION_FILE);
  let st;
  try {
    st = await lstat(abs);
  } catch {
    return undefined;
  }
  if (!st.isFile()) {
    warnings.push(`${REVISION_FILE} is not a regular file; revision not reported`);
    return undefined;
  }
  const fh = await open(abs, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(MAX_REVISION_READ);
    const { bytesRead } = await fh.read(buf, 0, buf.byteLength, 0);
    text = buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
  }
  const first = (text.split('\n')[0] ?? '').replace(/\r$/, '');
  // It ends up in logs, annotations and the report: nothing that could fake a line or bloat them.
  if (!REVISION.test(first)) {
    warnings.push(`${REVISION_FILE} first line is not 1–128 printable ASCII characters; revision not reported`);
    return undefined;
  }
  return first;
}

/**
 * Verify the staged payload against its `.manifest`. Failed file checks are returned (so the report
 * names every one); a missing or malformed `.manifest` throws VerifyError. Callers publish nothing
 * unless every check is ok.
 */
/** `tree`: the staging tree's entries when the caller has walked it already. */
export async function verifyPayloadManifest(stagingRoot: string, opts: { unlisted: 'error' | 'warn' }, tree?: TreeEntry[]): Promise<PayloadManifestResult> {
  const manifestPath = path.join(stagingRoot, MANIFEST_FILE);
  let text: string;
  try {
    const st = await lstat(manifestPath);
    if (!st.isFile()) throw new Error('is not a regular file');
    if (st.size > MAX_MANIFEST_BYTES) throw new Error(`is larger than ${MAX_MANIFEST_BYTES} bytes`);
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    const msg = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing from the payload' : errorMessage(err);
    throw manifestError(msg);
  }
  const entries = parseManifest(text);
  const realRoot = await realpath(stagingRoot);

  const listed = [...entries.entries()];
  const checks: ManifestCheck[] = new Array(listed.length);
  await pool(
    listed.map((entry, i) => ({ entry, i })),
    PARALLEL,
    async ({ entry: [rel, hex], i }) => {
      checks[i] = await checkListed(stagingRoot, realRoot, rel, hex);
    },
  );

  const unlisted = (tree ?? (await walkTree(stagingRoot)))
    .filter((e) => e.type !== 'dir' && e.path !== MANIFEST_FILE && !entries.has(e.path))
    .map((e) => e.path);
  const warnings: string[] = [];
  if (unlisted.length > 0) {
    if (opts.unlisted === 'error') {
      for (const file of unlisted) checks.push({ file, kind: 'manifest', ok: false, signers: [], reason: `${show(file)}: not listed in .manifest` });
    } else {
      warnings.push(`${unlisted.length} file${unlisted.length > 1 ? 's are' : ' is'} not listed in .manifest: ${unlisted.map(show).join(', ')}`);
    }
  }
  const revision = await readRevision(stagingRoot, warnings);
  return { checks, unlisted, listed: entries.size, ...(revision !== undefined ? { revision } : {}), revisionListed: entries.has(REVISION_FILE), warnings };
}
