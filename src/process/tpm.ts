/**
 * The TPM trust set from Microsoft's TrustedTpm.cab (whose Authenticode signature the verify stage has
 * already checked): every certificate in the cabinet, found by content rather than by file extension,
 * deduplicated, with a stable alias, plus a report that accounts for every member.
 *
 * What gematik's processor gets wrong and this does not: it filters by `\.(der|cer|crt)$`, which is
 * case-sensitive and silently drops the 113 `.CER` files; it decides PEM vs DER by grepping.
 *
 * Which certificates are accepted: those OpenSSL 3 parses (node:crypto's X509Certificate is OpenSSL;
 * tpm-cert.ts answers for it without the cost when the DER is plainly acceptable),
 * because OpenSSL-based consumers fail to read the *whole* PKCS#12 when one bag does not parse
 * (measured: `openssl pkcs12 -info` stops at the first such bag with "illegal padding").
 *
 * Policy for BER-but-not-DER certificates (in every TrustedTpm.cab: six STMicro intermediates whose
 * serial numbers carry leading zero octets): they are never put into the store, since a signed
 * certificate cannot be re-encoded without breaking its signature and keeping it would make the store
 * unreadable for OpenSSL. Each is still parsed leniently and reported with what it means for trust:
 * whether its issuer's signature over it verifies, and whether a DER "twin" with the same public key is
 * in the store (STMicro re-issued all six as `… _2.crt` with new serials). A BER certificate without a
 * twin is reported as lost trust, so an operator sees the gap instead of a silently smaller store.
 */
import crypto from 'node:crypto';
import type { Certificate, Name } from '../pki/certs.js';
import { readCabinet } from '../cab/index.js';
import { VerifyError, errorMessage } from '../errors.js';
import { parseCertificate, pemCertificateDers } from '../pki/certs.js';
import { derFrame } from '../pki/der.js';
import { verifySignature } from '../pki/engine.js';
import { encodePkcs12TrustStore, type TrustStoreEntry } from '../pki/pkcs12.js';
import { quickSubject } from './tpm-cert.js';

/** gematik's name of the store (config/process.ts's default for the output tpmTruststore). */
const TPM_TRUSTSTORE_NAME = 'tpm-trust-roots.p12';

export interface TpmRejected {
  file: string;
  reason: string;
  /** SHA-256 of the rejected certificate bytes, when they were a certificate at all. */
  sha256?: string;
  /** For BER certificates: the DER certificate in the store with the same public key. */
  supersededBy?: { file: string; friendlyName: string };
}

export interface TpmTrustReport {
  /** Members of the cabinet. */
  files: number;
  /** Members whose content is a certificate (PEM or DER), whatever their extension. */
  certificateFiles: number;
  /** Certificate files by extension as written (`.cer` and `.CER` apart), for comparison with tools that filter by name. */
  certificateFilesByExtension: Record<string, number>;
  /** Certificates OpenSSL accepts, before deduplication. */
  certificates: number;
  /** Distinct certificates by SHA-256 = entries in the store. */
  unique: number;
  /** Members that are not certificates (scripts, text), ignored. */
  ignored: string[];
  rejected: TpmRejected[];
}

export interface TpmTrustEntry extends TrustStoreEntry {
  sha256: string;
  /** Every cabinet member that holds this certificate, sorted. */
  files: string[];
}

export interface TpmTrustSet {
  /** Sorted by SHA-256, so the store's bytes do not depend on the cabinet's member order. */
  entries: TpmTrustEntry[];
  report: TpmTrustReport;
}

const OID_COMMON_NAME = '2.5.4.3';
const sha256 = (b: Uint8Array): string => crypto.hash('sha256', b, 'hex');

type Sniffed = { kind: 'certificates'; ders: Buffer[] } | { kind: 'other' } | { kind: 'bad'; reason: string };

/**
 * Decide by content: PEM blocks (CRLF or LF) or one DER element that spans the whole file. A file that
 * is neither is not a certificate file (setup.cmd, version.txt …), whatever it is called.
 */
function sniff(data: Buffer): Sniffed {
  const text = data.includes('-----BEGIN') ? data.toString('latin1') : '';
  if (text.includes('CERTIFICATE-----')) {
    let ders: Buffer[];
    try {
      ders = pemCertificateDers(text, 'cabinet member');
    } catch {
      return { kind: 'bad', reason: 'PEM block is not valid base64' };
    }
    return ders.length > 0 ? { kind: 'certificates', ders } : { kind: 'bad', reason: 'PEM certificate block is not terminated' };
  }
  if (data[0] === 0x30 && derFrame(data)?.total === data.byteLength) return { kind: 'certificates', ders: [data] };
  return { kind: 'other' };
}

/** A short, stable, printable label: the subject CN (else O, else the whole subject). */
function subjectLabel(subject: string): string {
  const lines = subject.split('\n');
  const pick = (key: string): string | undefined =>
    lines
      .filter((l) => l.startsWith(`${key}=`))
      .pop()
      ?.slice(key.length + 1);
  const raw = pick('CN') ?? pick('O') ?? lines.join(', ');
  // Control characters would make a listing lie; very long names help nobody.
  const clean = raw
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 64)
    .trim();
  return clean || 'certificate';
}

/**
 * The alias of a certificate: its subject label plus the first 16 hex digits of its SHA-256. It depends
 * on the certificate alone — not on file names or order — so it is the same in every cabinet vintage,
 * and unique (Java compares aliases case-insensitively; the hash part keeps them apart).
 */
export function tpmFriendlyName(subject: string, fingerprint: string): string {
  return `${subjectLabel(subject)} [${fingerprint.slice(0, 16)}]`;
}

interface Accepted {
  /** Subject as OpenSSL prints it (one RDN a line). The X509Certificate itself is not kept: 2,000 of
   * them hold ~100 MB of native memory until a GC happens to run. */
  subject: string;
  der: Buffer;
  sha256: string;
  files: string[];
}

interface BerCandidate {
  file: string;
  der: Buffer;
  reason: string;
}

/** Build the trust set from the bytes of a verified TrustedTpm.cab. `name` labels errors. */
export function buildTpmTrustSet(cabBytes: Buffer, name = 'TrustedTpm.cab'): TpmTrustSet {
  const report: TpmTrustReport = { files: 0, certificateFiles: 0, certificateFilesByExtension: {}, certificates: 0, unique: 0, ignored: [], rejected: [] };
  const accepted = new Map<string, Accepted>();
  const berCandidates: BerCandidate[] = [];

  for (const { file, data } of readCabinet(cabBytes, { name })) {
    report.files++;
    const sniffed = sniff(data);
    if (sniffed.kind === 'other') {
      report.ignored.push(file.name);
      continue;
    }
    report.certificateFiles++;
    const ext = file.name.includes('.') ? file.name.slice(file.name.lastIndexOf('.')) : '';
    report.certificateFilesByExtension[ext] = (report.certificateFilesByExtension[ext] ?? 0) + 1;
    if (sniffed.kind === 'bad') {
      report.rejected.push({ file: file.name, reason: sniffed.reason });
      continue;
    }
    for (const der of sniffed.ders) {
      const fingerprint = sha256(der);
      // The DER walk answers for most certificates; OpenSSL decides the rest (and all it refuses).
      let subject = quickSubject(der);
      if (subject === undefined) {
        try {
          if (derFrame(der)?.total !== der.byteLength) throw new Error('bytes after the certificate');
          subject = new crypto.X509Certificate(der).subject;
        } catch (err) {
          berCandidates.push({ file: file.name, der, reason: errorMessage(err) });
          continue;
        }
      }
      report.certificates++;
      const seen = accepted.get(fingerprint);
      if (seen) seen.files.push(file.name);
      else accepted.set(fingerprint, { subject, der, sha256: fingerprint, files: [file.name] });
    }
  }

  const entries: TpmTrustEntry[] = [...accepted.values()]
    .sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0))
    .map((a) => ({ certificate: a.der, friendlyName: tpmFriendlyName(a.subject, a.sha256), sha256: a.sha256, files: a.files.sort() }));
  report.unique = entries.length;
  if (berCandidates.length > 0) {
    const index = indexAccepted(accepted);
    for (const c of berCandidates) report.rejected.push(judgeRejected(c, index, entries));
  }
  report.rejected.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  report.ignored.sort();
  if (entries.length === 0) throw new VerifyError(`${name}: holds no certificate OpenSSL can read`, name);
  return { entries, report };
}

interface AcceptedIndex {
  /** Certificates by subject CN as OpenSSL prints it (a pre-filter for issuer lookups). */
  byCn: Map<string, Accepted[]>;
  all: Accepted[];
}

/** Built once, and only when some certificate was refused: a key or issuer lookup per refusal is then cheap. */
function indexAccepted(accepted: Map<string, Accepted>): AcceptedIndex {
  const index: AcceptedIndex = { byCn: new Map(), all: [...accepted.values()] };
  for (const a of index.all) {
    for (const line of a.subject.split('\n')) {
      if (!line.startsWith('CN=')) continue;
      const list = index.byCn.get(line.slice(3)) ?? [];
      list.push(a);
      index.byCn.set(line.slice(3), list);
    }
  }
  return index;
}

/**
 * Explain a certificate OpenSSL refused. When it still parses leniently (BER), say whether its issuer's
 * signature verifies and which DER certificate with the same key stands in for it.
 */
function judgeRejected(c: BerCandidate, index: AcceptedIndex, entries: TpmTrustEntry[]): TpmRejected {
  const fingerprint = sha256(c.der);
  let cert: Certificate;
  try {
    cert = parseCertificate(c.der, c.file);
  } catch {
    return { file: c.file, sha256: fingerprint, reason: `not a certificate OpenSSL or a lenient parser can read (${c.reason})` };
  }
  // CN pre-filters (exporting every key would cost more than everything else together); they fall back
  // to every certificate when OpenSSL prints the CN differently.
  const withCn = (name: Name): Accepted[] => {
    const cn = name.attributes.find((a) => a.type === OID_COMMON_NAME)?.text;
    return (typeof cn === 'string' && index.byCn.get(cn)) || index.all;
  };
  const spki = Buffer.from(cert.spki);
  const twin = withCn(cert.subject).find((a) => new crypto.X509Certificate(a.der).publicKey.export({ type: 'spki', format: 'der' }).equals(spki));
  const issuerName = Buffer.from(cert.issuer.der);
  const candidates = withCn(cert.issuer);
  let signature = 'its issuer is not in the cabinet';
  for (const a of candidates) {
    const issuer = parseCertificate(a.der, a.files[0]);
    if (!issuerName.equals(issuer.subject.der)) continue;
    let ok = false;
    try {
      ok = verifySignature(cert.tbs, cert.signature, issuer.spki, cert.signatureAlgorithm);
    } catch {
      ok = false;
    }
    signature = ok
      ? `signature by ${JSON.stringify(subjectLabel(a.subject))} verifies`
      : `signature by ${JSON.stringify(subjectLabel(a.subject))} does NOT verify`;
    if (ok) break;
  }
  const base = `BER, not DER (OpenSSL: ${c.reason}); not stored, since OpenSSL-based consumers could not read the store; ${signature}`;
  if (!twin) return { file: c.file, sha256: fingerprint, reason: `${base}; no DER certificate with the same key is in the cabinet: its trust is lost` };
  const entry = entries.find((e) => e.sha256 === twin.sha256)!;
  return {
    file: c.file,
    sha256: fingerprint,
    reason: `${base}; superseded by the DER certificate with the same key`,
    supersededBy: { file: entry.files[0]!, friendlyName: entry.friendlyName },
  };
}

export interface TpmOutputOptions {
  password: string;
  /** File name of the PKCS#12 store (gematik: TPM_RESULT_FILENAME). */
  p12Name?: string;
  /** Also write a PEM bundle under this name. */
  pemName?: string;
}

/** PEM bundle: each certificate preceded by a comment line with its alias. */
export function tpmPemBundle(entries: TpmTrustEntry[]): Buffer {
  const blocks = entries.map((e) => {
    const b64 = e.certificate.toString('base64').replace(/.{1,64}/g, '$&\n');
    return `# ${e.friendlyName}\n-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
  });
  return Buffer.from(blocks.join(''), 'utf8');
}

/** The output files of the TPM processor: the PKCS#12 store and, if asked for, the PEM bundle. */
export function tpmTrustStoreFiles(set: TpmTrustSet, options: TpmOutputOptions): { name: string; bytes: Buffer }[] {
  const out = [{ name: options.p12Name ?? TPM_TRUSTSTORE_NAME, bytes: encodePkcs12TrustStore(set.entries, options.password) }];
  if (options.pemName) out.push({ name: options.pemName, bytes: tpmPemBundle(set.entries) });
  return out;
}
