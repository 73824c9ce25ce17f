/** Loading, parsing and naming X.509 certificates. */
import crypto from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { Asn1Error, TAG, bitString, boolean, children, content, context, expect, oid, readWhole, sequence, smallInteger } from './asn1.js';
import { berStructureError } from './der.js';
import { type Certificate, type Extension, type Name, type NameAttribute, decodeCertificate } from './x509.js';

export type { Certificate, Name } from './x509.js';

/**
 * Parse one certificate. Trailing bytes are refused: a file must not carry hidden data after the
 * certificate that some other tool might read differently. Non-minimal INTEGERs (serial numbers with
 * leading zero octets, as in real STMicro TPM CAs) are accepted deliberately — signatures are checked
 * over the original TBS bytes, so leniency in parsing cannot forge anything.
 */
export function parseCertificate(der: Uint8Array, source?: string): Certificate {
  const where = source ? `${source}: ` : '';
  const structure = berStructureError(der);
  if (structure) throw new VerifyError(`${where}not a DER certificate (${structure})`, source);
  try {
    return decodeCertificate(der);
  } catch (err) {
    if (!(err instanceof Asn1Error)) throw err;
    throw new VerifyError(`${where}not an X.509 certificate (${err.message})`, source, undefined, { cause: err });
  }
}

const fingerprints = new WeakMap<Certificate, string>();

/** Lower-case hex SHA-256 of the certificate's DER (the usual "fingerprint"). */
export function certSha256(cert: Certificate): string {
  let fp = fingerprints.get(cert);
  if (!fp) {
    fp = crypto.createHash('sha256').update(cert.der).digest('hex');
    fingerprints.set(cert, fp);
  }
  return fp;
}

const PEM_CERT = /-----BEGIN (?:X509 )?CERTIFICATE-----([^-]*)-----END (?:X509 )?CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

/**
 * The certificates in a file's bytes: PEM (one or many CERTIFICATE blocks, CRLF tolerated) or one DER
 * certificate. Failures are VerifyErrors naming `source`; loadCertificates re-types them for config files.
 */
export function certificatesFromBytes(bytes: Uint8Array, source: string, maxCertificates = Infinity): Certificate[] {
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
export async function loadCertificates(paths: string[]): Promise<Certificate[]> {
  const out: Certificate[] = [];
  const seen = new Set<string>();
  const add = (cert: Certificate): void => {
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
      let certs: Certificate[];
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

function attrValue(a: NameAttribute): string {
  if (a.text !== undefined) return escapeValue(a.text);
  // Not a string type: RFC 4514 hex form of the BER encoding.
  return `#${Buffer.from(a.value.bytes.subarray(a.value.start, a.value.end)).toString('hex')}`;
}

/** One-line name, most specific first: `CN=Example Signer, O=Example Org, C=DE`. */
export function nameString(name: Name): string {
  const parts = name.attributes.map((a) => `${NAME_ATTRS[a.type] ?? a.type}=${attrValue(a)}`);
  return parts.reverse().join(', ');
}

export function namesEqual(a: Name, b: Name): boolean {
  return a.key === b.key;
}

export function subjectString(cert: Certificate): string {
  return nameString(cert.subject);
}

/** Extension by OID; at most one instance is allowed (RFC 5280 §4.2) — duplicates are refused. */
export function findExtension(cert: Certificate, id: string): Extension | undefined {
  const found = cert.extensions.filter((e) => e.oid === id);
  if (found.length > 1) throw new VerifyError(`certificate "${subjectString(cert)}" has extension ${id} more than once`);
  return found[0];
}

/**
 * An extension's value decoded by `read`; undefined when absent, null when it does not parse (callers
 * fail closed on null: an unreadable restriction grants nothing).
 */
function extensionValue<T>(cert: Certificate, id: string, read: (value: Uint8Array) => T): T | undefined | null {
  const ext = findExtension(cert, id);
  if (!ext) return undefined;
  try {
    return read(ext.value);
  } catch (err) {
    if (err instanceof Asn1Error) return null;
    throw err;
  }
}

/**
 * The extensions we interpret: OID, name, and the one reader of each value (throws Asn1Error when it
 * is malformed). The accessors below and malformedExtension use the same readers, so "parses" means
 * the same thing to both.
 */
const EXTENSIONS = {
  subjectKeyIdentifier: { oid: '2.5.29.14', read: (v: Uint8Array) => content(expect(readWhole(v), TAG.OCTET_STRING, 'subjectKeyIdentifier')) },
  authorityKeyIdentifier: {
    oid: '2.5.29.35',
    read: (v: Uint8Array) => {
      const first = sequence(readWhole(v), 'authorityKeyIdentifier')[0];
      return first?.tag === context(0, false) ? content(first) : undefined;
    },
  },
  keyUsage: { oid: '2.5.29.15', read: (v: Uint8Array) => bitString(readWhole(v), 'keyUsage') },
  basicConstraints: {
    oid: '2.5.29.19',
    read: (v: Uint8Array) => {
      const parts = sequence(readWhole(v), 'basicConstraints');
      let k = 0;
      const cA = parts[k]?.tag === TAG.BOOLEAN ? boolean(parts[k++], 'cA') : false;
      const pathLen = parts[k]?.tag === TAG.INTEGER ? smallInteger(parts[k++], 'pathLenConstraint') : undefined;
      if (k !== parts.length) throw new Asn1Error('basicConstraints is malformed');
      return { cA, pathLen };
    },
  },
  extKeyUsage: { oid: '2.5.29.37', read: (v: Uint8Array) => sequence(readWhole(v), 'extKeyUsage').map((e) => oid(e, 'key purpose')) },
  subjectAltName: {
    oid: '2.5.29.17',
    read: (v: Uint8Array) => {
      const list = sequence(readWhole(v), 'subjectAltName');
      // Every entry must be a well-formed TLV; a constructed one must nest correctly.
      for (const n of list) if (n.constructed) children(n);
      return list;
    },
  },
};

function extension<K extends keyof typeof EXTENSIONS>(cert: Certificate, name: K): ReturnType<(typeof EXTENSIONS)[K]['read']> | undefined | null {
  const e = EXTENSIONS[name];
  return extensionValue(cert, e.oid, e.read as (v: Uint8Array) => ReturnType<(typeof EXTENSIONS)[K]['read']>);
}

/** SubjectKeyIdentifier bytes, or undefined when the certificate has none (or it does not parse). */
export function subjectKeyId(cert: Certificate): Uint8Array | undefined {
  return extension(cert, 'subjectKeyIdentifier') ?? undefined;
}

/** AuthorityKeyIdentifier keyIdentifier bytes, when present. */
export function authorityKeyId(cert: Certificate): Uint8Array | undefined {
  return extension(cert, 'authorityKeyIdentifier') ?? undefined;
}

/** keyUsage bit n (0 = digitalSignature, 5 = keyCertSign) or undefined when there is no keyUsage. */
export function keyUsageBit(cert: Certificate, bit: number): boolean | undefined {
  const ku = extension(cert, 'keyUsage');
  if (ku === undefined) return undefined;
  // An unparsable keyUsage is treated as granting nothing: failing closed.
  if (ku === null) return false;
  // Bits in the unused (padding) positions of the last octet grant nothing: OpenSSL clears them, so
  // `03 02 06 04` must not read as keyCertSign here when it does not there.
  if (bit >= ku.bits.byteLength * 8 - ku.unused) return false;
  return ((ku.bits[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0;
}

/** basicConstraints, or undefined without the extension; an unparsable one is "not a CA". */
export function basicConstraints(cert: Certificate): { cA: boolean; pathLen?: number } | undefined {
  const bc = extension(cert, 'basicConstraints');
  return bc === null ? { cA: false } : bc;
}

/**
 * The name of the first extension we interpret whose value does not parse, or undefined. Such a
 * certificate is refused on a path (OpenSSL marks it invalid), rather than read as if it lacked the
 * extension — an unreadable key identifier or constraint must not silently drop a restriction.
 */
export function malformedExtension(cert: Certificate): string | undefined {
  return (Object.keys(EXTENSIONS) as (keyof typeof EXTENSIONS)[]).find((name) => extension(cert, name) === null);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

export const OID_EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
export const OID_EKU_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';

/**
 * Does the certificate's extendedKeyUsage allow `purpose`? true when there is no EKU extension (no
 * restriction) or it lists the purpose. anyExtendedKeyUsage alone does not count (as in OpenSSL's
 * purpose checks): a certificate meant for anything was not issued for signing code or timestamps.
 * An unparsable EKU allows nothing.
 */
export function allowsExtendedKeyUsage(cert: Certificate, purpose: string): boolean {
  const ekus = extension(cert, 'extKeyUsage');
  if (ekus === undefined) return true;
  return ekus?.includes(purpose) === true;
}

/**
 * Certificates from PEM text that arrived inside a signature (e.g. cosign's certificate and chain
 * annotations). Unlike loadCertificates this is about untrusted input, so failures are VerifyErrors
 * labelled with `source`, and the number of blocks is bounded so a huge annotation cannot make us parse
 * thousands of certificates.
 */
export function certificatesFromPemText(text: string, source: string, maxCertificates = 16): Certificate[] {
  return pemCertificateDers(text, source, maxCertificates).map((der) => parseCertificate(der, source));
}

/** The DER bytes of every CERTIFICATE block in PEM text (CRLF tolerated), undecoded; VerifyError on bad base64. */
export function pemCertificateDers(text: string, source: string, maxCertificates = Infinity): Buffer[] {
  const ders: Buffer[] = [];
  for (const match of text.matchAll(PEM_CERT)) {
    if (ders.length >= maxCertificates) throw new VerifyError(`${source}: more than ${maxCertificates} certificates`, source);
    const body = match[1] ?? '';
    // Buffer.from(…, 'base64') silently skips junk; refuse it so a damaged file is noticed.
    if (!BASE64.test(body)) throw new VerifyError(`${source}: PEM certificate block is not valid base64`, source);
    ders.push(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  }
  return ders;
}

/** GeneralName CHOICE tag of rfc822Name (RFC 5280 §4.2.1.6): [1] IMPLICIT IA5String. */
const GENERAL_NAME_RFC822 = context(1, false);

/**
 * The rfc822Name (email) entries of the subjectAltName extension; [] when there is none. An extension
 * that does not parse as GeneralNames yields nothing rather than a guess: identity checks fail closed.
 */
export function subjectAltEmails(cert: Certificate): string[] {
  const names = extension(cert, 'subjectAltName') ?? [];
  return names.filter((n) => n.tag === GENERAL_NAME_RFC822).map((n) => Buffer.from(content(n)).toString('latin1'));
}
