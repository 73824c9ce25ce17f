/**
 * Pure decisions on a parsed TSL: which certificates become SMC-B trust roots and OCSP signers, and
 * whether the list is still fresh. No I/O, so every rule has a direct unit test.
 */
import crypto from 'node:crypto';
import { VerifyError, errorMessage } from '../../errors.js';
import { DAY_MS } from '../../util/time.js';
import type { TslModel, TslService } from './model.js';

export const OID_SMCB_AUT_EXTENSION = '1.2.276.0.76.4.77';
export const SMCB_AUT_VALUE = 'oid_smc_b_aut';
export const SVCTYPE_OCSP = 'http://uri.etsi.org/TrstSvc/Svctype/Certstatus/OCSP';
export const STATUS_IN_ACCORD = 'http://uri.etsi.org/TrstSvc/Svcstatus/inaccord';
export const STATUS_REVOKED = 'http://uri.etsi.org/TrstSvc/Svcstatus/revoked';

export interface TrustEntry {
  certificate: Buffer;
  /** Lower-case hex SHA-256 of the DER. */
  sha256: string;
  /** The service name: the PKCS#12 friendlyName and the key Keycloak's meta JSON is matched by. */
  friendlyName: string;
  tspName: string;
  /** StatusStartingTime of a revoked service: certificates issued before it stay valid. */
  revokedSince?: string;
}

export interface Selection {
  entries: TrustEntry[];
  warnings: string[];
}

/** SMC-B CAs: the service carries extension 1.2.276.0.76.4.77 = oid_smc_b_aut and is in accord or revoked. */
export function selectSmcbCas(tsl: TslModel): Selection {
  return select(
    tsl,
    (s) =>
      s.extensions.some((e) => e.oid === OID_SMCB_AUT_EXTENSION && e.value === SMCB_AUT_VALUE) &&
      (s.status === STATUS_IN_ACCORD || s.status === STATUS_REVOKED),
    'SMC-B CA',
  );
}

/** OCSP responder signers: service type Certstatus/OCSP, in accord. A revoked responder is never trusted. */
export function selectOcspSigners(tsl: TslModel): Selection {
  return select(tsl, (s) => s.type === SVCTYPE_OCSP && s.status === STATUS_IN_ACCORD, 'OCSP signer');
}

function select(tsl: TslModel, wanted: (s: TslService) => boolean, what: string): Selection {
  const entries: TrustEntry[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const service of tsl.services) {
    if (!wanted(service)) continue;
    const friendlyName = plainText(service.serviceName);
    let revokedSince: string | undefined;
    if (service.status === STATUS_REVOKED) {
      // Without the time of revocation a revoked CA would have to be trusted for everything, or for
      // nothing; nothing is the safe one.
      if (!service.statusStartingTimeText) {
        warnings.push(`${what} "${friendlyName}" is revoked without a StatusStartingTime; left out`);
        continue;
      }
      revokedSince = service.statusStartingTimeText;
    }
    if (service.certificates.length === 0) warnings.push(`${what} "${friendlyName}" has no X509Certificate; nothing to add`);
    for (const der of service.certificates) {
      try {
        // OpenSSL's parser (node:crypto), not a lenient one: OpenSSL-based readers of the PKCS#12 store
        // give up on the whole store at the first bag they cannot parse (see src/process/tpm.ts).
        new crypto.X509Certificate(der);
      } catch (err) {
        warnings.push(`${what} "${friendlyName}": certificate does not parse (${errorMessage(err)}); left out`);
        continue;
      }
      const sha256 = crypto.createHash('sha256').update(der).digest('hex');
      if (seen.has(sha256)) continue;
      seen.add(sha256);
      entries.push({ certificate: der, sha256, friendlyName, tspName: plainText(service.tspName), ...(revokedSince ? { revokedSince } : {}) });
    }
  }
  return { entries, warnings };
}

/**
 * Names are data, never code: they reach a PKCS#12 friendlyName and JSON, both of which carry any
 * text. Control characters are the one thing replaced, so a name cannot forge a log line.
 */
export function plainText(s: string): string {
  return s
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
}

export interface FreshnessPolicy {
  /** Warn when NextUpdate is closer than this. */
  warnDays: number;
  /** Past NextUpdate, keep using the list for this long (with a warning), then fail. */
  graceDays: number;
}

/** A warning, or undefined; throws VerifyError once the grace period after NextUpdate is over. */
export function checkFreshness(tsl: TslModel, now: Date, policy: FreshnessPolicy, file: string): string | undefined {
  const next = tsl.nextUpdate;
  if (!next) throw new VerifyError(`${file}: TSL has no NextUpdate (a closed list); refusing to derive trust from it`, file);
  const next_ = next.toISOString();
  const late = now.getTime() - next.getTime();
  if (late > policy.graceDays * DAY_MS) {
    throw new VerifyError(
      `${file}: TSL expired: NextUpdate was ${next_}, ${Math.floor(late / DAY_MS)} day(s) ago, beyond the grace period of ${policy.graceDays} day(s)`,
      file,
      'provision a current TSL, or raise the grace period (--tsl-grace-days) if you knowingly accept a stale one',
    );
  }
  if (late > 0) return `${file}: TSL is past its NextUpdate (${next_}), within the grace period of ${policy.graceDays} day(s)`;
  if (-late < policy.warnDays * DAY_MS) return `${file}: TSL NextUpdate ${next_} is less than ${policy.warnDays} day(s) away`;
  return undefined;
}
