/**
 * Content hash of a watched directory as its consumer sees it: every file reachable through the
 * top-level names (links followed, `..`-prefixed bookkeeping skipped). When the directory uses the
 * `..data` scheme (kubelet's ConfigMap volumes, our publisher), the generation `..data` points to is
 * resolved once and walked, so a swap in the middle of a walk cannot mix two generations into one hash.
 * A file's digest is cached by (device, inode, size, mtime), so polling a large volume re-reads only
 * files that changed — the publisher hard-links unchanged files into a new generation, keeping the inode.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../util/fs.js';

export interface FileDigest {
  /** Path relative to the watched directory, POSIX separators. */
  path: string;
  sha256: string;
}

/** sha256 over the sorted (path, digest) list; a rename changes it as much as an edit does. */
export function combineDigests(files: FileDigest[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) h.update(`${f.path}\0${f.sha256}\n`);
  return `sha256:${h.digest('hex')}`;
}

/** Hidden bookkeeping of kubelet and of our publisher (`..data`, `..2026_…`, locks, status). */
export function isBookkeeping(name: string): boolean {
  return name.startsWith('..');
}

/** Bounds the walk: a link loop or a runaway tree must not keep the sidecar busy forever. */
const MAX_FILES = 200_000;
const MAX_DEPTH = 64;

export class DirectoryHasher {
  /** `dev:ino:size:mtime` → sha256 hex, for the files seen in the last walk. */
  private cache = new Map<string, string>();

  constructor(private readonly dir: string) {}

  async hash(): Promise<string> {
    const files: FileDigest[] = [];
    const seen = new Map<string, string>();
    const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
      if (depth > MAX_DEPTH) throw new Error(`${abs}: deeper than ${MAX_DEPTH} levels (a link loop?)`);
      for (const name of (await readdir(abs)).sort()) {
        if (depth === 0 && isBookkeeping(name)) continue;
        const childAbs = path.join(abs, name);
        const childRel = rel ? `${rel}/${name}` : name;
        // stat follows links: the consumer reads through them. A dangling link is simply absent.
        const st = await stat(childAbs).catch(() => undefined);
        if (!st) continue;
        if (st.isDirectory()) await walk(childAbs, childRel, depth + 1);
        else if (st.isFile()) {
          if (files.length >= MAX_FILES) throw new Error(`${this.dir}: more than ${MAX_FILES} files`);
          const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
          const sha256 = seen.get(key) ?? this.cache.get(key) ?? (await sha256File(childAbs));
          seen.set(key, sha256);
          files.push({ path: childRel, sha256 });
        }
      }
    };
    await walk(await this.root(), '', 0);
    this.cache = seen;
    return combineDigests(files);
  }

  /**
   * When the content seen now became current (ms since the epoch), as late as it can be told: call it
   * after hash(), so a swap in between only makes the answer later (the safe side).
   *
   * With `..data` it is the link's ctime. The swap renames a new link over `..data`, and rename sets
   * the ctime (ext4, xfs, tmpfs; measured here), as does a rollback to an older generation. The
   * alternatives are earlier than the swap or forgeable: the link's mtime is when `..data_tmp` was
   * made, a generation's mtime is when its last file was written (an old one for a rollback), and
   * `cp -a`, tar or utimensat set any mtime. A ctime only the kernel sets. Without `..data` it is the
   * newest ctime of the directory and everything reachable in it: every write, rename, add or remove
   * moves one of those. On NFS the ctime is the server's clock; a server running behind narrows the
   * margin decideAtStart keeps (README: the reload sidecar).
   */
  async contentTime(): Promise<number | undefined> {
    const link = await lstat(path.join(this.dir, '..data')).catch(() => undefined);
    if (link?.isSymbolicLink() && (await this.root()) !== this.dir) return link.ctimeMs;
    let newest = -Infinity;
    let count = 0;
    let complete = true;
    const walk = async (abs: string, depth: number): Promise<void> => {
      if (depth > MAX_DEPTH || ++count > MAX_FILES) {
        complete = false;
        return;
      }
      const st = await stat(abs).catch(() => undefined);
      if (!st) return;
      newest = Math.max(newest, st.ctimeMs);
      if (!st.isDirectory()) return;
      for (const name of await readdir(abs).catch(() => [])) if (!(depth === 0 && isBookkeeping(name))) await walk(path.join(abs, name), depth + 1);
    };
    await walk(this.dir, 0);
    // A subdirectory of a swapped volume (runWatch warns about it) reads through the parent's `..data`.
    const parentLink = await lstat(path.join(this.dir, '..', '..data')).catch(() => undefined);
    if (parentLink?.isSymbolicLink()) newest = Math.max(newest, parentLink.ctimeMs);
    // Bounds hit: some entry was not looked at, so the time is not known.
    return !complete || newest === -Infinity ? undefined : newest;
  }

  /** The generation behind `..data` when there is one, else the directory itself. */
  private async root(): Promise<string> {
    const generation = await realpath(path.join(this.dir, '..data')).catch(() => undefined);
    if (generation && (await stat(generation).catch(() => undefined))?.isDirectory()) return generation;
    return this.dir;
  }
}
