/**
 * TPM processor: TrustedTpm.cab (its Authenticode signature already verified by the verify stage) →
 * `tpm-trust-roots.p12`. The trust set (what counts as a certificate, the BER policy, aliases) is
 * decided in ./tpm.ts; this only encodes it and turns its accounting into report lines.
 */
import { encodePkcs12TrustStore } from '../pki/pkcs12.js';
import { buildTpmTrustSet, tpmPemBundle } from './tpm.js';

export interface TpmStore {
  p12: Buffer;
  /** With `pemBundle`: the same certificates as one PEM file, each preceded by a `# alias` line. */
  pem?: Buffer;
  detail: string;
  warnings: string[];
}

export async function deriveTpmTrustStore(cab: Buffer, rel: string, password: string, pemBundle: boolean): Promise<TpmStore> {
  const set = buildTpmTrustSet(cab, rel);
  const r = set.report;
  const p12 = encodePkcs12TrustStore(set.entries, password);
  const pem = pemBundle ? tpmPemBundle(set.entries) : undefined;
  const byExt = Object.entries(r.certificateFilesByExtension)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([ext, n]) => `${n} ${ext}`)
    .join(', ');
  const superseded = r.rejected.filter((x) => x.supersededBy);
  const detail =
    `${r.files} files, ${r.certificateFiles} certificate files (${byExt}), ${r.certificates} certificates, ${r.unique} unique, ` +
    `${r.rejected.length} rejected (${superseded.length} BER certificate(s) whose DER twin is stored: ${superseded.map((x) => x.file).join(', ') || 'none'}), ${r.ignored.length} other files ignored`;
  // A rejected certificate whose key is in the store under a DER twin loses no trust: reported in the
  // detail line. Anything else is trust the cabinet meant to grant and the store does not: a warning.
  const warnings = r.rejected.filter((x) => !x.supersededBy).map((x) => `${rel}: ${x.file}: not in the store: ${x.reason}`);
  return { p12, pem, detail, warnings };
}
