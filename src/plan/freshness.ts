/**
 * How fresh the trust data is, for the applied record and the report (domain logic; report/ only renders it): the earliest certificate
 * expiry among the anchors and signers this run checked (image chain, file signatures, the policy
 * signer), the TSL's NextUpdate, and — when reading a status record back — the age of the payload
 * that was applied. Pure functions: the caller passes `now`.
 */
import { DEFAULT_EXPIRY_WARNING_DAYS } from '../config/validate.js';
import { DEFAULT_TSL_WARN_DAYS } from '../config/process.js';
import type { ProcessorSummary } from '../process/types.js';
import type { ImageCheck, VerificationReport } from '../verify/types.js';
import { DAY_MS, describeTime } from '../util/time.js';

export interface Freshness {
  /** Earliest notAfter (ISO 8601) of a certificate the run relied on. */
  earliestCertificateExpiry?: string;
  /** The TSL's NextUpdate (ISO 8601), when a TSL was processed. */
  tslNextUpdate?: string;
  /** Up-to-date runs only (from the status records): when the payload in place was applied, and how long ago. */
  appliedAt?: string;
  payloadAgeSeconds?: number;
}

/**
 * A payload older than this while the CronJob runs hourly means no new payload arrives (source stuck,
 * runs failing): gematik's TSL alone is reissued well within a month.
 */
export const PAYLOAD_AGE_WARNING_DAYS = 30;

export function freshnessOf(report: { image?: ImageCheck; verification?: VerificationReport; processed?: ProcessorSummary[] }): Freshness {
  const expiries = [
    report.image?.signer?.earliestExpiry,
    // A timestamped signature stays valid after its chain expires (the timestamp proves when it was
    // made), so only untimestamped chains limit how long the payload can be used — as in verify's warnings.
    ...(report.verification?.checks ?? []).filter((c) => c.ok && !c.timestamp).flatMap((c) => c.signers.map((s) => s.earliestExpiry)),
    ...(report.processed ?? []).map((p) => p.notAfter),
  ];
  const out: Freshness = {};
  const earliest = earliestOf(expiries);
  if (earliest) out.earliestCertificateExpiry = earliest;
  const tsl = earliestOf((report.processed ?? []).map((p) => p.nextUpdate));
  if (tsl) out.tslNextUpdate = tsl;
  return out;
}

/** Compared as instants, not strings: offsets and fractional seconds would mis-sort lexically. */
function earliestOf(times: (string | undefined)[]): string | undefined {
  const valid = times.filter((t): t is string => !!t && !Number.isNaN(Date.parse(t)));
  return valid.sort((a, b) => Date.parse(a) - Date.parse(b))[0];
}

export interface FreshnessLimits {
  expiryWarningDays: number;
  tslWarningDays: number;
  payloadAgeWarningDays: number;
}

export const DEFAULT_LIMITS: FreshnessLimits = {
  expiryWarningDays: DEFAULT_EXPIRY_WARNING_DAYS,
  tslWarningDays: DEFAULT_TSL_WARN_DAYS,
  payloadAgeWarningDays: PAYLOAD_AGE_WARNING_DAYS,
};

/** Warnings for a recorded state (near or over a limit); `appliedAt` gives the payload's age. */
export function freshnessWarnings(f: Freshness & { appliedAt?: string }, now: Date, limits: FreshnessLimits = DEFAULT_LIMITS): string[] {
  const out: string[] = [];
  if (f.earliestCertificateExpiry) {
    const d = Date.parse(f.earliestCertificateExpiry) - now.getTime();
    if (d <= 0) out.push(`a certificate the applied payload relies on expired on ${f.earliestCertificateExpiry}`);
    else if (d < limits.expiryWarningDays * DAY_MS)
      out.push(`a certificate the applied payload relies on expires ${describeTime(f.earliestCertificateExpiry, now)}`);
  }
  if (f.tslNextUpdate) {
    const d = Date.parse(f.tslNextUpdate) - now.getTime();
    if (d <= 0) out.push(`the applied TSL is past its NextUpdate (${describeTime(f.tslNextUpdate, now)}): a newer TSL should have been provisioned`);
    else if (d < limits.tslWarningDays * DAY_MS) out.push(`the applied TSL's NextUpdate is ${describeTime(f.tslNextUpdate, now)}`);
  }
  if (f.appliedAt) {
    const age = now.getTime() - Date.parse(f.appliedAt);
    if (age > limits.payloadAgeWarningDays * DAY_MS)
      out.push(`the applied payload is ${Math.floor(age / DAY_MS)} days old (applied ${f.appliedAt}); check that new payloads still arrive`);
  }
  return out;
}

/**
 * The processors' own certificates (the policy signer) near or past expiry. Image and file signer
 * chains are warned about by the verify stage; this covers what only the process stage reads.
 */
export function processedExpiryWarnings(processed: Pick<ProcessorSummary, 'input' | 'notAfter'>[], now: Date, days: number): string[] {
  return processed.flatMap((p) => {
    if (!p.notAfter) return [];
    const left = Date.parse(p.notAfter) - now.getTime();
    return left < days * DAY_MS ? [`${p.input}: certificate ${left <= 0 ? 'expired' : 'expires'} ${describeTime(p.notAfter, now)}`] : [];
  });
}

/** What the last-applied records say (first with a valid time), for a run that found nothing new. */
export function recordedFreshness(
  records: ({ appliedAt: string; earliestCertificateExpiry?: string; tslNextUpdate?: string } | undefined)[],
  now: Date,
): (Freshness & { appliedAt: string; payloadAgeSeconds: number }) | undefined {
  const r = records.find((x) => x !== undefined && !Number.isNaN(Date.parse(x.appliedAt)));
  if (!r) return undefined;
  return {
    ...(r.earliestCertificateExpiry ? { earliestCertificateExpiry: r.earliestCertificateExpiry } : {}),
    ...(r.tslNextUpdate ? { tslNextUpdate: r.tslNextUpdate } : {}),
    appliedAt: r.appliedAt,
    payloadAgeSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(r.appliedAt)) / 1000)),
  };
}
