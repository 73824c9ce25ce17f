/**
 * Removing a generation directory without following any symlink: a link (even one to a directory) is
 * unlinked, never entered; entry types come from readdir's d_type, so there is no stat per entry.
 *
 * Files are unlinked synchronously (10,000 tiny syscalls), directories are removed in parallel, deepest
 * first: on a filesystem mounted with `discard` an rmdir waits milliseconds for its freed block, and a
 * hundred of them one after the other doubled a republish's time.
 */
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import path from 'node:path';
import { pool } from '../../util/pool.js';

const RMDIR_CONCURRENCY = 8;

export async function removeTree(dir: string): Promise<void> {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st) return;
  // readdir would follow a symlink at the top; a link (or file) with a generation's name is unlinked.
  if (!st.isDirectory()) return unlinkSync(dir);
  const byDepth: string[][] = [];
  const empty = (d: string, depth: number): void => {
    (byDepth[depth] ??= []).push(d);
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) empty(p, depth + 1);
      else unlinkSync(p);
    }
  };
  empty(dir, 0);
  for (let depth = byDepth.length - 1; depth >= 0; depth--) await pool(byDepth[depth]!, RMDIR_CONCURRENCY, (d) => rmdir(d));
}
