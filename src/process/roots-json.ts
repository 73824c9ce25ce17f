/**
 * gematik's `roots.json`: the chain of TI root CAs with cross-certificates, read by the PEP once at
 * start-up. It is published byte for byte (the PEP parses it, not us), but only after every entry was
 * checked, so a damaged or inconsistent file never reaches a consumer that cannot reload it quickly.
 *
 * Shape: a JSON array, oldest root first, of
 *   { cert, cn, name, next, prev, nva, nvb, ski }
 * cert = base64 DER of the self-signed root; cn = its CN; name = cn without the "GEM." prefix;
 * nvb/nva = notBefore/notAfter as YYYY-MM-DDTHH:MM:SS (UTC); ski = hex SubjectKeyIdentifier;
 * next = cross-certificate for the following root, issued by this one ("" for the last);
 * prev = cross-certificate for the preceding root, issued by this one ("" for the first).
 */
import crypto from 'node:crypto';
import type { Certificate } from '../pki/certs.js';
import { VerifyError, errorMessage } from '../errors.js';
import { bytesEqual, namesEqual, parseCertificate, subjectKeyId, subjectString } from '../pki/certs.js';
import { signedBy } from '../pki/chain.js';

export const ROOTS_KEYS = ['cert', 'cn', 'name', 'next', 'nva', 'nvb', 'prev', 'ski'];
const MAX_ROOTS_BYTES = 4 * 1024 * 1024;
const MAX_ROOTS = 1000;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface RootsSummary {
  roots: number;
  first: string;
  last: string;
}

export interface CheckedRoots {
  summary: RootsSummary;
  /** The checked cross-certificates (every `prev` and `next`): path helpers for the TSL signer check. */
  cross: Certificate[];
}

export function validateRootsJson(bytes: Uint8Array, file: string): RootsSummary {
  return checkRootsJson(bytes, file).summary;
}

export function checkRootsJson(bytes: Uint8Array, file: string): CheckedRoots {
  const fail = (msg: string): never => {
    throw new VerifyError(`${file}: ${msg}`, file);
  };
  if (bytes.byteLength > MAX_ROOTS_BYTES) fail(`${bytes.byteLength} bytes is too large for roots.json`);
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return fail(`not valid UTF-8 JSON (${errorMessage(err)})`);
  }
  if (!Array.isArray(data) || data.length === 0) return fail('expected a non-empty JSON array of root entries');
  if (data.length > MAX_ROOTS) fail(`more than ${MAX_ROOTS} entries`);

  const roots = data.map((raw: unknown, i) => {
    const at = `entry ${i}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`${at}: expected an object`);
    const entry = raw as Record<string, unknown>;
    const keys = Object.keys(entry).sort();
    if (keys.join() !== ROOTS_KEYS.join()) fail(`${at}: keys are ${keys.join(', ')}; expected exactly ${ROOTS_KEYS.join(', ')}`);
    for (const k of ROOTS_KEYS) if (typeof entry[k] !== 'string') fail(`${at}: ${k} is not a string`);
    const e = entry as Record<string, string>;
    const cert = decodeCert(e.cert!, `${at}.cert`, fail);
    if (!cert) return fail(`${at}.cert is empty`);
    const where = `${at} (${JSON.stringify(e.cn)})`;
    if (!namesEqual(cert.subject, cert.issuer) || !signedBy(cert, cert)) fail(`${where}: cert is not a self-signed root`);
    const cn = commonName(cert);
    if (e.cn !== cn) fail(`${where}: cn does not match the certificate's CN ${JSON.stringify(cn)}`);
    if (e.name !== cn.replace(/^GEM\./, ''))
      fail(`${where}: name ${JSON.stringify(e.name)} does not match the CN without "GEM." (${JSON.stringify(cn.replace(/^GEM\./, ''))})`);
    const ski = subjectKeyId(cert);
    if (!ski) fail(`${where}: certificate has no subjectKeyIdentifier`);
    if (e.ski!.toLowerCase() !== Buffer.from(ski!).toString('hex'))
      fail(`${where}: ski ${e.ski} is not the certificate's ${Buffer.from(ski!).toString('hex')}`);
    if (e.nvb !== isoSeconds(cert.notBefore)) fail(`${where}: nvb ${e.nvb} is not the certificate's notBefore ${isoSeconds(cert.notBefore)}`);
    if (e.nva !== isoSeconds(cert.notAfter)) fail(`${where}: nva ${e.nva} is not the certificate's notAfter ${isoSeconds(cert.notAfter)}`);
    return { cert, cn, next: decodeCert(e.next!, `${at}.next`, fail), prev: decodeCert(e.prev!, `${at}.prev`, fail) };
  });

  roots.forEach((r, i) => {
    const where = `entry ${i} (${JSON.stringify(r.cn)})`;
    const following = roots[i + 1];
    const preceding = roots[i - 1];
    if (following) {
      if (!r.next) fail(`${where}: next is empty, but ${JSON.stringify(following.cn)} follows`);
      checkCross(r.next!, r.cert, following.cert, `${where}.next`, fail);
    } else if (r.next) fail(`${where}: next is set, but this is the last root`);
    if (preceding) {
      if (!r.prev) fail(`${where}: prev is empty, but ${JSON.stringify(preceding.cn)} precedes`);
      checkCross(r.prev!, r.cert, preceding.cert, `${where}.prev`, fail);
    } else if (r.prev) fail(`${where}: prev is set, but this is the first root`);
  });
  const cross = roots.flatMap((r) => [r.prev, r.next].filter((c): c is Certificate => c !== undefined));
  return { summary: { roots: roots.length, first: roots[0]!.cn, last: roots[roots.length - 1]!.cn }, cross };
}

/** A cross-certificate: issued by `issuer`, naming `subject`'s name and carrying `subject`'s key. */
function checkCross(cross: Certificate, issuer: Certificate, subject: Certificate, where: string, fail: (m: string) => never): void {
  if (!namesEqual(cross.issuer, issuer.subject)) fail(`${where}: issued by "${subjectString(issuer)}"? its issuer names someone else`);
  if (!namesEqual(cross.subject, subject.subject)) fail(`${where}: should certify "${subjectString(subject)}", certifies "${subjectString(cross)}"`);
  if (!bytesEqual(cross.spki, subject.spki)) fail(`${where}: carries a different public key than "${subjectString(subject)}"`);
  if (!signedBy(cross, issuer)) fail(`${where}: signature does not verify with the key of "${subjectString(issuer)}"`);
}

function decodeCert(b64: string, where: string, fail: (m: string) => never): Certificate | undefined {
  if (b64 === '') return undefined;
  if (!BASE64.test(b64)) fail(`${where}: not base64`);
  const der = Buffer.from(b64, 'base64');
  try {
    // The PEP reads these with OpenSSL; a certificate only a lenient parser accepts would break it.
    new crypto.X509Certificate(der);
  } catch (err) {
    return fail(`${where}: OpenSSL cannot parse the certificate (${errorMessage(err)})`);
  }
  try {
    return parseCertificate(der, where);
  } catch (err) {
    return fail(errorMessage(err));
  }
}

function commonName(cert: Certificate): string {
  const cns = cert.subject.attributes.filter((a) => a.type === '2.5.4.3');
  return cns.length === 1 ? (cns[0]!.text ?? '') : '';
}

/** gematik writes times as YYYY-MM-DDTHH:MM:SS in UTC, without a zone. */
function isoSeconds(d: Date): string {
  return d.toISOString().slice(0, 19);
}
