/**
 * TSL processor: ETSI TSL bytes → SMC-B CA and OCSP signer selections. Order matters: parse safely,
 * check the signature (when anchors are configured) before anything from the list is used, then
 * freshness, then selection.
 */
import type { Certificate } from '../../pki/certs.js';
import { readTsl } from './model.js';
import { checkFreshness, selectOcspSigners, selectSmcbCas, type FreshnessPolicy, type Selection } from './select.js';
import { verifyTslSignature, type TslSignatureResult } from './signature.js';
import { parseTslXml } from './xml.js';

export { checkFreshness, plainText, selectOcspSigners, selectSmcbCas, type TrustEntry, type Selection } from './select.js';
export { parseTslXml } from './xml.js';
export { readTsl } from './model.js';

export interface TslOptions extends FreshnessPolicy {
  now: Date;
  /** TSL signer anchors; empty = signature not checked (and reported so). */
  signerAnchors: Certificate[];
  /** Untrusted path helpers besides the list's own services (the payload's roots.json cross-certificates). */
  crossCertificates?: Certificate[];
  /** What the anchors are, for messages (`built-in gematik-rca` …). */
  anchorOrigin?: string;
  /** `off`: the operator turned the check off explicitly; warned about on every run. */
  signature?: 'required' | 'off';
}

export interface TslResult {
  file: string;
  sequenceNumber?: string;
  nextUpdate?: string;
  signature: TslSignatureResult;
  smcb: Selection;
  ocsp: Selection;
  warnings: string[];
}

export function processTsl(bytes: Uint8Array, file: string, options: TslOptions): TslResult {
  const parsed = parseTslXml(bytes, file);
  // The model is read first only to offer its CA certificates as untrusted path helpers; nothing from
  // it is used before the signature check below has passed.
  const model = readTsl(parsed, file);
  const serviceCerts = model.services.flatMap((s) => s.certificates);
  const signature: TslSignatureResult =
    options.signature === 'off'
      ? { checked: false, reason: 'turned off with --tsl-signature off or process.tsl.signature' }
      : verifyTslSignature(
          parsed,
          {
            anchors: options.signerAnchors,
            intermediates: [],
            anchorOrigin: options.anchorOrigin ?? 'configured anchors',
            serviceCerts,
            cross: options.crossCertificates ?? [],
          },
          options.now,
          file,
        );
  const warnings: string[] = [];
  const fresh = checkFreshness(model, options.now, options, file);
  if (fresh) warnings.push(fresh);
  if (!signature.checked) warnings.push(`${file}: TSL signature not checked (${signature.reason}): a forged or altered list would be accepted`);
  const smcb = selectSmcbCas(model);
  const ocsp = selectOcspSigners(model);
  warnings.push(...smcb.warnings, ...ocsp.warnings);
  // An empty store is written (consumers then trust nothing, which fails safe), but it is news.
  if (smcb.entries.length === 0) warnings.push(`${file}: no SMC-B CA selected; the SMC-B truststore is empty`);
  if (ocsp.entries.length === 0) warnings.push(`${file}: no OCSP signer selected; the OCSP truststore is empty`);
  return { file, sequenceNumber: model.sequenceNumber, nextUpdate: model.nextUpdate?.toISOString(), signature, smcb, ocsp, warnings };
}
