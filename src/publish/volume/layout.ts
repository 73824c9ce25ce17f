/**
 * The on-disk layout of a published volume, shared by publish, recovery, rollback and status:
 *
 *   VOLUME/..2026_01_02_03_04_05.1a2b3c4d/   a generation: the complete file set, never modified
 *     …/..zeta-manifest/                     its file hashes, sharded (manifest.ts)
 *   VOLUME/..data -> ..2026_…                the current generation (relative symlink, swapped by rename)
 *   VOLUME/NAME -> ..data/NAME               one link per top-level name, so whole trees switch at once
 *   VOLUME/..zeta-provision.json             status record (current, previous and kept generations)
 *   VOLUME/..zeta-provision.lock             held while a run writes (O_EXCL)
 *   …/..zeta-outputs.json                    in a generation: that payload's non-secret ConfigMaps
 *
 * Everything whose name starts with `..` belongs to zeta-provision; payload paths never start with `..`.
 */
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../../errors.js';
import { writeFileAtomic } from '../../util/fs.js';

export const DATA_LINK = '..data';
export const DATA_TMP_LINK = '..data_tmp';
export const STATUS_NAME = '..zeta-provision.json';
export const LOCK_NAME = '..zeta-provision.lock';
/** Inside a generation: the non-secret API objects of that payload (rollback restores them). */
export const OUTPUTS_NAME = '..zeta-outputs.json';
export const GENERATION_PATTERN = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]{8}$/;
/** Temp files of our atomic writes (`.<name>.<hex>.tmp`); a crash can leave one behind. */
export const TEMP_PATTERN = /^\.\.\.zeta-provision\.json\.[0-9a-f]{8}\.tmp$/;

export const DEFAULT_FILE_MODE = 0o644;
export const DEFAULT_DIR_MODE = 0o755;
export const DEFAULT_KEEP_GENERATIONS = 2;
/** Linux PATH_MAX and NAME_MAX: longer names fail later anyway, with a worse message. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

export function newGenerationName(now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}`;
  return `..${stamp}.${randomBytes(4).toString('hex')}`;
}

/** Name of the generation `..data` points to, if it is one of ours. */
export async function currentGeneration(volumeDir: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(path.join(volumeDir, DATA_LINK));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL')
      throw new PublishError(`${volumeDir}/${DATA_LINK} exists but is not a symlink; refusing to touch a volume laid out by something else`);
    throw new PublishError(`cannot read ${volumeDir}/${DATA_LINK}: ${errorMessage(err)}`);
  }
  // Only a plain relative generation name is ours; anything else could point anywhere on the node.
  if (!GENERATION_PATTERN.test(target)) throw new PublishError(`${volumeDir}/${DATA_LINK} points to "${target}", which is not a zeta-provision generation`);
  return target;
}

/** Generation directories present (real directories only: a symlink with our name is not ours). */
export async function listGenerations(volumeDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(volumeDir)) {
    if (!GENERATION_PATTERN.test(name)) continue;
    if ((await lstat(path.join(volumeDir, name))).isDirectory()) out.push(name);
  }
  return out.sort();
}

/**
 * Target paths must stay inside the generation and must not collide with the layout: relative, POSIX,
 * no `.`/`..` segments, nothing starting with `..`, within Linux name limits, and no file that is also
 * a directory of another file.
 */
export function validateVolumePaths(paths: string[]): void {
  const seen = new Set<string>();
  for (const p of paths) {
    const problem = pathProblem(p);
    if (problem) throw new PublishError(`refusing volume path ${JSON.stringify(p)}: ${problem}`);
    if (seen.has(p)) throw new PublishError(`refusing volume path ${JSON.stringify(p)}: listed twice`);
    seen.add(p);
  }
  for (const p of paths) {
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
      const prefix = p.slice(0, i);
      if (seen.has(prefix)) throw new PublishError(`refusing volume path ${JSON.stringify(p)}: ${JSON.stringify(prefix)} is a file`);
    }
  }
}

function pathProblem(p: string): string | undefined {
  if (p === '') return 'empty';
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return `longer than ${MAX_PATH_BYTES} bytes`;
  if (p.startsWith('/')) return 'must be relative';
  if (p.includes('\\') || p.includes('\0')) return 'must not contain backslashes or NUL';
  if (p.startsWith('..')) return 'names starting with ".." are reserved for the volume layout';
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'must not contain empty, "." or ".." segments';
    if (Buffer.byteLength(seg) > MAX_NAME_BYTES) return `a name is longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}

export { fsyncPath } from '../../util/fs.js';

/**
 * Temp + fsync + rename + fsync(dir): the status record must survive a power cut in the same state as
 * the ..data link it describes.
 */
export function writeDurable(dest: string, content: string, mode: number): Promise<void> {
  return writeFileAtomic(dest, content, mode, { syncDir: true });
}
