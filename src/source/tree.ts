/**
 * File-system helpers for trees on disk that this process did not build (`dir:` sources), where the
 * state must be read back with lstat. Layers are applied against the in-memory mirror of path-tree.ts.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { joinRel } from './paths.js';

/** Linux's MAXSYMLINKS; more hops than this is a loop (or an attempt to make us spin). */
export const MAX_LINK_HOPS = 40;

export function absIn(root: string, rel: string): string {
  return rel === '' ? root : path.join(root, rel);
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Resolves `target` (read from directory `baseDir`) the way the kernel would, following symlinks
 * already in the tree, and reports whether it stays inside the root. A purely lexical check is not
 * enough: with `sub/up -> ..` in place, `sub/up/..` is lexically `sub` but physically the parent of
 * the root. Components that do not exist yet are taken lexically; the final sweep over the finished
 * tree re-checks every link, so a component created later cannot change the verdict unnoticed.
 */
export async function staysInside(root: string, baseDir: string, target: string): Promise<boolean> {
  if (target.startsWith('/')) return false;
  const stack = baseDir === '' ? [] : baseDir.split('/');
  let pending = target.split('/');
  let hops = 0;
  while (pending.length > 0) {
    const seg = pending.shift() as string;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) return false;
      stack.pop();
      continue;
    }
    stack.push(seg);
    const abs = absIn(root, stack.join('/'));
    const st = await lstatOrNull(abs);
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) return false;
      const link = await fs.readlink(abs);
      if (link.startsWith('/')) return false;
      stack.pop();
      pending = [...link.split('/'), ...pending];
    }
  }
  return true;
}

export interface TreeStats {
  files: number;
  bytes: number;
}

/**
 * Walks the finished tree: re-checks every symlink against the final state (see staysInside),
 * applies the recorded directory modes deepest first (they were kept owner-writable while layers
 * were applied, so a read-only directory in a lower layer cannot block a later whiteout) and
 * counts regular files.
 */
export async function finishTree(root: string, dirModes: Map<string, number>): Promise<TreeStats & { escapingLink?: string }> {
  const stats: TreeStats = { files: 0, bytes: 0 };
  const dirs: string[] = [];
  let escapingLink: string | undefined;
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(absIn(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const childRel = joinRel(rel, e.name);
      if (e.isDirectory()) {
        dirs.push(childRel);
        await walk(childRel);
      } else if (e.isSymbolicLink()) {
        const target = await fs.readlink(absIn(root, childRel));
        if (escapingLink === undefined && !(await staysInside(root, rel, target))) escapingLink = childRel;
      } else if (e.isFile()) {
        stats.files++;
        stats.bytes += (await fs.lstat(absIn(root, childRel))).size;
      }
    }
  };
  await walk('');
  if (escapingLink !== undefined) return { ...stats, escapingLink };
  dirs.sort((a, b) => b.length - a.length);
  for (const d of dirs) {
    const mode = dirModes.get(d);
    if (mode !== undefined) await fs.chmod(absIn(root, d), mode);
  }
  return stats;
}
