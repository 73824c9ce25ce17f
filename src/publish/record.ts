/**
 * The one applied-record type: what a run applied (payload, config, freshness) and what each target
 * holds because of it. The pipeline builds it once per run and passes it whole to every target; each
 * target stores it beside itself (the volume's `..zeta-provision.json`, the status ConfigMap, the
 * `--kube-out` directory's `.zeta-provision.json`) and reads it back in `observe()`.
 *
 * Stored records carry a format version. Records of release 0.1.0 (version 1, five different shapes)
 * are read and converted (upgrade.ts), and rewritten in this format by the next run that writes; a
 * record from a newer release is refused with a message, never guessed at or overwritten.
 */
import { PublishError } from '../errors.js';

/** Format of every stored record. Bump it when a field changes meaning; add upgrade code for the old one. */
export const RECORD_VERSION = 2;

export interface Freshness {
  /** Earliest notAfter (ISO 8601) of a certificate the applied payload relied on. */
  earliestCertificateExpiry?: string;
  /** NextUpdate (ISO 8601) of the applied TSL. */
  tslNextUpdate?: string;
}

export interface AppliedRecord {
  version: typeof RECORD_VERSION;
  /** The source reference as given, its manifest digest and the payload revision. */
  source: string;
  digest: string;
  revision?: string;
  /** Hash of the resolved config: a changed config is a new apply even for the same digest. */
  configHash: string;
  appliedAt: string;
  /** Time the payload's verified signatures prove, and what proves it (downgrade protection). */
  proven?: { time: string; basis: string };
  freshness: Freshness;
  /**
   * Per-target details, keyed by Target.id: what that target holds because of this payload (hashes,
   * generation names, objects, consumer input hashes). Never secret values.
   */
  targets: Record<string, unknown>;
  /** Set when this state was reached by `zeta-provision rollback` (from the digest that was rolled back). */
  rollback?: { fromDigest: string; fromConfigHash?: string; at: string };
}

/** The record a run is about to apply, before any target has added its details. */
export function newRecord(fields: Omit<AppliedRecord, 'version' | 'targets' | 'appliedAt'> & { appliedAt?: string }): AppliedRecord {
  return { version: RECORD_VERSION, appliedAt: fields.appliedAt ?? new Date().toISOString(), ...fields, targets: {} };
}

/**
 * Same payload and config (the per-target details are compared by each target against its live
 * state). A rollback holds: the payload and config it moved away from count as applied, so the next
 * run neither undoes it silently nor re-publishes; a new digest or config ends it.
 */
export function samePayload(a: Pick<AppliedRecord, 'digest' | 'configHash' | 'rollback'> | undefined, digest: string, configHash: string): boolean {
  if (a === undefined) return false;
  if (a.digest === digest && a.configHash === configHash) return true;
  return a.rollback !== undefined && a.rollback.fromDigest === digest && (a.rollback.fromConfigHash ?? configHash) === configHash;
}

/**
 * Checks the version of a stored document: undefined for an absent or unreadable one (the worst
 * outcome is one unnecessary re-apply), the version number otherwise. A newer version is an error.
 */
export function storedVersion(doc: unknown, where: string): number | undefined {
  if (doc === null || typeof doc !== 'object') return undefined;
  const v = (doc as { version?: unknown }).version;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return undefined;
  if (v > RECORD_VERSION) {
    throw new PublishError(
      `${where} was written by a newer zeta-provision (record format ${v}; this release reads up to ${RECORD_VERSION}); refusing to read or overwrite it`,
      'run the newer zeta-provision release (or roll the CronJob image back to it) instead of this one',
    );
  }
  return v;
}

/**
 * A stored document as text → its parsed JSON and format version. Unparseable counts as absent (the
 * worst outcome is one unnecessary re-apply); a newer format throws (storedVersion).
 */
export function parseStored(text: string, where: string): { doc: unknown; version: number } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const version = storedVersion(doc, where);
  return version === undefined ? undefined : { doc, version };
}

/** A stored record in the current format, checked field by field (hostile input: the shape too). */
export function parseRecord(doc: unknown): AppliedRecord | undefined {
  if (doc === null || typeof doc !== 'object') return undefined;
  const r = doc as Partial<AppliedRecord>;
  if (r.version !== RECORD_VERSION || typeof r.digest !== 'string' || typeof r.configHash !== 'string' || typeof r.source !== 'string') return undefined;
  if (typeof r.appliedAt !== 'string' || r.targets === null || typeof r.targets !== 'object' || Array.isArray(r.targets)) return undefined;
  return { ...r, freshness: r.freshness && typeof r.freshness === 'object' ? r.freshness : {} } as AppliedRecord;
}
