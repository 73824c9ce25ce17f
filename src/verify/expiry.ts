/**
 * Expiry warnings (pure): a chain that verifies today but ends within the configured number of days
 * will fail a run soon, and rotating a signing certificate takes longer than an hourly CronJob waits.
 */
import { DAY_MS } from '../util/time.js';
import type { FileCheck, ImageCheck, SignerReport } from './types.js';

function warningFor(what: string, s: SignerReport, now: Date, days: number): string | undefined {
  const expiry = Date.parse(s.earliestExpiry);
  if (Number.isNaN(expiry) || expiry - now.getTime() > days * DAY_MS) return undefined;
  const left = Math.max(0, Math.floor((expiry - now.getTime()) / DAY_MS));
  return `${what}: the chain of "${s.subject}" (anchor "${s.anchor}") expires on ${s.earliestExpiry} (in ${left} day${left === 1 ? '' : 's'})`;
}

/**
 * One warning per signer whose chain expires within `days` of `now`. Checks proven by a verified
 * timestamp are left out: their chain was validated at the token's time, so certificate expiry can no
 * longer make them fail (Microsoft's one-year signing certificates would otherwise warn forever).
 */
export function expiryWarnings(checks: FileCheck[], image: ImageCheck | undefined, now: Date, days: number): string[] {
  const out: string[] = [];
  if (image?.checked && image.signer) {
    const w = warningFor('image signature', image.signer, now, days);
    if (w) out.push(w);
  }
  for (const c of checks) {
    if (!c.ok || c.timestamp) continue;
    for (const s of c.signers) {
      const w = warningFor(c.file, s, now, days);
      if (w) out.push(w);
    }
  }
  return out;
}
