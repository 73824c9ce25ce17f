/**
 * Certificate path building and validation (RFC 5280 subset, no revocation): leaf → intermediates →
 * one of several configured anchors. Own code rather than pkijs' CertificateChainValidationEngine so
 * every rule is visible here and each failure has a precise reason.
 */
import { VerifyError, errorMessage } from '../errors.js';
import {
  authorityKeyId,
  basicConstraints,
  bytesEqual,
  type Certificate,
  certSha256,
  keyUsageBit,
  malformedExtension,
  namesEqual,
  nameString,
  subjectKeyId,
  subjectString,
} from './certs.js';
import { verifySignature } from './engine.js';

export interface ChainInput {
  leaf: Certificate;
  /** Untrusted helpers for path building (the signature's own certificates, configured intermediates). */
  intermediates: Certificate[];
  /** Trusted certificates; reaching any one of them ends the path (rotation with overlap). */
  anchors: Certificate[];
  at: Date;
}

export interface ChainResult {
  anchor: Certificate;
  /** leaf first, anchor last. */
  path: Certificate[];
  earliestExpiry: Date;
}

/** Certificates in a path, leaf and anchor included; bounds work on hostile certificate sets. */
const MAX_DEPTH = 8;
/** Complete candidate paths examined before giving up (cross-certificates can multiply them). */
const MAX_PATHS = 16;
/**
 * Distinct signature checks one path search may make. Without it, N look-alike certificates (same
 * name, same key, signing each other) make the depth-first search try N·(N−1)·…·(N−6) paths that never
 * reach an anchor — ~6×10⁷ checks for cosign's 16-certificate chain annotation.
 */
const MAX_SIGNATURE_CHECKS = 256;
/** Partial paths one search may extend (see MAX_SIGNATURE_CHECKS). */
const MAX_SEARCH_STEPS = 4096;

const OID_NAME_CONSTRAINTS = '2.5.29.30';
/** Extensions whose semantics we either enforce or that do not restrict a path under purpose "any". */
const UNDERSTOOD_CRITICAL = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.18', // issuerAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies (no policy is required, as with openssl's default)
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage (purpose "any")
]);

const q = (cert: Certificate): string => `"${subjectString(cert)}"`;

/** Does `issuer`'s key verify `cert`'s signature? Algorithm errors count as "no". */
export function signedBy(cert: Certificate, issuer: Certificate): boolean {
  try {
    return verifySignature(cert.tbs, cert.signature, issuer.spki, cert.signatureAlgorithm);
  } catch {
    return false;
  }
}

type SignedBy = (cert: Certificate, issuer: Certificate) => boolean;

function isSelfSigned(cert: Certificate, signed: SignedBy = signedBy): boolean {
  return namesEqual(cert.subject, cert.issuer) && signed(cert, cert);
}

/** signedBy, each pair checked once, within a budget shared by one path search. */
function boundedSignedBy(leaf: Certificate): SignedBy {
  const verdicts = new Map<string, boolean>();
  return (cert, issuer) => {
    const key = `${certSha256(cert)}>${certSha256(issuer)}`;
    let ok = verdicts.get(key);
    if (ok === undefined) {
      if (verdicts.size >= MAX_SIGNATURE_CHECKS) {
        throw new VerifyError(`no trusted anchor for ${q(leaf)}: path search gave up after ${MAX_SIGNATURE_CHECKS} signature checks`);
      }
      ok = signedBy(cert, issuer);
      verdicts.set(key, ok);
    }
    return ok;
  };
}

/** Name match, plus AKI/SKI agreement when both exist (narrows candidates, e.g. after a key rollover). */
function couldIssue(cert: Certificate, issuer: Certificate): boolean {
  if (!namesEqual(cert.issuer, issuer.subject)) return false;
  const aki = authorityKeyId(cert);
  const ski = subjectKeyId(issuer);
  return !aki || !ski || bytesEqual(aki, ski);
}

function dedupe(certs: Certificate[]): Map<string, Certificate> {
  const map = new Map<string, Certificate>();
  for (const c of certs) if (!map.has(certSha256(c))) map.set(certSha256(c), c);
  return map;
}

/** Rules a complete path must satisfy; returns the first violation, or undefined. */
function checkPath(path: Certificate[], at: Date, signed: SignedBy): string | undefined {
  const anchorIndex = path.length - 1;
  for (const [i, cert] of path.entries()) {
    const { notBefore, notAfter } = cert;
    if (at.getTime() > notAfter.getTime()) return `certificate ${q(cert)} expired on ${notAfter.toISOString()}`;
    if (at.getTime() < notBefore.getTime()) return `certificate ${q(cert)} is not valid before ${notBefore.toISOString()}`;
    // RFC 5280 §4.1.1.2: the signed algorithm field must match the outer one; a mismatch means the
    // certificate was altered or is malformed.
    if (i < anchorIndex && !bytesEqual(cert.tbsSignatureAlgorithm.der, cert.signatureAlgorithm.der)) {
      return `certificate ${q(cert)} has inconsistent signature algorithms`;
    }
    const malformed = malformedExtension(cert);
    if (malformed) return `certificate ${q(cert)} has a malformed ${malformed} extension`;
    // An unknown critical extension is a restriction we cannot honour: refuse rather than ignore it.
    // nameConstraints likewise, critical or not: OpenSSL enforces even a (non-conforming) non-critical
    // one, so ignoring it would accept a subordinate CA's certificate for names it may not issue.
    if (cert.extensions.some((e) => e.oid === OID_NAME_CONSTRAINTS)) {
      return `certificate ${q(cert)} carries nameConstraints, which this verifier does not evaluate (refused, not ignored)`;
    }
    for (const ext of cert.extensions) {
      if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.oid)) {
        return `certificate ${q(cert)} has an unsupported critical extension ${ext.oid}`;
      }
    }
    if (i === 0) continue;
    // Issuer rules: without them any end-entity certificate under the anchor could mint certificates.
    const v1Root = i === anchorIndex && cert.version === 0 && isSelfSigned(cert, signed);
    const bc = basicConstraints(cert);
    if (!v1Root && !bc?.cA) return `certificate ${q(cert)} issued ${q(path[i - 1]!)} but is not a CA (basicConstraints cA is not set)`;
    if (keyUsageBit(cert, 5) === false) return `certificate ${q(cert)} issued ${q(path[i - 1]!)} but its keyUsage lacks keyCertSign`;
    // pathLenConstraint counts the intermediates below this CA (the leaf is not counted).
    const below = i - 1;
    if (bc?.pathLen !== undefined && below > bc.pathLen) {
      return `certificate ${q(cert)} allows ${bc.pathLen} intermediate(s) below it, the path has ${below}`;
    }
  }
  return undefined;
}

/**
 * Build every path from `leaf` to an anchor (depth-first, bounded, loops refused), then accept the first
 * that passes checkPath. Throws VerifyError with the most telling reason when none does.
 */
export function validateChain({ leaf, intermediates, anchors, at }: ChainInput): ChainResult {
  if (anchors.length === 0) throw new VerifyError(`no trust anchors configured to validate ${q(leaf)}`);
  const anchorMap = dedupe(anchors);
  const pool = [...dedupe(intermediates).entries()].filter(([fp]) => !anchorMap.has(fp)).map(([, c]) => c);
  const candidatesAll = [...anchorMap.values(), ...pool];

  const complete: Certificate[][] = [];
  const signed = boundedSignedBy(leaf);
  const signatureFailures: string[] = [];
  const otherFailures: string[] = [];

  let steps = 0;
  const visit = (path: Certificate[], fps: string[]): void => {
    if (complete.length >= MAX_PATHS) return;
    // Cached verdicts make each step cheap, but look-alike certificates can still make the number of
    // partial paths explode: the search as a whole is bounded too.
    if (++steps > MAX_SEARCH_STEPS) throw new VerifyError(`no trusted anchor for ${q(leaf)}: path search gave up after ${MAX_SEARCH_STEPS} steps`);
    const cur = path[path.length - 1]!;
    if (anchorMap.has(fps[fps.length - 1]!)) {
      complete.push([...path]);
      return;
    }
    if (path.length >= MAX_DEPTH) {
      otherFailures.push(`no trusted anchor for ${q(leaf)}: path longer than ${MAX_DEPTH} certificates`);
      return;
    }
    const candidates = candidatesAll.filter((c) => couldIssue(cur, c));
    if (candidates.length === 0) {
      const what = cur === leaf ? '' : ` of ${q(cur)}`;
      otherFailures.push(
        isSelfSigned(cur, signed)
          ? `no trusted anchor for ${q(leaf)}: chain ends at untrusted root ${q(cur)}`
          : `no trusted anchor for ${q(leaf)}: issuer "${nameString(cur.issuer)}"${what} not found`,
      );
      return;
    }
    for (const cand of candidates) {
      const fp = certSha256(cand);
      // Loops (including a self-signed certificate naming itself) can never reach an anchor.
      if (fps.includes(fp)) {
        otherFailures.push(
          cand === cur && isSelfSigned(cur, signed)
            ? `no trusted anchor for ${q(leaf)}: chain ends at untrusted root ${q(cur)}`
            : `no trusted anchor for ${q(leaf)}: certificate loop at ${q(cand)}`,
        );
        continue;
      }
      if (!signed(cur, cand)) {
        signatureFailures.push(`signature of ${q(cur)} by ${q(cand)} does not verify`);
        continue;
      }
      path.push(cand);
      fps.push(fp);
      visit(path, fps);
      path.pop();
      fps.pop();
    }
  };
  try {
    visit([leaf], [certSha256(leaf)]);
  } catch (err) {
    if (err instanceof VerifyError) throw err;
    throw new VerifyError(`cannot build a chain for ${q(leaf)}: ${errorMessage(err)}`, undefined, undefined, { cause: err });
  }

  let firstViolation: string | undefined;
  for (const path of complete) {
    const violation = checkPath(path, at, signed);
    if (violation === undefined) {
      const earliest = Math.min(...path.map((c) => c.notAfter.getTime()));
      return { anchor: path[path.length - 1]!, path, earliestExpiry: new Date(earliest) };
    }
    firstViolation ??= violation;
  }
  // Prefer the reason from a path that reached an anchor, then signature failures (an altered or
  // mis-issued certificate), then "not found" style reasons.
  const reason = firstViolation ?? signatureFailures[0] ?? otherFailures[0] ?? `no trusted anchor for ${q(leaf)}`;
  throw new VerifyError(reason);
}
