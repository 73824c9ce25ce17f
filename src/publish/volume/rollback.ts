/**
 * `zeta-provision rollback` and `zeta-provision status` on a volume. Rollback is the same atomic swap as
 * a publish, pointing ..data back at a kept generation; it holds until a new payload digest or config
 * arrives (or `run --force`), because the record's digest still names the payload that was rolled back.
 */
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, SourceError, UsageError, errorMessage } from '../../errors.js';
import { freshnessWarnings, recordedFreshness } from '../../plan/freshness.js';
import { describeAge, describeTime } from '../../util/time.js';
import type { AppliedRecord } from '../record.js';
import { DEFAULT_FILE_MODE, DEFAULT_KEEP_GENERATIONS, GENERATION_PATTERN, currentGeneration, listGenerations } from './layout.js';
import { addTopLevelLinks, refuseForeignTopLevel, removeStaleLinks, swapData, topLevelNames } from './links.js';
import { acquireVolumeLock, lockFile, type LockOptions } from './lock.js';
import { readVolumeRecord, writeVolumeRecord, type VolumeDetail, type VolumeRecord } from './record.js';
import { recoverVolume } from './recover.js';
import { readGenerationState } from './state.js';

export interface RollbackResult {
  from: string;
  to: string;
  kept: string[];
}

export async function rollbackVolume(
  volumeDir: string,
  opts: { to?: string; lock?: LockOptions; keepGenerations?: number; now?: () => Date } = {},
): Promise<RollbackResult> {
  if (opts.to !== undefined && !GENERATION_PATTERN.test(opts.to)) {
    throw new UsageError(
      `--to ${JSON.stringify(opts.to)} is not a generation name (like ..2026_01_31_12_00_00.1a2b3c4d)`,
      'zeta-provision status --volume DIR lists the kept generations',
    );
  }
  if (!(await lstat(volumeDir).catch(() => undefined))?.isDirectory())
    throw new SourceError(`volume directory ${volumeDir} does not exist`, 'check --volume (or ZETA_PROVISION_VOLUME, RESULT_DIR)');
  const lock = await acquireVolumeLock(volumeDir, opts.lock);
  try {
    const record = await readVolumeRecord(volumeDir);
    // Never fewer than the record keeps: a volume published with a larger `keep` must not lose a
    // rollback target to a rollback run with the default.
    const keep = Math.max(1, opts.keepGenerations ?? DEFAULT_KEEP_GENERATIONS, record?.kept?.length ?? 0);
    const recovery = await recoverVolume(volumeDir, record, keep);
    const from = recovery.current;
    if (!from)
      throw new UsageError(
        `${volumeDir} has no current generation (..data); nothing to roll back`,
        'zeta-provision status --volume DIR shows what the volume holds',
      );
    const to = opts.to ?? recovery.kept[1];
    if (!to)
      throw new UsageError(
        `${volumeDir} keeps no previous generation to roll back to`,
        'a rollback target exists after the second publish; zeta-provision status --volume DIR lists the kept generations',
      );
    if (!recovery.kept.includes(to)) {
      throw new UsageError(
        `generation ${to} is not kept in ${volumeDir} (kept: ${recovery.kept.join(', ')})`,
        'zeta-provision status --volume DIR lists the kept generations',
      );
    }
    if (to === from) throw new UsageError(`generation ${to} is already current`);

    const names = topLevelNames((await readGenerationState(path.join(volumeDir, to))).keys());
    await refuseForeignTopLevel(volumeDir, names);
    await addTopLevelLinks(volumeDir, names);
    await swapData(volumeDir, to);
    const kept = [to, from, ...recovery.kept.filter((g) => g !== to && g !== from)];
    const at = (opts.now ?? (() => new Date()))().toISOString();
    const generations = { ...(record?.generations ?? {}) };
    // The restored generation's record says it got there by a rollback, so the next run neither calls
    // a disagreeing state "up to date" nor silently undoes it (the record's digest is the restored one).
    const restored = generations[to];
    if (restored)
      generations[to] = {
        ...restored,
        rollback: { fromDigest: generations[from]?.digest ?? '', ...(generations[from] ? { fromConfigHash: generations[from].configHash } : {}), at },
      };
    await writeVolumeRecord(volumeDir, { version: 2, generation: to, kept, generations, rollback: { from, to, at } }, DEFAULT_FILE_MODE);
    await removeStaleLinks(volumeDir, names);
    return { from, to, kept };
  } catch (err) {
    if (err instanceof PublishError || err instanceof UsageError) throw err;
    throw new PublishError(`rollback of volume ${volumeDir} failed: ${errorMessage(err)}`, undefined, { cause: err });
  } finally {
    await lock.release();
  }
}

export interface VolumeStatus {
  volume: string;
  current?: string;
  previous?: string;
  generations: { name: string; current: boolean; source?: string; digest?: string; revision?: string; appliedAt?: string; files?: number; bytes?: number }[];
  /** Generation directories on disk that the record does not keep (left by a killed run). */
  unreferenced: string[];
  lastApplied?: { source: string; digest: string; revision?: string; appliedAt: string };
  rollback?: VolumeRecord['rollback'];
  lock?: { pid?: number; host?: string; time?: string };
  /** Of the payload the current generation holds: how long ago it was applied, and what expires when. */
  freshness?: {
    appliedAt: string;
    ageSeconds: number;
    earliestCertificateExpiry?: string;
    tslNextUpdate?: string;
    /** Near or past a limit (src/plan/freshness.ts). */
    warnings: string[];
  };
}

/** Read-only: takes no lock and changes nothing, so it is safe while a run publishes. */
export async function volumeStatus(volumeDir: string, now: Date = new Date()): Promise<VolumeStatus> {
  if (!(await lstat(volumeDir).catch(() => undefined))?.isDirectory())
    throw new SourceError(`volume directory ${volumeDir} does not exist`, 'check --volume (or ZETA_PROVISION_VOLUME, RESULT_DIR)');
  const current = await currentGeneration(volumeDir);
  const record = await readVolumeRecord(volumeDir);
  const present = await listGenerations(volumeDir);
  // If the record lags ..data (a run died in between), the record's generation is the previous one.
  const kept = [current, ...(record?.generation !== current ? [record?.generation] : []), ...(record?.kept ?? [])].filter(
    (g, i, all): g is string => g !== undefined && all.indexOf(g) === i && present.includes(g),
  );
  const status: VolumeStatus = {
    volume: volumeDir,
    current,
    previous: kept.find((g) => g !== current),
    generations: kept.map((name) => ({ name, current: name === current, ...summaryOf(record?.generations[name]) })),
    unreferenced: present.filter((g) => !kept.includes(g)),
    rollback: record?.rollback,
  };
  const last = record?.generation ? record.generations[record.generation] : undefined;
  if (last?.digest) status.lastApplied = { source: last.source, digest: last.digest, revision: last.revision, appliedAt: last.appliedAt };
  // What consumers read now is the current generation.
  const live = current ? record?.generations[current] : undefined;
  const fresh = live ? recordedFreshness([{ ...live.freshness, appliedAt: live.appliedAt }], now) : undefined;
  if (fresh) {
    const { payloadAgeSeconds: ageSeconds, ...rest } = fresh;
    status.freshness = { ...rest, ageSeconds, warnings: freshnessWarnings(rest, now) };
  }
  const lock = await readFile(lockFile(volumeDir), 'utf8').catch(() => undefined);
  if (lock !== undefined) {
    try {
      const { pid, host, time } = JSON.parse(lock) as { pid?: number; host?: string; time?: string };
      status.lock = { pid, host, time };
    } catch {
      status.lock = {};
    }
  }
  return status;
}

function summaryOf(a: AppliedRecord | undefined): Omit<VolumeStatus['generations'][number], 'name' | 'current'> {
  if (!a) return {};
  const d = a.targets.volume as Partial<VolumeDetail> | undefined;
  return { source: a.source, digest: a.digest, revision: a.revision, appliedAt: a.appliedAt, files: d?.files, bytes: d?.bytes };
}

export function renderVolumeStatus(s: VolumeStatus, now: Date = new Date()): string {
  const lines = [`volume ${s.volume}`];
  if (!s.current) lines.push('  no generation published yet');
  for (const g of s.generations) {
    const tag = g.current ? 'current ' : g.name === s.previous ? 'previous' : 'kept    ';
    const what = g.digest
      ? `${g.source} ${g.digest}${g.revision ? ` (revision ${g.revision})` : ''}, ${g.files} files, ${g.bytes} bytes, applied ${g.appliedAt}`
      : 'no provenance recorded';
    lines.push(`  ${tag} ${g.name}  ${what}`);
  }
  if (s.lastApplied)
    lines.push(
      `  last run  ${s.lastApplied.source} ${s.lastApplied.digest}${s.lastApplied.revision ? ` (revision ${s.lastApplied.revision})` : ''} at ${s.lastApplied.appliedAt}`,
    );
  if (s.rollback)
    lines.push(`  rolled back from ${s.rollback.from} to ${s.rollback.to} at ${s.rollback.at}; the next run keeps it until a new payload or config arrives`);
  if (s.unreferenced.length) lines.push(`  unreferenced ${s.unreferenced.join(', ')} (removed by the next run)`);
  const f = s.freshness;
  if (f) {
    lines.push(`  payload age ${describeAge(f.appliedAt, now)} (applied ${f.appliedAt})`);
    if (f.earliestCertificateExpiry) lines.push(`  earliest certificate expiry ${describeTime(f.earliestCertificateExpiry, now)}`);
    if (f.tslNextUpdate) lines.push(`  TSL next update ${describeTime(f.tslNextUpdate, now)}`);
    for (const w of f.warnings) lines.push(`  warning   ${w}`);
  }
  if (s.lock) lines.push(`  locked by pid ${s.lock.pid ?? '?'} on ${s.lock.host ?? '?'} since ${s.lock.time ?? '?'}`);
  return lines.join('\n') + '\n';
}
