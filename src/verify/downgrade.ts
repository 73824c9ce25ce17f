/**
 * Downgrade protection (pure). An old payload stays validly signed forever, so whoever can serve it
 * (a registry, a mirror, someone who re-tags an old digest as `latest`) could roll trust data back —
 * a revoked CA back into the truststore, an old TSL back into service. Each run therefore records the
 * time its payload's signatures prove, and a later run refuses a payload that proves an older time.
 *
 * What counts as proven — only times covered by a signature we verified:
 * 1. The image signature's signing time (the simple-signing payload's `optional.timestamp`), signed by
 *    the image signer: it dates the whole payload as published, so it wins when present.
 * 2. Otherwise the latest genTime among the verified RFC 3161 timestamps of the payload's files (a
 *    TSA vouches for it; a payload is at least as new as its newest timestamped file).
 * Unsigned data (file mtimes, image `created`, labels, `.revision`) proves nothing and is never used.
 */
import type { FileCheck, ImageCheck, ProvenTime } from './types.js';

export function provenTime(image: ImageCheck | undefined, checks: FileCheck[]): ProvenTime | undefined {
  if (image?.checked && image.signedAt && !Number.isNaN(Date.parse(image.signedAt))) {
    return { time: new Date(image.signedAt).toISOString(), basis: 'image signature' };
  }
  let best: { ms: number; file: string } | undefined;
  for (const c of checks) {
    if (!c.ok || !c.timestamp) continue;
    const ms = Date.parse(c.timestamp);
    if (!Number.isNaN(ms) && (!best || ms > best.ms)) best = { ms, file: c.file };
  }
  return best ? { time: new Date(best.ms).toISOString(), basis: `RFC 3161 timestamp of ${best.file}` } : undefined;
}

/** The latest proven time among the last-applied records of all targets (a target may lag). */
export function lastProvenTime(records: ({ provenTime?: string; provenBasis?: string } | undefined)[]): ProvenTime | undefined {
  let best: ProvenTime | undefined;
  for (const r of records) {
    if (!r?.provenTime || Number.isNaN(Date.parse(r.provenTime))) continue;
    if (!best || Date.parse(r.provenTime) > Date.parse(best.time)) best = { time: r.provenTime, basis: r.provenBasis ?? 'unknown' };
  }
  return best;
}

/**
 * Why applying a payload proving `current` after one proving `last` is a downgrade, or undefined.
 * Equal times are no downgrade (the same payload again, e.g. after a config change). A payload that
 * proves no time at all after one that did is refused too: otherwise stripping the signing time (or
 * switching to a payload without timestamps) would be the way around the check.
 */
export function downgradeProblem(current: ProvenTime | undefined, last: ProvenTime | undefined): string | undefined {
  if (!last) return undefined;
  if (!current) return `payload proves no signing time, but the last applied payload was proven at ${last.time} (${last.basis})`;
  if (Date.parse(current.time) >= Date.parse(last.time)) return undefined;
  return `payload was proven at ${current.time} (${current.basis}), older than the last applied payload's ${last.time} (${last.basis})`;
}
