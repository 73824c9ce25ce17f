/**
 * Whom a TSL signer must chain to, and how that is said when it does not. gematik's TSL is signed by
 * a "TSL Signing Unit" under a GEM.TSL-CA, which is issued by a GEM.RCA root; the KeyInfo carries only
 * the signer. The path is built with untrusted helpers — the TSL's own service certificates (they
 * include the GEM.TSL-CA entries) and the payload's roots.json cross-certificates — and must end at a
 * configured anchor (the shipped GEM.RCA roots, or the operator's). Helpers from the unverified list
 * are safe to use: each link's signature is checked, so they can only complete a path a root vouches for.
 */
import type { Certificate } from '../../pki/certs.js';
import { VerifyError, errorMessage } from '../../errors.js';
import { parseCertificate, subjectString } from '../../pki/certs.js';
import { validateChain, type ChainResult } from '../../pki/chain.js';

export interface TslTrust {
  anchors: Certificate[];
  /** Untrusted candidates for the path (TSL service certificates, roots.json cross-certificates). */
  intermediates: Certificate[];
  /** What the anchors are, for messages: `built-in gematik-rca`, `--tsl-signer-anchor a.pem` … */
  anchorOrigin: string;
  /** DER of the TSL's service certificates; only those that could issue the signer are parsed. */
  serviceCerts?: readonly Uint8Array[];
  /** The payload's roots.json cross-certificates (GEM.RCAn ↔ GEM.RCAn+1). */
  cross?: Certificate[];
}

/**
 * Certificates from `ders` (TSL service identities) that could issue `leaf` or one of its issuers:
 * only those whose bytes contain the issuer name are parsed, so a list of hundreds of CAs costs little.
 */
export function candidateIssuers(leaf: Certificate, ders: readonly Uint8Array[], file: string): Certificate[] {
  const issuerName = leaf.issuer.der;
  const out: Certificate[] = [];
  for (const der of ders) {
    if (Buffer.from(der.buffer, der.byteOffset, der.byteLength).indexOf(issuerName) < 0) continue;
    try {
      out.push(parseCertificate(der, `${file} service certificate`));
    } catch {
      // A damaged service certificate cannot help a path; the selection reports it where it matters.
    }
  }
  return out;
}

/** Validate the signer's path or throw the operator-facing reason (what is missing, what to add). */
export function trustTslSigner(signer: Certificate, keyInfoExtras: Certificate[], trust: TslTrust, at: Date, file: string): ChainResult {
  try {
    const fromList = candidateIssuers(signer, trust.serviceCerts ?? [], file);
    return validateChain({
      leaf: signer,
      intermediates: [...keyInfoExtras, ...trust.intermediates, ...fromList, ...(trust.cross ?? [])],
      anchors: trust.anchors,
      at,
    });
  } catch (err) {
    const who = `"${subjectString(signer)}"`;
    const why = errorMessage(err);
    const test = /TEST-ONLY/.test(subjectString(signer))
      ? "; a TEST-ONLY signer belongs to gematik's test environment (RU/TU): use --tsl-trust gematik-rca-test"
      : '';
    if (/^no trusted anchor/.test(why)) {
      // Path-building failures (issuer not found, loops through other roots' cross-certificates, an
      // untrusted root): say which anchors were tried and what would complete the path.
      throw new VerifyError(
        `${file}: TSL signature: no path from the TSL signer ${who} to a trusted GEM root (${trust.anchorOrigin}): ${why.replace(/^no trusted anchor for "[^"]*"(: )?/, '') || 'no anchor reached'}`,
        file,
        `add the issuing GEM.TSL-CA or its GEM.RCA root with --tsl-signer-anchor FILE, or name the right trust set with --tsl-trust${test}`,
      );
    }
    throw new VerifyError(`${file}: TSL signature: the TSL signer ${who} is not trusted: ${why}`, file, `check the anchors (${trust.anchorOrigin})${test}`);
  }
}

/** The XML signature check's reasons (xmldsig.ts), said as what was altered (the operator acts on that, not on base64). */
export function describeSignatureFailure(raw: string): string {
  // xmldsig.ts says which reference failed; keep that, and say in words what it means for the operator.
  if (/^digest of .* differs/.test(raw)) return `the TSL was altered after signing: ${raw}`;
  if (/^signature value does not verify/.test(raw)) return `the TSL or its signature was altered: ${raw}`;
  return raw;
}
