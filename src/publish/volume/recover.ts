/**
 * Recovery, run under the lock before every write: whatever a killed run left behind is removed — a
 * `..data_tmp` link, temp files of the status record, generation directories nothing refers to — while
 * the generation `..data` points to and the kept ones (rollback targets) stay untouched.
 *
 * Which generations are kept is decided by what `..data` pointed to (the status record's `kept` list),
 * never by name order: two publishes in one second share a timestamp, and a rollback reorders them.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PublishError } from '../../errors.js';
import type { VolumeRecord } from './record.js';
import { DATA_TMP_LINK, TEMP_PATTERN, currentGeneration, fsyncPath, listGenerations } from './layout.js';
import { removeTree } from './remove.js';

export interface RecoveryResult {
  current?: string;
  /** Current first, then the rollback targets, at most keepGenerations. */
  kept: string[];
  removed: string[];
}

export async function recoverVolume(volumeDir: string, record: VolumeRecord | undefined, keepGenerations: number): Promise<RecoveryResult> {
  let touched = false;
  const tmpLink = path.join(volumeDir, DATA_TMP_LINK);
  const tmpStat = await lstat(tmpLink).catch(() => undefined);
  if (tmpStat) {
    if (!tmpStat.isSymbolicLink()) throw new PublishError(`${tmpLink} exists and is not a symlink; refusing to touch a volume laid out by something else`);
    await rm(tmpLink);
    touched = true;
  }
  for (const name of await readdir(volumeDir)) {
    if (!TEMP_PATTERN.test(name)) continue;
    const p = path.join(volumeDir, name);
    if (!(await lstat(p)).isFile()) continue;
    await rm(p);
    touched = true;
  }

  const current = await currentGeneration(volumeDir);
  const present = await listGenerations(volumeDir);
  const kept = keptGenerations(current, record, present, keepGenerations);
  const removed: string[] = [];
  for (const g of present) {
    if (kept.includes(g)) continue;
    await removeTree(path.join(volumeDir, g));
    removed.push(g);
    touched = true;
  }
  if (touched) await fsyncPath(volumeDir);
  return { current, kept, removed };
}

/**
 * The current generation, then the record's view of the rest. If the record names another generation
 * than ..data, a run died between the swap and the record update: the record's generation is then the
 * one that was replaced, so it becomes the rollback target.
 */
function keptGenerations(current: string | undefined, record: VolumeRecord | undefined, present: string[], keep: number): string[] {
  const order: string[] = [];
  const add = (g: string | undefined): void => {
    if (g && !order.includes(g) && (g === current || present.includes(g))) order.push(g);
  };
  add(current);
  add(record?.generation);
  // Nothing else is guessed (not by name, not by mtime): an unrecorded directory may be a half-written
  // generation of a killed run, and must never become a rollback target.
  for (const g of record?.kept ?? []) add(g);
  return order.slice(0, Math.max(1, keep));
}
