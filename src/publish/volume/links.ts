/**
 * Top-level links `NAME -> ..data/NAME` and the `..data` swap. New links are created before the swap
 * (they dangle until then, so readers see exactly the old set) and stale ones are removed after it
 * (they dangle from the swap on, so readers see exactly the new set).
 */
import { lstat, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { PublishError } from '../../errors.js';
import { DATA_LINK, DATA_TMP_LINK, fsyncPath } from './layout.js';

function isOurLink(target: string, name: string): boolean {
  return target === `${DATA_LINK}/${name}`;
}

/** A top-level name we are about to link must not be a file, directory or link someone else made. */
export async function refuseForeignTopLevel(volumeDir: string, names: Iterable<string>): Promise<void> {
  for (const name of names) {
    const p = path.join(volumeDir, name);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (!st.isSymbolicLink() || !isOurLink(await readlink(p), name)) {
      throw new PublishError(`${p} exists and was not created by zeta-provision; move it away or choose another volume directory`);
    }
  }
}

export async function addTopLevelLinks(volumeDir: string, names: Iterable<string>): Promise<number> {
  let created = 0;
  for (const name of names) {
    const p = path.join(volumeDir, name);
    if (await lstat(p).catch(() => undefined)) continue;
    await symlink(`${DATA_LINK}/${name}`, p);
    created++;
  }
  return created;
}

/** Remove only links of ours (exactly `..data/<name>`) for names the new generation lacks. */
export async function removeStaleLinks(volumeDir: string, names: Set<string>): Promise<number> {
  let removed = 0;
  for (const name of await readdir(volumeDir)) {
    if (name.startsWith('..') || names.has(name)) continue;
    const p = path.join(volumeDir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink() && isOurLink(await readlink(p), name)) {
      await rm(p);
      removed++;
    }
  }
  return removed;
}

/** The swap: a fresh symlink renamed over ..data is atomic on POSIX filesystems. */
export async function swapData(volumeDir: string, generation: string): Promise<void> {
  const tmpLink = path.join(volumeDir, DATA_TMP_LINK);
  await rm(tmpLink, { force: true });
  await symlink(generation, tmpLink);
  await rename(tmpLink, path.join(volumeDir, DATA_LINK));
  await fsyncPath(volumeDir);
}

export function topLevelNames(paths: Iterable<string>): Set<string> {
  return new Set([...paths].map((p) => p.split('/')[0]!));
}
