/**
 * Volume publishing with the kubelet's ConfigMap-volume scheme: every publish writes a complete new
 * generation directory `..<UTC time>.<random>/`, then one atomic rename swaps the `..data` symlink to
 * it. Top-level names are symlinks `name -> ..data/name`, so a consumer that mounts the directory
 * sees either the whole old set or the whole new set, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, readlink, rename, rm, symlink, chmod } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../errors.js';
import type { VolumeFile } from '../process/types.js';
import { pathExists, sha256File, walkTree } from '../util/fs.js';

export const DATA_LINK = '..data';
const DATA_TMP_LINK = '..data_tmp';
const GENERATION_PATTERN = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]{8}$/;

/** Files of the current generation (path → sha256), or an empty map for a new volume. */
export async function readVolumeState(volumeDir: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  const generation = await currentGeneration(volumeDir);
  if (!generation) return state;
  const root = path.join(volumeDir, generation);
  for (const entry of await walkTree(root)) {
    if (entry.type === 'file') state.set(entry.path, await sha256File(path.join(root, entry.path)));
  }
  return state;
}

/** Name of the generation `..data` points to, if it is one of ours. */
export async function currentGeneration(volumeDir: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(path.join(volumeDir, DATA_LINK));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL') throw new PublishError(`${volumeDir}/${DATA_LINK} exists but is not a symlink; refusing to touch a volume laid out by something else`);
    throw new PublishError(`cannot read ${volumeDir}/${DATA_LINK}: ${errorMessage(err)}`);
  }
  // Only a plain relative generation name is ours; anything else could point anywhere on the node.
  if (!GENERATION_PATTERN.test(target)) throw new PublishError(`${volumeDir}/${DATA_LINK} points to "${target}", which is not a zeta-provision generation`);
  return target;
}

export interface VolumePublishResult {
  generation: string;
  files: number;
  bytesWritten: number;
  removedGenerations: string[];
}

export async function publishVolume(volumeDir: string, files: VolumeFile[]): Promise<VolumePublishResult> {
  try {
    await mkdir(volumeDir, { recursive: true });
    const topLevel = new Set(files.map((f) => f.path.split('/')[0]!));
    await refuseForeignTopLevel(volumeDir, topLevel);

    const previous = await currentGeneration(volumeDir);
    const generation = newGenerationName(new Date());
    const genDir = path.join(volumeDir, generation);
    await mkdir(genDir, { mode: 0o755 });
    let bytesWritten = 0;
    const dirs = new Set<string>([genDir]);
    for (const f of files) {
      const dest = path.join(genDir, f.path);
      const parent = path.dirname(dest);
      if (!dirs.has(parent)) {
        await mkdir(parent, { recursive: true, mode: 0o755 });
        for (let d = parent; d.length > genDir.length; d = path.dirname(d)) dirs.add(d);
      }
      // COPYFILE_EXCL: the generation is brand new, so an existing file here means someone raced us.
      await copyFile(f.source, dest, constants.COPYFILE_EXCL);
      await chmod(dest, 0o644);
      await fsyncPath(dest);
      bytesWritten += f.size;
    }
    // Directories deepest first, so every entry is durable before its parent is.
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsyncPath(d);

    // The swap: a fresh symlink renamed over ..data is atomic on POSIX filesystems.
    const tmpLink = path.join(volumeDir, DATA_TMP_LINK);
    await rm(tmpLink, { force: true });
    await symlink(generation, tmpLink);
    await rename(tmpLink, path.join(volumeDir, DATA_LINK));
    await fsyncPath(volumeDir);

    await syncTopLevelLinks(volumeDir, topLevel);
    const removedGenerations = await removeOldGenerations(volumeDir, [generation, previous]);
    await fsyncPath(volumeDir);
    return { generation, files: files.length, bytesWritten, removedGenerations };
  } catch (err) {
    if (err instanceof PublishError) throw err;
    throw new PublishError(`publishing to volume ${volumeDir} failed: ${errorMessage(err)}`, undefined, { cause: err });
  }
}

export function newGenerationName(now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}`;
  return `..${stamp}.${randomBytes(4).toString('hex')}`;
}

/** A top-level name we are about to link must not be a file or directory someone else put there. */
async function refuseForeignTopLevel(volumeDir: string, names: Set<string>): Promise<void> {
  for (const name of names) {
    const p = path.join(volumeDir, name);
    if (!(await pathExists(p))) continue;
    const st = await lstat(p);
    if (!st.isSymbolicLink() || (await readlink(p)) !== `${DATA_LINK}/${name}`) {
      throw new PublishError(`${p} exists and was not created by zeta-provision; move it away or choose another volume directory`);
    }
  }
}

async function syncTopLevelLinks(volumeDir: string, names: Set<string>): Promise<void> {
  for (const name of names) {
    const p = path.join(volumeDir, name);
    if (await pathExists(p)) continue;
    await symlink(`${DATA_LINK}/${name}`, p);
  }
  // Remove only links of ours (exactly `..data/<name>`) whose target is gone; leave everything else.
  for (const name of await readdir(volumeDir)) {
    if (name.startsWith('..') || names.has(name)) continue;
    const p = path.join(volumeDir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink() && (await readlink(p)) === `${DATA_LINK}/${name}`) await rm(p);
  }
}

/**
 * Keep the new generation and the one it replaced (rollback target); remove every other generation.
 * Decided by what ..data pointed to, not by name order: two publishes in one second share a timestamp.
 */
async function removeOldGenerations(volumeDir: string, keep: (string | undefined)[]): Promise<string[]> {
  const doomed = (await readdir(volumeDir)).filter((n) => GENERATION_PATTERN.test(n) && !keep.includes(n)).sort();
  for (const g of doomed) await rm(path.join(volumeDir, g), { recursive: true, force: true });
  return doomed;
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
