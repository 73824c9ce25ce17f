/**
 * The volume's record `..zeta-provision.json`: which generation ..data points to, which generations are
 * kept (rollback targets, current first), and the applied record of each. Written durably under the
 * lock, right after the swap. Format 1 (release 0.1.0) is read and converted; a newer format is refused.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../../errors.js';
import { RECORD_VERSION, parseRecord, parseStored, type AppliedRecord } from '../record.js';
import { volumeFromV1 } from '../upgrade.js';
import { STATUS_NAME, writeDurable } from './layout.js';

/** What record.targets.volume holds. */
export interface VolumeDetail {
  generation: string;
  files: number;
  bytes: number;
}

export interface VolumeRecord {
  version: typeof RECORD_VERSION;
  /** The generation ..data pointed to when this was written. */
  generation?: string;
  kept: string[];
  generations: Record<string, AppliedRecord>;
  /** Set by `zeta-provision rollback`, cleared by the next publish. */
  rollback?: { from: string; to: string; at: string };
  /** Read from an older format (rewritten by the next run that writes). */
  upgradedFrom?: number;
}

/** Bounded: the record of even 100 kept generations is a few hundred KiB. */
const MAX_RECORD_BYTES = 4 * 1024 * 1024;

export async function readVolumeRecord(volumeDir: string): Promise<VolumeRecord | undefined> {
  const file = path.join(volumeDir, STATUS_NAME);
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_RECORD_BYTES) throw new PublishError(`${file} is larger than ${MAX_RECORD_BYTES} bytes; not a record zeta-provision wrote`);
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof PublishError) throw err;
    throw new PublishError(`cannot read ${file}: ${errorMessage(err)}`);
  }
  const stored = parseStored(text, file);
  if (!stored) return undefined;
  const { doc, version } = stored;
  if (version === 1) return { version: RECORD_VERSION, ...volumeFromV1(doc as Record<string, unknown>), upgradedFrom: 1 };
  if (version !== RECORD_VERSION) return undefined;
  const d = doc as Partial<VolumeRecord>;
  const kept = Array.isArray(d.kept) ? d.kept.filter((g): g is string => typeof g === 'string') : [];
  const generations: Record<string, AppliedRecord> = {};
  for (const [g, r] of Object.entries(d.generations && typeof d.generations === 'object' ? d.generations : {})) {
    const a = parseRecord(r);
    if (a) generations[g] = a;
  }
  return {
    version: RECORD_VERSION,
    ...(typeof d.generation === 'string' ? { generation: d.generation } : {}),
    kept,
    generations,
    ...(d.rollback ? { rollback: d.rollback } : {}),
  };
}

export async function writeVolumeRecord(volumeDir: string, record: VolumeRecord, mode: number): Promise<void> {
  const { upgradedFrom: _u, ...stored } = record;
  await writeDurable(path.join(volumeDir, STATUS_NAME), JSON.stringify(stored, null, 2) + '\n', mode);
}

/** The applied record of the run, with this volume's details. */
export function withVolumeDetail(applied: AppliedRecord, detail: VolumeDetail): AppliedRecord {
  return { ...applied, targets: { ...applied.targets, volume: detail } };
}

/** The record after a publish that left `generation` current with `kept` on disk. */
export function publishedRecord(
  previous: VolumeRecord | undefined,
  applied: AppliedRecord | undefined,
  generation: string,
  kept: string[],
  counts: { files: number; bytes: number },
): VolumeRecord {
  const generations: Record<string, AppliedRecord> = {};
  for (const g of kept) {
    const known = previous?.generations[g];
    if (known && g !== generation) generations[g] = known;
  }
  const here = applied ?? previous?.generations[generation];
  if (here) generations[generation] = withVolumeDetail(here, { generation, ...counts });
  return { version: RECORD_VERSION, generation, kept, generations };
}

/** Does the record already say exactly this (so a no-op publish writes nothing)? appliedAt aside. */
export function recordMatches(r: VolumeRecord | undefined, next: VolumeRecord): boolean {
  if (!r || r.upgradedFrom !== undefined || r.rollback || r.generation !== next.generation || JSON.stringify(r.kept) !== JSON.stringify(next.kept))
    return false;
  // Other targets' details are completed after the apply (target.ts record()); only the volume's count here.
  const strip = (a: AppliedRecord | undefined): string => JSON.stringify(a ? { ...a, appliedAt: undefined, targets: { volume: a.targets.volume } } : null);
  return next.generation === undefined || strip(r.generations[next.generation]) === strip(next.generations[next.generation]);
}

/** The applied record of the generation ..data points to. */
export function currentApplied(r: VolumeRecord | undefined, current: string | undefined): AppliedRecord | undefined {
  return current ? r?.generations[current] : undefined;
}
