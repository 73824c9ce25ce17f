/**
 * The volume as a Target. Observing it costs a readlink, the record, the current generation's manifest
 * and one lstat per published file (no file is read): enough to tell that `..data` still points to the
 * recorded generation and that every file is still the one that was written (same inode, size, mtime).
 */
import { lstatSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Settings } from '../../config/index.js';
import { PublishError } from '../../errors.js';
import type { ConfigMapObject, DesiredOutputs, VolumeFile } from '../../process/types.js';
import { planVolume, type VolumePlan } from '../../plan/index.js';
import type { AppliedRecord } from '../record.js';
import type { DriftItem, Observed, RollbackSource, Target, TargetApplied, TargetFactory, TargetPlan } from '../target.js';
import {
  DATA_LINK,
  DATA_TMP_LINK,
  DEFAULT_FILE_MODE,
  DEFAULT_KEEP_GENERATIONS,
  GENERATION_PATTERN,
  OUTPUTS_NAME,
  TEMP_PATTERN,
  currentGeneration,
} from './layout.js';
import { acquireVolumeLock, lockFile, type LockOptions } from './lock.js';
import { readManifest } from './manifest.js';
import { publishVolume, type VolumePublishOptions, type VolumePublishResult } from './publish.js';
import { currentApplied, readVolumeRecord, writeVolumeRecord, type VolumeDetail, type VolumeRecord } from './record.js';
import { recoverVolume } from './recover.js';
import { rollbackVolume, type RollbackResult } from './rollback.js';

export interface VolumeLive {
  current?: string;
  /** Files of the current generation by its manifest: path → sha256, undefined where lstat disagrees. */
  files: Map<string, string | undefined>;
  /** What lstat found missing or changed (no hashing). */
  problems: DriftItem[];
  volumeRecord?: VolumeRecord;
}

export interface VolumePlanDetail {
  files: VolumeFile[];
  outputs?: string;
  volume: VolumePlan;
}

export type VolumeReport = VolumePublishResult | RollbackResult;

const ID = 'volume';

export class VolumeTarget implements Target<VolumeLive, VolumePlanDetail, VolumeReport> {
  readonly id = ID;
  constructor(
    readonly dir: string,
    readonly options: Pick<VolumePublishOptions, 'fileMode' | 'dirMode' | 'gid' | 'keepGenerations' | 'lock'>,
    /** Whether API targets exist: then each generation keeps that payload's ConfigMaps for rollback. */
    readonly keepOutputs: boolean,
  ) {}

  get where(): string {
    return this.dir;
  }

  async observe(): Promise<Observed<VolumeLive>> {
    const exists = lstatSync(this.dir, { throwIfNoEntry: false });
    if (!exists) return { live: { files: new Map(), problems: [] } };
    const current = await currentGeneration(this.dir);
    const volumeRecord = await readVolumeRecord(this.dir);
    const live: VolumeLive = { current, files: new Map(), problems: [], volumeRecord };
    if (current) {
      const genDir = path.join(this.dir, current);
      const manifest = readManifest(genDir);
      if (!manifest) live.problems.push({ target: ID, object: current, what: 'generation manifest missing or damaged' });
      for (const [p, e] of manifest?.entries ?? []) {
        const st = lstatSync(`${genDir}/${p}`, { throwIfNoEntry: false });
        const same = st?.isFile() && st.size === e.size && st.ino === e.ino && st.mtimeMs === e.mtimeMs;
        live.files.set(p, same ? e.sha256 : undefined);
        if (!same) live.problems.push({ target: ID, object: p, what: st ? 'changed on disk' : 'missing' });
      }
      // Consumers reach files only through the top-level links.
      for (const name of new Set([...live.files.keys()].map((p) => p.split('/')[0]!))) {
        const target = await readlink(path.join(this.dir, name)).catch(() => undefined);
        if (target !== `${DATA_LINK}/${name}`) live.problems.push({ target: ID, object: name, what: 'top-level link missing' });
      }
    }
    return { record: currentApplied(volumeRecord, current), stale: volumeRecord?.upgradedFrom !== undefined, live };
  }

  check(record: AppliedRecord, live: VolumeLive): DriftItem[] {
    const detail = record.targets[ID] as Partial<VolumeDetail> | undefined;
    if (!live.current) return [{ target: ID, object: this.dir, what: 'no generation published (..data missing)' }];
    if (detail?.generation !== live.current)
      return [{ target: ID, object: DATA_LINK, what: `points to ${live.current}, the record says ${detail?.generation ?? 'nothing'}` }];
    return live.problems;
  }

  plan(desired: DesiredOutputs, observed: Observed<VolumeLive>): TargetPlan<VolumePlanDetail> {
    const volume = planVolume(desired.volumeFiles, observed.live.files);
    const detail: VolumePlanDetail = { files: desired.volumeFiles, volume, ...(this.keepOutputs ? { outputs: savedOutputs(desired.configMaps) } : {}) };
    // A new volume with nothing to publish stays untouched.
    const changes = volume.changed || observed.live.problems.length > 0 || (observed.live.current === undefined && desired.volumeFiles.length > 0);
    const actions = [...volume.added.map((p) => `add ${p}`), ...volume.modified.map((p) => `update ${p}`), ...volume.removed.map((p) => `remove ${p}`)];
    return { target: ID, changes, drift: observed.record ? observed.live.problems : [], actions, detail };
  }

  async apply(plan: TargetPlan<VolumePlanDetail>, record: AppliedRecord, opts: { dryRun: boolean }): Promise<TargetApplied<VolumeReport>> {
    if (opts.dryRun) return { wrote: false, details: record.targets[ID], report: dryReport(plan) };
    if (plan.detail.files.length === 0 && !plan.changes) return { wrote: false, details: undefined, report: dryReport(plan) };
    const r = await publishVolume(this.dir, plan.detail.files, { ...this.options, record, outputs: plan.detail.outputs });
    const details: VolumeDetail = { generation: r.generation, files: r.files, bytes: plan.detail.files.reduce((n, f) => n + f.size, 0) };
    return { wrote: r.changed || r.recordWritten, details, report: r };
  }

  /**
   * publishVolume wrote the record under its lock right after the swap, before the targets after it
   * had applied. Their details (which objects, which Secret hashes) are what a later rollback needs
   * to decide, so the generation's record is completed here — once, on a run that applied.
   */
  async record(record: AppliedRecord | undefined): Promise<boolean> {
    const detail = record?.targets[ID] as VolumeDetail | undefined;
    if (!record || !detail) return false;
    const lock = await acquireVolumeLock(this.dir, this.options.lock);
    try {
      const stored = await readVolumeRecord(this.dir);
      const had = stored?.generations[detail.generation];
      if (!stored || !had || JSON.stringify({ ...had.targets }) === JSON.stringify({ ...record.targets })) return false;
      stored.generations[detail.generation] = { ...had, targets: { ...record.targets } };
      await writeVolumeRecord(this.dir, stored, this.options.fileMode ?? DEFAULT_FILE_MODE);
      return true;
    } finally {
      await lock.release();
    }
  }

  /**
   * One readdir decides whether there is anything to tidy; only then the lock is tried (without
   * waiting: a live run holding it tidies itself) and recovery runs, as before every publish.
   */
  async tidy(observed: Observed<VolumeLive> | undefined): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const generations = names.filter((n) => GENERATION_PATTERN.test(n));
    const keep = Math.max(1, this.options.keepGenerations ?? DEFAULT_KEEP_GENERATIONS, observed?.live.volumeRecord?.kept.length ?? 0);
    const leftovers = names.filter((n) => n === DATA_TMP_LINK || TEMP_PATTERN.test(n) || n === path.basename(lockFile(this.dir)));
    if (generations.length <= keep && leftovers.length === 0) return [];
    let lock;
    try {
      lock = await acquireVolumeLock(this.dir, { ...this.options.lock, timeoutMs: 0 });
    } catch {
      return [];
    }
    try {
      const removed = await recoverVolume(this.dir, await readVolumeRecord(this.dir), keep);
      const tidied = [...removed.removed, ...leftovers.filter((n) => n !== path.basename(lockFile(this.dir)))];
      // A lock file we could take over was a dead run's.
      if (leftovers.includes(path.basename(lockFile(this.dir)))) tidied.push(`${path.basename(lockFile(this.dir))} (stale)`);
      return tidied;
    } finally {
      await lock.release();
    }
  }

  async rollbackSources(): Promise<RollbackSource[]> {
    const record = await readVolumeRecord(this.dir);
    const current = await currentGeneration(this.dir);
    const out: RollbackSource[] = [];
    for (const g of record?.kept ?? []) {
      const applied = record?.generations[g];
      if (g === current || !applied) continue;
      out.push({ record: applied, configMaps: await readOutputs(path.join(this.dir, g)), ref: g });
    }
    return out;
  }

  rollbackProblem(to: RollbackSource, observed: Observed<VolumeLive>): string | undefined {
    if (!observed.live.current) return `volume ${this.dir} has no current generation`;
    return observed.live.volumeRecord?.kept.includes(to.ref) ? undefined : `volume ${this.dir} no longer keeps generation ${to.ref}`;
  }

  async rollback(to: RollbackSource): Promise<TargetApplied<VolumeReport>> {
    const r = await rollbackVolume(this.dir, { to: to.ref, lock: this.options.lock, keepGenerations: this.options.keepGenerations });
    return { wrote: true, details: to.record.targets[ID], report: r };
  }

  close(): void {}
}

function dryReport(plan: TargetPlan<VolumePlanDetail>): VolumePublishResult {
  return {
    generation: '',
    changed: plan.changes,
    kept: [],
    files: plan.detail.files.length,
    bytesWritten: plan.detail.volume.bytesToWrite,
    linked: 0,
    copied: 0,
    removedGenerations: [],
    recordWritten: false,
  };
}

/** Non-secret objects only: Secret data never reaches the volume. */
export function savedOutputs(configMaps: ConfigMapObject[]): string {
  return JSON.stringify({ version: 2, configMaps: configMaps.filter((c) => c.kind === 'ConfigMap') }) + '\n';
}

async function readOutputs(genDir: string): Promise<ConfigMapObject[]> {
  const text = await readFile(path.join(genDir, OUTPUTS_NAME), 'utf8').catch(() => undefined);
  if (text === undefined) return [];
  try {
    const doc = JSON.parse(text) as { configMaps?: ConfigMapObject[] };
    return Array.isArray(doc.configMaps)
      ? doc.configMaps.filter((c) => c && c.kind === 'ConfigMap' && typeof c.name === 'string' && typeof c.contentHash === 'string')
      : [];
  } catch {
    throw new PublishError(`${genDir}/${OUTPUTS_NAME} is damaged; cannot restore that payload's ConfigMaps`);
  }
}

export const volumeTargetFactory: TargetFactory = {
  id: ID,
  async open(settings: Settings, _log, _warnings, purpose): Promise<Target | undefined> {
    // A volume directory with nothing configured for it stays untouched (as before: no empty generation).
    const publishes = settings.config.volume.files.length > 0 || settings.config.volume.outputs.length > 0;
    if (!settings.volumeDir || (!publishes && purpose !== 'rollback')) return undefined;
    const { fileMode, dirMode, group, keep, lockStale, lockTimeout } = settings.config.volume;
    const lock: LockOptions = {
      ...(lockStale === undefined ? {} : { staleMs: lockStale * 1000 }),
      ...(lockTimeout === undefined ? {} : { timeoutMs: lockTimeout * 1000 }),
    };
    return new VolumeTarget(
      settings.volumeDir,
      { fileMode, dirMode, gid: group, keepGenerations: keep, lock },
      settings.config.configMaps.length > 0,
    ) as Target;
  },
};
