/** Loading, parsing and naming X.509 certificates. */
import crypto from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { berStructureError, fromBerSafe } from './der.js';

/** The bytes a certificate was parsed from: hashes must cover exactly those, not a re-encoding. */
const rawBytes = new WeakMap<pkijs.Certificate, Uint8Array>();

/**
 * Parse one DER certificate. Trailing bytes are refused: a file must not carry hidden data after the
 * certificate that some other tool might read differently. asn1js is lenient about BER inside (e.g.
 * serial numbers with leading zero octets, as in real STMicro TPM CAs); we accept that deliberately —
 * signatures are checked over the original TBS bytes, so leniency in parsing cannot forge anything.
 */
export function parseCertificate(der: Uint8Array, source?: string): pkijs.Certificate {
  const where = source ? `${source}: ` : '';
  const structure = berStructureError(der);
  if (structure) throw new VerifyError(`${where}not a DER certificate (${structure})`, source);
  const asn1 = fromBerSafe(der);
  if (!asn1.ok) throw new VerifyError(`${where}not a DER certificate (${asn1.error})`, source);
  if (asn1.offset !== der.byteLength) {
    throw new VerifyError(`${where}not a DER certificate (${der.byteLength - asn1.offset} bytes after the certificate)`, source);
  }
  let cert: pkijs.Certificate;
  try {
    cert = new pkijs.Certificate({ schema: asn1.result });
  } catch (err) {
    throw new VerifyError(`${where}not an X.509 certificate (${errorMessage(err)})`, source, undefined, { cause: err });
  }
  rawBytes.set(cert, der.slice());
  return cert;
}

/** DER of a certificate: the original bytes when we parsed it, otherwise pkijs' encoding. */
export function certDer(cert: pkijs.Certificate): Uint8Array {
  let der = rawBytes.get(cert);
  if (!der) {
    // Certificates from a signature's cert set arrive parsed by pkijs; encode once, not per lookup.
    der = new Uint8Array(cert.toSchema(false).toBER(false));
    rawBytes.set(cert, der);
  }
  return der;
}

/** Lower-case hex SHA-256 of the certificate's DER (the usual "fingerprint"). */
export function certSha256(cert: pkijs.Certificate): string {
  return crypto.createHash('sha256').update(certDer(cert)).digest('hex');
}

const PEM_CERT = /-----BEGIN (?:X509 )?CERTIFICATE-----([^-]*)-----END (?:X509 )?CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

/**
 * The certificates in a file's bytes: PEM (one or many CERTIFICATE blocks, CRLF tolerated) or one DER
 * certificate. Failures are VerifyErrors naming `source`; loadCertificates re-types them for config files.
 */
export function certificatesFromBytes(bytes: Uint8Array, source: string, maxCertificates = Infinity): pkijs.Certificate[] {
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) return certificatesFromPemText(text, source, maxCertificates);
  if (bytes.byteLength === 0) return [];
  return [parseCertificate(bytes, source)];
}

/**
 * Load certificates from files and directories (configured anchors and intermediates). Each file is
 * PEM (one or many CERTIFICATE blocks) or DER; a directory contributes its regular files, not its
 * subdirectories — which also skips the `..data` machinery of a mounted ConfigMap while following its
 * top-level symlinks. Every path, and every file inside a directory, must yield at least one certificate:
 * a trust configuration that silently loads nothing from a file would hide a mistake. Duplicates (same
 * SHA-256) are returned once. Errors are ConfigError: these paths come from the configuration.
 */
export async function loadCertificates(paths: string[]): Promise<pkijs.Certificate[]> {
  const out: pkijs.Certificate[] = [];
  const seen = new Set<string>();
  const add = (cert: pkijs.Certificate): void => {
    const fp = certSha256(cert);
    if (!seen.has(fp)) {
      seen.add(fp);
      out.push(cert);
    }
  };
  for (const p of paths) {
    let files: string[];
    try {
      const st = await stat(p);
      if (st.isDirectory()) {
        const names = (await readdir(p)).sort();
        files = [];
        for (const name of names) {
          const full = path.join(p, name);
          if ((await stat(full)).isFile()) files.push(full);
        }
        if (files.length === 0) throw new ConfigError(`${p}: directory contains no certificate files`);
      } else {
        files = [p];
      }
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`${p}: cannot read certificates (${errorMessage(err)})`, undefined, { cause: err });
    }
    for (const file of files) {
      let certs: pkijs.Certificate[];
      try {
        certs = certificatesFromBytes(await readFile(file), file);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        // parseCertificate's VerifyError already names the file; re-type it as configuration.
        const msg = err instanceof VerifyError ? err.message : `${file}: ${errorMessage(err)}`;
        throw new ConfigError(msg, undefined, { cause: err });
      }
      if (certs.length === 0) throw new ConfigError(`${file}: contains no certificate`);
      certs.forEach(add);
    }
  }
  return out;
}

const NAME_ATTRS: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '2.5.4.9': 'street',
  '2.5.4.4': 'SN',
  '2.5.4.42': 'GN',
  '2.5.4.12': 'title',
  '2.5.4.97': 'organizationIdentifier',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/**
 * RFC 4514 escaping, plus hex-escaping of control characters: names come from signed but untrusted
 * input and end up in logs; a newline in a CN must not be able to fake a log line.
 */
function escapeValue(value: string): string {
  let s = value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  s = s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (s.startsWith('#') || s.startsWith(' ')) s = `\\${s}`;
  if (s.endsWith(' ')) s = `${s.slice(0, -1)}\\ `;
  return s;
}

function attrValue(tv: pkijs.AttributeTypeAndValue): string {
  const v = tv.value as unknown as { valueBlock?: { value?: unknown } };
  const inner = v.valueBlock?.value;
  if (typeof inner === 'string') return escapeValue(inner);
  // Not a string type: RFC 4514 hex form of the BER encoding.
  return `#${Buffer.from(tv.value.toBER(false)).toString('hex')}`;
}

/** One-line name, most specific first: `CN=Example Signer, O=Example Org, C=DE`. */
export function nameString(name: pkijs.RelativeDistinguishedNames): string {
  const parts = name.typesAndValues.map((tv) => `${NAME_ATTRS[tv.type] ?? tv.type}=${attrValue(tv)}`);
  return parts.reverse().join(', ');
}

export function subjectString(cert: pkijs.Certificate): string {
  return nameString(cert.subject);
}

export function issuerString(cert: pkijs.Certificate): string {
  return nameString(cert.issuer);
}

/** Extension by OID; at most one instance is allowed (RFC 5280 §4.2) — duplicates are refused. */
export function findExtension(cert: pkijs.Certificate, oid: string): pkijs.Extension | undefined {
  const found = (cert.extensions ?? []).filter((e) => e.extnID === oid);
  if (found.length > 1) throw new VerifyError(`certificate "${subjectString(cert)}" has extension ${oid} more than once`);
  return found[0];
}

/** SubjectKeyIdentifier bytes, or undefined when the certificate has none. */
export function subjectKeyId(cert: pkijs.Certificate): Uint8Array | undefined {
  const ext = findExtension(cert, '2.5.29.14');
  const parsed = ext?.parsedValue as asn1js.OctetString | undefined;
  return parsed instanceof asn1js.OctetString ? parsed.valueBlock.valueHexView : undefined;
}

/** AuthorityKeyIdentifier keyIdentifier bytes, when present. */
export function authorityKeyId(cert: pkijs.Certificate): Uint8Array | undefined {
  const ext = findExtension(cert, '2.5.29.35');
  const parsed = ext?.parsedValue;
  return parsed instanceof pkijs.AuthorityKeyIdentifier ? parsed.keyIdentifier?.valueBlock.valueHexView : undefined;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a).equals(Buffer.from(b));
}

export const OID_EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
export const OID_EKU_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';

/**
 * Does the certificate's extendedKeyUsage allow `purpose`? true when there is no EKU extension (no
 * restriction) or it lists the purpose. anyExtendedKeyUsage alone does not count (as in OpenSSL's
 * purpose checks): a certificate meant for anything was not issued for signing code or timestamps.
 * An unparsable EKU allows nothing.
 */
export function allowsExtendedKeyUsage(cert: pkijs.Certificate, purpose: string): boolean {
  const ext = findExtension(cert, '2.5.29.37');
  if (!ext) return true;
  const eku = ext.parsedValue;
  if (!(eku instanceof pkijs.ExtKeyUsage)) return false;
  return eku.keyPurposes.includes(purpose);
}

/**
 * Certificates from PEM text that arrived inside a signature (e.g. cosign's certificate and chain
 * annotations). Unlike loadCertificates this is about untrusted input, so failures are VerifyErrors
 * labelled with `source`, and the number of blocks is bounded so a huge annotation cannot make us parse
 * thousands of certificates.
 */
export function certificatesFromPemText(text: string, source: string, maxCertificates = 16): pkijs.Certificate[] {
  const certs: pkijs.Certificate[] = [];
  for (const match of text.matchAll(PEM_CERT)) {
    if (certs.length >= maxCertificates) throw new VerifyError(`${source}: more than ${maxCertificates} certificates`, source);
    const body = match[1] ?? '';
    // Buffer.from(…, 'base64') silently skips junk; refuse it so a damaged file is noticed.
    if (!BASE64.test(body)) throw new VerifyError(`${source}: PEM certificate block is not valid base64`, source);
    certs.push(parseCertificate(Buffer.from(body.replace(/\s+/g, ''), 'base64'), source));
  }
  return certs;
}

const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/** GeneralName CHOICE tag of rfc822Name (RFC 5280 §4.2.1.6). */
const GENERAL_NAME_RFC822 = 1;

/**
 * The rfc822Name (email) entries of the subjectAltName extension; [] when there is none. An extension
 * that does not parse as GeneralNames yields nothing rather than a guess: identity checks fail closed.
 */
export function subjectAltEmails(cert: pkijs.Certificate): string[] {
  const ext = findExtension(cert, OID_SUBJECT_ALT_NAME);
  const san = ext?.parsedValue;
  if (!(san instanceof pkijs.AltName)) return [];
  return san.altNames.filter((n) => n.type === GENERAL_NAME_RFC822 && typeof n.value === 'string').map((n) => n.value as string);
}
