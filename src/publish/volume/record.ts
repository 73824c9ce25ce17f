/** The volume's status record `..zeta-provision.json`: read, update and write it durably. */
import path from 'node:path';
import { readStatus, type GenerationRecord, type StatusRecord } from '../status.js';
import { STATUS_NAME, writeDurable } from './layout.js';

/** Provenance of what a publish writes; omitted by direct callers (tests, bench). */
export interface VolumeMeta {
  source: string;
  digest: string;
  revision?: string;
  configHash: string;
  /** Downgrade protection: the time the payload's signatures prove, and what proves it. */
  provenTime?: string;
  provenBasis?: string;
  /** Freshness of what was applied (src/report/freshness.ts), read back by `zeta-provision status`. */
  earliestCertificateExpiry?: string;
  tslNextUpdate?: string;
}

export const NO_META: VolumeMeta = { source: '', digest: '', configHash: '' };

export async function readVolumeRecord(volumeDir: string): Promise<StatusRecord | undefined> {
  return readStatus('volume', volumeDir);
}

export async function writeVolumeRecord(volumeDir: string, record: StatusRecord, mode: number): Promise<void> {
  await writeDurable(path.join(volumeDir, STATUS_NAME), JSON.stringify(record, null, 2) + '\n', mode, {
    written: 'status-tmp-written',
    renamed: 'status-written',
  });
}

/** The record after a publish that left `generation` current with `kept` on disk. */
export function publishedRecord(
  previous: StatusRecord | undefined,
  meta: VolumeMeta,
  generation: string,
  kept: string[],
  counts: { files: number; bytes: number },
  now: Date,
): StatusRecord {
  const generations: Record<string, GenerationRecord> = {};
  for (const g of kept) {
    const known = previous?.generations?.[g];
    if (known && g !== generation) generations[g] = known;
  }
  generations[generation] = { ...meta, appliedAt: now.toISOString(), ...counts };
  return {
    version: 1,
    ...meta,
    appliedAt: now.toISOString(),
    generation,
    previous: kept[1],
    kept,
    generations,
    ...counts,
  };
}

/** Does the record already say exactly this (so a no-op publish writes nothing)? */
export function recordMatches(r: StatusRecord | undefined, meta: VolumeMeta, generation: string, kept: string[]): boolean {
  return (
    r !== undefined &&
    r.digest === meta.digest &&
    r.configHash === meta.configHash &&
    r.source === meta.source &&
    r.revision === meta.revision &&
    r.provenTime === meta.provenTime &&
    r.generation === generation &&
    JSON.stringify(r.kept) === JSON.stringify(kept)
  );
}
