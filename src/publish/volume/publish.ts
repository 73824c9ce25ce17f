/**
 * publishVolume: one locked, crash-safe pass over a volume directory.
 *
 *   lock → recover → read current → [identical? stop] → write new generation (link unchanged, copy
 *   changed, fsync) → add new top-level links → swap ..data → record → drop stale links → GC → unlock
 *
 * Every step before the swap only adds things nobody refers to; every step after it only removes
 * things nobody refers to. So a kill at any point leaves readers the complete old or new set, and the
 * next run's recovery removes the leftovers.
 */
import { isNoSpace } from '../../util/fs.js';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../../errors.js';
import type { VolumeFile } from '../../process/types.js';
import { realFsOps, writeGeneration, type VolumeFsOps } from './generation.js';
import {
  DEFAULT_DIR_MODE,
  DEFAULT_FILE_MODE,
  DEFAULT_KEEP_GENERATIONS,
  OUTPUTS_NAME,
  fsyncPath,
  listGenerations,
  newGenerationName,
  validateVolumePaths,
} from './layout.js';
import { addTopLevelLinks, refuseForeignTopLevel, removeStaleLinks, swapData, topLevelNames } from './links.js';
import { acquireVolumeLock, type LockOptions } from './lock.js';
import type { AppliedRecord } from '../record.js';
import { publishedRecord, readVolumeRecord, recordMatches, writeVolumeRecord } from './record.js';
import { recoverVolume } from './recover.js';
import { removeTree } from './remove.js';
import { currentGenerationState, readReuseCandidates, type FileState, type ReuseCandidates } from './state.js';

const SETGID = 0o2000;

export interface VolumePublishOptions {
  /** Mode of published files (default 0644) and directories (default 0755). */
  fileMode?: number;
  dirMode?: number;
  /** Group for files and directories (an fsGroup volume); default: leave as created. */
  gid?: number;
  /** Generations kept on disk, current included (default 2: one rollback target). */
  keepGenerations?: number;
  /** How long to wait for another run's lock (default 30 s) and when a lock counts as stale. */
  lock?: LockOptions;
  /** The run's applied record (this volume adds its details); omitted by direct callers (tests, bench). */
  record?: AppliedRecord;
  /**
   * Kept inside the generation as `..zeta-outputs.json`: the non-secret API objects this payload
   * produced, so `rollback` can restore them with the generation. Part of what makes two
   * generations identical.
   */
  outputs?: string;
  /** Files copied/linked in parallel (fsync latency overlaps). */
  concurrency?: number;
  /** Test seam: replace link/copyFile to inject EXDEV or ENOSPC. */
  fs?: Partial<VolumeFsOps>;
  now?: () => Date;
}

export interface VolumePublishResult {
  /** The generation ..data points to after the call. */
  generation: string;
  /** False when the content was identical: no generation written. */
  changed: boolean;
  previous?: string;
  kept: string[];
  files: number;
  bytesWritten: number;
  linked: number;
  copied: number;
  removedGenerations: string[];
  /** Whether the status record was (re)written. */
  recordWritten: boolean;
}

export async function publishVolume(volumeDir: string, files: VolumeFile[], opts: VolumePublishOptions = {}): Promise<VolumePublishResult> {
  validateVolumePaths(files.map((f) => f.path));
  const fileMode = opts.fileMode ?? DEFAULT_FILE_MODE;
  let dirMode = opts.dirMode ?? DEFAULT_DIR_MODE;
  const keep = Math.max(1, opts.keepGenerations ?? DEFAULT_KEEP_GENERATIONS);
  const now = opts.now ?? (() => new Date());
  let genDir: string | undefined;
  let swapped = false;
  try {
    await mkdir(volumeDir, { recursive: true });
    // An fsGroup volume is setgid so that everything created in it belongs to the group. Our chmod of a
    // directory would clear that bit and the generation's subdirectories would fall back to the
    // process's own group, which consumers may not be in; so directories keep it.
    if ((await stat(volumeDir)).mode & SETGID) dirMode |= SETGID;
    const lock = await acquireVolumeLock(volumeDir, opts.lock);
    try {
      const record = await readVolumeRecord(volumeDir);
      const recovery = await recoverVolume(volumeDir, record, keep);
      const names = topLevelNames(files.map((f) => f.path));
      await refuseForeignTopLevel(volumeDir, names);

      const current = recovery.current;
      const currentDir = current ? path.join(volumeDir, current) : undefined;
      const candidates: ReuseCandidates = currentDir ? await readReuseCandidates(currentDir) : { files: new Map() };
      const counts = { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };

      // The manifest says "same content"; the files themselves (lstat of each, no foreign extras) confirm it.
      if (
        current &&
        currentDir &&
        sameHashes(candidates.files, files) &&
        (await sameOutputs(currentDir, opts.outputs)) &&
        identical((await currentGenerationState(currentDir, candidates)).files, files, fileMode, opts.gid)
      ) {
        // Same content: no generation, no writes — except repairing a missing link or a stale record.
        await addTopLevelLinks(volumeDir, names);
        const next = publishedRecord(record, opts.record, current, recovery.kept, counts);
        const recordWritten = !recordMatches(record, next);
        if (recordWritten) await writeVolumeRecord(volumeDir, next, fileMode);
        return {
          generation: current,
          changed: false,
          previous: recovery.kept[1],
          kept: recovery.kept,
          files: files.length,
          bytesWritten: 0,
          linked: 0,
          copied: 0,
          removedGenerations: recovery.removed,
          recordWritten,
        };
      }

      const generation = newGenerationName(now());
      genDir = path.join(volumeDir, generation);
      await mkdir(genDir, { mode: dirMode });
      const written = await writeGeneration(genDir, files, currentDir, candidates, {
        fileMode,
        dirMode,
        gid: opts.gid,
        concurrency: opts.concurrency ?? 16,
        fs: { ...realFsOps, ...opts.fs },
      });

      if (opts.outputs !== undefined) {
        await writeFile(path.join(genDir, OUTPUTS_NAME), opts.outputs, { flag: 'wx', mode: fileMode });
        await fsyncPath(path.join(genDir, OUTPUTS_NAME));
        await fsyncPath(genDir);
      }
      await addTopLevelLinks(volumeDir, names);
      await swapData(volumeDir, generation);
      swapped = true;

      // Recorded before anything is removed, so recovery after a kill below knows what to keep.
      const kept = [generation, ...recovery.kept.filter((g) => g !== generation)].slice(0, keep);
      await writeVolumeRecord(volumeDir, publishedRecord(record, opts.record, generation, kept, counts), fileMode);
      await removeStaleLinks(volumeDir, names);
      const removedGenerations = [...recovery.removed];
      for (const g of await listGenerations(volumeDir)) {
        if (kept.includes(g)) continue;
        await removeTree(path.join(volumeDir, g));
        removedGenerations.push(g);
      }
      // No fsync for the removals: one undone by a power cut leaves only what the next run's recovery
      // removes anyway (unrecorded generations, dangling links of ours).
      return {
        generation,
        changed: true,
        previous: kept[1],
        kept,
        files: files.length,
        bytesWritten: written.bytesWritten,
        linked: written.linked,
        copied: written.copied,
        removedGenerations,
        recordWritten: true,
      };
    } finally {
      await lock.release();
    }
  } catch (err) {
    // A generation nobody points to yet is only garbage; free its space now (a full disk is a likely
    // cause) instead of waiting for the next run's recovery.
    if (genDir && !swapped) {
      try {
        await removeTree(genDir);
      } catch {
        // Recovery of the next run removes what is left.
      }
    }
    if (err instanceof PublishError) throw err;
    throw new PublishError(`publishing to volume ${volumeDir} failed: ${errorMessage(err)}`, hintFor(err), { cause: err });
  }
}

async function sameOutputs(genDir: string, outputs: string | undefined): Promise<boolean> {
  const had = await readFile(path.join(genDir, OUTPUTS_NAME), 'utf8').catch(() => undefined);
  return had === outputs;
}

function sameHashes(candidates: Map<string, { sha256: string }>, files: VolumeFile[]): boolean {
  return candidates.size === files.length && files.every((f) => candidates.get(f.path)?.sha256 === f.sha256);
}

function identical(state: Map<string, FileState>, files: VolumeFile[], fileMode: number, gid: number | undefined): boolean {
  if (state.size !== files.length) return false;
  return files.every((f) => {
    const s = state.get(f.path);
    return s !== undefined && s.sha256 === f.sha256 && s.mode === fileMode && (gid === undefined || s.gid === gid);
  });
}

function hintFor(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (isNoSpace(err)) return 'the volume is full; the current generation was left as it was — free space or enlarge the volume, then rerun';
  if (code === 'EACCES' || code === 'EPERM') return 'the volume is not writable for this user; check fsGroup / ownership';
  return undefined;
}
