/**
 * The last-applied record, kept beside each target (`..zeta-provision.json` in the volume,
 * `.zeta-provision.json` in --kube-out). A run is up to date only when every configured target holds
 * a record for the same payload digest and the same config; a target wiped by hand is re-applied.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './kube-out.js';

export interface StatusRecord {
  version: 1;
  source: string;
  digest: string;
  configHash: string;
  revision?: string;
  /** Time the payload's verified signatures prove (ISO 8601), for downgrade protection (src/verify/downgrade.ts). */
  provenTime?: string;
  /** What proves provenTime (e.g. `image signature`). */
  provenBasis?: string;
  appliedAt: string;
  /** Earliest notAfter of the certificates the applied payload relied on (ISO 8601). */
  earliestCertificateExpiry?: string;
  /** NextUpdate of the applied TSL (ISO 8601), when a TSL was processed. */
  tslNextUpdate?: string;
  /** Volume only: the generation `..data` points to, as of this record. */
  generation?: string;
  /** Volume only: the generation `..data` pointed to before (the default rollback target). */
  previous?: string;
  /** Volume only: generations kept on disk, current first, then by when ..data last pointed to them. */
  kept?: string[];
  /** Volume only: what each kept generation holds (rollback can restore an older payload). */
  generations?: Record<string, GenerationRecord>;
  /** Volume only: set by `zeta-provision rollback`, cleared by the next publish. */
  rollback?: { from: string; to: string; at: string };
  files?: number;
  bytes?: number;
}

/** One applied payload: what the volume records per generation and the API status as its last converged run. */
export interface AppliedRecord {
  source: string;
  digest: string;
  revision?: string;
  configHash: string;
  appliedAt: string;
  /** Freshness of the applied payload, so an up-to-date run can report it without deriving anything. */
  earliestCertificateExpiry?: string;
  tslNextUpdate?: string;
}

export interface GenerationRecord extends AppliedRecord {
  files: number;
  bytes: number;
}

export type TargetKind = 'volume' | 'kube-out';

export function statusFile(kind: TargetKind, dir: string): string {
  return path.join(dir, kind === 'volume' ? '..zeta-provision.json' : '.zeta-provision.json');
}

export async function readStatus(kind: TargetKind, dir: string): Promise<StatusRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(statusFile(kind, dir), 'utf8')) as Partial<StatusRecord>;
    // A record we cannot trust counts as absent: the worst outcome is one unnecessary re-apply.
    if (parsed.version !== 1 || typeof parsed.digest !== 'string' || typeof parsed.configHash !== 'string') return undefined;
    return parsed as StatusRecord;
  } catch {
    return undefined;
  }
}

export async function writeStatus(kind: TargetKind, dir: string, record: StatusRecord): Promise<void> {
  await writeFileAtomic(statusFile(kind, dir), JSON.stringify(record, null, 2) + '\n');
}

/** Pure: is every target's record for this digest and config? */
export function isUpToDate(records: (StatusRecord | undefined)[], digest: string, configHash: string): boolean {
  return records.length > 0 && records.every((r) => r !== undefined && r.digest === digest && r.configHash === configHash);
}
