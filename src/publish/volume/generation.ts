/**
 * Writes one new generation directory. Files whose content, mode and group match a file of the current
 * generation are hardlinked to it (no bytes written); the rest are copied from the staging tree. A
 * linked inode is never chmod'ed or chown'ed — that would change the live generation too — so a file
 * whose mode or group must change is copied instead.
 *
 * Linking is synchronous and copying is a pool of async copies: 10,000 links are 10,000 tiny syscalls
 * (as thread-pool round trips they cost several times as much), while copies are worth overlapping
 * with each other's fsync.
 */
import { Stats, chmodSync, chownSync, constants, linkSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { copyFile, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { VolumeFile } from '../../process/types.js';
import { sha256File } from '../../util/fs.js';
import { fsyncPath } from './layout.js';
import { pool } from '../../util/pool.js';
import { MANIFEST_DIR, bucketCount, bucketFileName, changedBuckets, manifestBuckets, type ManifestEntry } from './manifest.js';
import type { ReuseCandidates } from './state.js';

/** The filesystem calls that tests replace to inject EXDEV or ENOSPC. */
export interface VolumeFsOps {
  link: (existing: string, target: string) => void;
  copyFile: (src: string, dest: string, mode: number) => Promise<void>;
}

export const realFsOps: VolumeFsOps = { link: linkSync, copyFile };

export interface GenerationOptions {
  fileMode: number;
  dirMode: number;
  gid?: number;
  concurrency: number;
  fs: VolumeFsOps;
}

export interface GenerationWriteResult {
  bytesWritten: number;
  linked: number;
  copied: number;
}

/** Link errors that mean "this filesystem cannot link here", not "something is wrong". */
const LINK_FALLBACK = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export async function writeGeneration(
  genDir: string,
  files: VolumeFile[],
  currentDir: string | undefined,
  current: ReuseCandidates,
  opts: GenerationOptions,
): Promise<GenerationWriteResult> {
  const result: GenerationWriteResult = { bytesWritten: 0, linked: 0, copied: 0 };
  const dirs = makeDirs(genDir, files, opts);
  const entries = new Map<string, ManifestEntry>();

  const toCopy: VolumeFile[] = [];
  const toHash: { f: VolumeFile; st: Stats }[] = [];
  const realDir = realDirCheck(currentDir);
  const linked = (f: VolumeFile, entry: ManifestEntry): void => {
    entries.set(f.path, entry);
    result.linked++;
  };
  for (const f of files) {
    const old = current.files.get(f.path);
    const reusable = currentDir && old && old.sha256 === f.sha256 && old.size === f.size && realDir(parentOf(f.path));
    // Plain concatenation: paths are validated (relative, no empty, "." or ".." segments), and
    // path.join's normalisation was a tenth of a 10,000-file republish.
    const outcome = reusable ? linkVerified(`${currentDir}/${f.path}`, `${genDir}/${f.path}`, old, opts) : undefined;
    // The manifest's own entry object, so the manifest writer sees by identity that it is unchanged.
    if (outcome === 'same') linked(f, old!);
    else if (outcome instanceof Stats) toHash.push({ f, st: outcome });
    else toCopy.push(f);
  }
  // Linked, but not the inode the manifest recorded (the volume was restored from a backup or copied
  // with cp -a): the content we now hold a link to decides. Costs a read, only in that case.
  await pool(toHash, opts.concurrency, async ({ f, st }) => {
    const dest = path.join(genDir, f.path);
    if ((await sha256File(dest)) === f.sha256) return linked(f, { sha256: f.sha256, size: f.size, ino: st.ino, mtimeMs: st.mtimeMs });
    unlinkSync(dest);
    toCopy.push(f);
  });

  await pool(toCopy, opts.concurrency, async (f) => {
    const dest = path.join(genDir, f.path);
    // COPYFILE_EXCL: the generation is brand new, so an existing file here means someone raced us.
    await opts.fs.copyFile(f.source, dest, constants.COPYFILE_EXCL);
    const fh = await open(dest, 'r');
    try {
      if (opts.gid !== undefined) await fh.chown(-1, opts.gid);
      await fh.chmod(opts.fileMode);
      await fh.sync();
      const st = await fh.stat();
      entries.set(f.path, { sha256: f.sha256, size: st.size, ino: st.ino, mtimeMs: st.mtimeMs });
    } finally {
      await fh.close();
    }
    result.copied++;
    result.bytesWritten += f.size;
  });

  await writeManifest(genDir, entries, currentDir, current, opts);
  // Every entry must be durable before ..data can point here; the order among directories does not
  // matter because nothing refers to this generation until the swap.
  await pool(dirs, opts.concurrency, fsyncPath);
  return result;
}

/** The generation's directories (the caller made genDir; parents first, synchronously: cheap, and nothing races on mkdir). */
function makeDirs(genDir: string, files: VolumeFile[], opts: GenerationOptions): string[] {
  const relDirs = new Set<string>();
  for (const f of files) {
    for (let d = parentOf(f.path); d !== '' && !relDirs.has(d); d = parentOf(d)) relDirs.add(d);
  }
  const dirs = [genDir, ...[...relDirs].sort((a, b) => a.length - b.length).map((d) => `${genDir}/${d}`), `${genDir}/${MANIFEST_DIR}`];
  for (const d of dirs) {
    if (d !== genDir) mkdirSync(d, { mode: opts.dirMode });
    // chown first: a chown may clear set-id bits, the chmod after it sets exactly the configured mode
    // (mkdir's mode is filtered by the umask; the configured mode is what consumers rely on).
    if (opts.gid !== undefined) chownSync(d, -1, opts.gid);
    chmodSync(d, opts.dirMode);
  }
  return dirs;
}

/** "a/b/c" → "a/b", "c" → "". */
function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

/**
 * link(2) resolves every directory on the way to `existing`. The candidates come from the manifest,
 * not from a walk, so each directory of the current generation is checked (once, by lstat) to be a
 * real directory: a symlink someone put there would lead the link to any file on the node.
 */
function realDirCheck(currentDir: string | undefined): (relDir: string) => boolean {
  const known = new Map<string, boolean>();
  const check = (relDir: string): boolean => {
    if (!currentDir) return false;
    if (relDir === '') return true;
    let ok = known.get(relDir);
    if (ok === undefined) {
      ok = check(parentOf(relDir)) && lstatSync(`${currentDir}/${relDir}`, { throwIfNoEntry: false })?.isDirectory() === true;
      known.set(relDir, ok);
    }
    return ok;
  };
  return check;
}

/**
 * Hardlink `existing` to `target` and check the new entry: a regular file (link(2) links a symlink
 * itself, never its target) with the size, mode and group wanted — a linked inode is shared with the
 * live generation, so it is never chmod'ed. 'same' when it is also the inode and mtime the manifest
 * recorded; its Stats when only those differ (to be hashed); undefined when it is unusable (removed again).
 */
function linkVerified(existing: string, target: string, old: ManifestEntry, opts: GenerationOptions): 'same' | Stats | undefined {
  try {
    opts.fs.link(existing, target);
  } catch (err) {
    if (LINK_FALLBACK.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
  const st = lstatSync(target);
  const usable = st.isFile() && st.size === old.size && (st.mode & 0o7777) === opts.fileMode && (opts.gid === undefined || st.gid === opts.gid);
  if (!usable) {
    unlinkSync(target);
    return undefined;
  }
  return st.ino === old.ino && st.mtimeMs === old.mtimeMs ? 'same' : st;
}

/**
 * Buckets identical to the current generation's are hardlinked (checked to be the inode that was
 * read); the others are written. They are not fsynced one by one: a bucket lost to a power cut only
 * makes the manifest invalid, which costs re-hashing once, never a wrong reuse.
 */
async function writeManifest(
  genDir: string,
  entries: Map<string, ManifestEntry>,
  currentDir: string | undefined,
  current: ReuseCandidates,
  opts: GenerationOptions,
): Promise<void> {
  const previous = current.manifest;
  const count = bucketCount(entries.size, previous?.buckets);
  const reusable = currentDir && previous?.buckets === count ? previous : undefined;
  const changed = reusable ? changedBuckets(entries, count, reusable) : undefined;
  const toWrite: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    if (!reusable || changed!.has(i)) continue;
    const name = bucketFileName(count, i);
    const old = reusable.bucketFiles.get(name)!;
    const target = `${genDir}/${MANIFEST_DIR}/${name}`;
    if (!linkBucket(`${currentDir}/${MANIFEST_DIR}/${name}`, target, old.ino, opts.fs)) toWrite.push([target, old.text]);
  }
  for (const [name, text] of manifestBuckets(entries, count, changed)) toWrite.push([`${genDir}/${MANIFEST_DIR}/${name}`, text]);
  await pool(toWrite, opts.concurrency, async ([target, text]) => {
    await writeFile(target, text, { flag: 'wx', mode: opts.fileMode });
  });
}

function linkBucket(existing: string, target: string, ino: number, fs: VolumeFsOps): boolean {
  try {
    fs.link(existing, target);
  } catch (err) {
    if (LINK_FALLBACK.has((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
  const st = lstatSync(target);
  if (st.isFile() && st.ino === ino) return true;
  unlinkSync(target);
  return false;
}
