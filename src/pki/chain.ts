/**
 * Certificate path building and validation (RFC 5280 subset, no revocation): leaf → intermediates →
 * one of several configured anchors. Own code rather than pkijs' CertificateChainValidationEngine so
 * every rule is visible here and each failure has a precise reason.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerifyError, errorMessage } from '../errors.js';
import { authorityKeyId, bytesEqual, certSha256, findExtension, nameString, subjectKeyId, subjectString } from './certs.js';
import { verifySignature } from './engine.js';

export interface ChainInput {
  leaf: pkijs.Certificate;
  /** Untrusted helpers for path building (the signature's own certificates, configured intermediates). */
  intermediates: pkijs.Certificate[];
  /** Trusted certificates; reaching any one of them ends the path (rotation with overlap). */
  anchors: pkijs.Certificate[];
  at: Date;
}

export interface ChainResult {
  anchor: pkijs.Certificate;
  /** leaf first, anchor last. */
  path: pkijs.Certificate[];
  earliestExpiry: Date;
}

/** Certificates in a path, leaf and anchor included; bounds work on hostile certificate sets. */
const MAX_DEPTH = 8;
/** Complete candidate paths examined before giving up (cross-certificates can multiply them). */
const MAX_PATHS = 16;

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
/** Extensions whose semantics we either enforce or that do not restrict a path under purpose "any". */
const UNDERSTOOD_CRITICAL = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  OID_KEY_USAGE,
  '2.5.29.17', // subjectAltName
  '2.5.29.18', // issuerAltName
  OID_BASIC_CONSTRAINTS,
  '2.5.29.32', // certificatePolicies (no policy is required, as with openssl's default)
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage (purpose "any")
]);

const q = (cert: pkijs.Certificate): string => `"${subjectString(cert)}"`;

/** keyUsage bit n (0 = digitalSignature, 5 = keyCertSign) or undefined when there is no keyUsage. */
export function keyUsageBit(cert: pkijs.Certificate, bit: number): boolean | undefined {
  const ext = findExtension(cert, OID_KEY_USAGE);
  if (!ext) return undefined;
  const bits = ext.parsedValue;
  // An unparsable keyUsage is treated as granting nothing: failing closed.
  if (!(bits instanceof asn1js.BitString)) return false;
  const byte = bits.valueBlock.valueHexView[bit >> 3] ?? 0;
  return (byte & (0x80 >> (bit & 7))) !== 0;
}

function basicConstraints(cert: pkijs.Certificate): { cA: boolean; pathLen?: number } | undefined {
  const ext = findExtension(cert, OID_BASIC_CONSTRAINTS);
  if (!ext) return undefined;
  const bc = ext.parsedValue;
  if (!(bc instanceof pkijs.BasicConstraints)) return { cA: false };
  const pathLen = typeof bc.pathLenConstraint === 'number' ? bc.pathLenConstraint : bc.pathLenConstraint?.valueBlock.valueDec;
  return { cA: bc.cA === true, pathLen };
}

/** Does `issuer`'s key verify `cert`'s signature? Algorithm errors count as "no". */
export function signedBy(cert: pkijs.Certificate, issuer: pkijs.Certificate): boolean {
  try {
    return verifySignature(cert.tbsView, cert.signatureValue.valueBlock.valueHexView, issuer.subjectPublicKeyInfo, cert.signatureAlgorithm);
  } catch {
    return false;
  }
}

function isSelfSigned(cert: pkijs.Certificate): boolean {
  return cert.subject.isEqual(cert.issuer) && signedBy(cert, cert);
}

/** Name match, plus AKI/SKI agreement when both exist (narrows candidates, e.g. after a key rollover). */
function couldIssue(cert: pkijs.Certificate, issuer: pkijs.Certificate): boolean {
  if (!cert.issuer.isEqual(issuer.subject)) return false;
  const aki = authorityKeyId(cert);
  const ski = subjectKeyId(issuer);
  return !aki || !ski || bytesEqual(aki, ski);
}

function dedupe(certs: pkijs.Certificate[]): Map<string, pkijs.Certificate> {
  const map = new Map<string, pkijs.Certificate>();
  for (const c of certs) if (!map.has(certSha256(c))) map.set(certSha256(c), c);
  return map;
}

/** Rules a complete path must satisfy; returns the first violation, or undefined. */
function checkPath(path: pkijs.Certificate[], at: Date): string | undefined {
  const anchorIndex = path.length - 1;
  for (const [i, cert] of path.entries()) {
    const notBefore = cert.notBefore.value;
    const notAfter = cert.notAfter.value;
    if (at.getTime() > notAfter.getTime()) return `certificate ${q(cert)} expired on ${notAfter.toISOString()}`;
    if (at.getTime() < notBefore.getTime()) return `certificate ${q(cert)} is not valid before ${notBefore.toISOString()}`;
    // RFC 5280 §4.1.1.2: the signed algorithm field must match the outer one; a mismatch means the
    // certificate was altered or is malformed.
    if (i < anchorIndex && cert.signature.algorithmId !== cert.signatureAlgorithm.algorithmId) {
      return `certificate ${q(cert)} has inconsistent signature algorithms`;
    }
    // An unknown critical extension is a restriction we cannot honour: refuse rather than ignore it.
    for (const ext of cert.extensions ?? []) {
      if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.extnID)) {
        return `certificate ${q(cert)} has an unsupported critical extension ${ext.extnID}`;
      }
    }
    if (i === 0) continue;
    // Issuer rules: without them any end-entity certificate under the anchor could mint certificates.
    const v1Root = i === anchorIndex && cert.version === 0 && isSelfSigned(cert);
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

  const complete: pkijs.Certificate[][] = [];
  const signatureFailures: string[] = [];
  const otherFailures: string[] = [];

  const visit = (path: pkijs.Certificate[], fps: string[]): void => {
    if (complete.length >= MAX_PATHS) return;
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
        isSelfSigned(cur)
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
          cand === cur && isSelfSigned(cur)
            ? `no trusted anchor for ${q(leaf)}: chain ends at untrusted root ${q(cur)}`
            : `no trusted anchor for ${q(leaf)}: certificate loop at ${q(cand)}`,
        );
        continue;
      }
      if (!signedBy(cur, cand)) {
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
    const violation = checkPath(path, at);
    if (violation === undefined) {
      const earliest = Math.min(...path.map((c) => c.notAfter.value.getTime()));
      return { anchor: path[path.length - 1]!, path, earliestExpiry: new Date(earliest) };
    }
    firstViolation ??= violation;
  }
  // Prefer the reason from a path that reached an anchor, then signature failures (an altered or
  // mis-issued certificate), then "not found" style reasons.
  const reason = firstViolation ?? signatureFailures[0] ?? otherFailures[0] ?? `no trusted anchor for ${q(leaf)}`;
  throw new VerifyError(reason);
}
