/**
 * File-system helpers for building the staging tree. Every path handed in is tree-relative and
 * already passed paths.ts; these helpers add the checks that need the current state of the tree
 * (which components are symlinks) so a sequence of individually harmless entries cannot escape.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ancestorsOf, joinRel, UnsafeNameError } from './paths.js';

/** Linux's MAXSYMLINKS; more hops than this is a loop (or an attempt to make us spin). */
const MAX_LINK_HOPS = 40;

export function absIn(root: string, rel: string): string {
  return rel === '' ? root : path.join(root, rel);
}

export async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (isNoEnt(err)) return null;
    throw err;
  }
}

export function isNoEnt(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Refuses when any ancestor of `rel` is a symlink or a non-directory. This is what stops the
 * two-step escape `etc -> /` followed by `etc/passwd`: the kernel would follow the link on open,
 * so the check must happen on our side, against the tree as it is now.
 * With `create`, missing ancestors are created (mode 0755, implicit directories of the tar).
 * Returns false when an ancestor is missing and `create` is off.
 */
export async function checkAncestors(root: string, rel: string, create: boolean, known?: KnownDirs): Promise<boolean> {
  for (const anc of ancestorsOf(rel)) {
    if (known?.has(anc)) continue;
    const abs = absIn(root, anc);
    const st = await lstatOrNull(abs);
    if (st === null) {
      if (!create) return false;
      await fs.mkdir(abs, { mode: 0o755 });
      known?.add(anc);
      continue;
    }
    if (st.isSymbolicLink()) throw new UnsafeNameError(`parent '${anc}' is a symlink`);
    if (!st.isDirectory()) throw new UnsafeNameError(`parent '${anc}' is not a directory`);
    known?.add(anc);
  }
  return true;
}

/**
 * Tree-relative paths seen to be real directories (lstat or our own mkdir), so the ancestor check of
 * the next entry in the same directory costs no system call. Only our own unpack changes the tree,
 * and a directory can only stop being one through a removal, so every removal empties the whole set
 * (see EntryApplier.remove): the cache can never vouch for a name that is now a symlink or a file.
 */
export type KnownDirs = Set<string>;

/**
 * For whiteouts: true when every ancestor of `rel` is a real directory, false when one is missing or
 * is a regular file (nothing can lie below it, so there is nothing to hide; `umoci repack` writes
 * `swap/.wh.f` after turning directory `swap` into a file). A symlinked ancestor is still refused:
 * removing through it would delete outside the tree.
 */
export async function whiteoutParentExists(root: string, rel: string): Promise<boolean> {
  for (const anc of ancestorsOf(rel)) {
    const st = await lstatOrNull(absIn(root, anc));
    if (st === null) return false;
    if (st.isSymbolicLink()) throw new UnsafeNameError(`parent '${anc}' is a symlink`);
    if (!st.isDirectory()) return false;
  }
  return true;
}

/** Removes whatever is at `abs` (file, symlink itself, or whole subtree); never follows links. */
export async function removePath(abs: string): Promise<void> {
  await fs.rm(abs, { recursive: true, force: true });
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
export async function finishTree(
  root: string,
  dirModes: Map<string, number>,
): Promise<TreeStats & { escapingLink?: string }> {
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
