/**
 * A fast path for the TPM processor's question "does OpenSSL accept this certificate, and what is its
 * subject as OpenSSL prints it?". Asking OpenSSL (node:crypto's X509Certificate) costs about 0.15–0.6 ms
 * per certificate with OpenSSL 3.0 (its d2i_X509 decodes the public key through the provider decoder
 * framework) and keeps native memory until a GC runs — for TrustedTpm.cab's 2,200 certificates most
 * of the processor's time and RSS. This walks the DER itself instead.
 *
 * It answers only when it is sure, and returns undefined otherwise, so the caller asks OpenSSL:
 * - the certificate is strict DER throughout (definite minimal lengths, minimal INTEGERs, canonical
 *   BOOLEANs, well-formed OIDs, BIT STRINGs and times), with exactly X.509's structure — a strictness
 *   OpenSSL's decoder does not even demand, so "we accept" implies "OpenSSL accepts";
 * - the subject consists of single-valued RDNs of well-known attribute types whose values need none of
 *   the escaping OpenSSL applies (RFC 2253 specials, control characters, non-ASCII); then OpenSSL's
 *   multi-line form is just `SN=value` lines.
 * Anything else (BER, multi-valued RDNs, BMPStrings, unusual names …) takes the OpenSSL path, so the
 * outcome is OpenSSL's in every case. test/process/tpm-cert.test.ts checks both claims against OpenSSL
 * on every certificate of the real cabinets and on thousands of mutated ones.
 */

const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
// Values printed by OpenSSL exactly as stored: printable ASCII without RFC 2253 specials, and no
// leading '#'/space or trailing space (those are escaped with a backslash).
const PLAIN_VALUE = /^(?![# ])[\x20-\x7e]*$/;
const RFC2253_SPECIAL = /[,+"\\<>;]/;
const MAX_DEPTH = 16;

class NotSure extends Error {}

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** One strict-DER element at `pos` (low tag numbers only, minimal definite length), within `limit`. */
function tlv(der: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new NotSure();
  const tag = der[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new NotSure();
  let p = pos + 1;
  const first = der[p++]!;
  let length = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3 || p + n > limit || der[p] === 0) throw new NotSure();
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[p++]!;
    if (length < 0x80) throw new NotSure(); // the long form for a short length is not DER
  }
  if (p + length > limit) throw new NotSure();
  return { tag, start: p, end: p + length };
}

/** The children of a constructed element, each checked down to its primitives. */
function children(der: Uint8Array, el: Tlv, depth: number): Tlv[] {
  if (depth > MAX_DEPTH) throw new NotSure();
  const out: Tlv[] = [];
  for (let p = el.start; p < el.end; ) {
    const c = tlv(der, p, el.end);
    checkElement(der, c, depth + 1);
    out.push(c);
    p = c.end;
  }
  return out;
}

function checkElement(der: Uint8Array, el: Tlv, depth: number): void {
  const len = el.end - el.start;
  if (el.tag & 0x20) {
    // Of the universal types only SEQUENCE and SET are constructed in DER (constructed strings are
    // BER; the rest are invalid); context-specific and application wrappers are walked.
    if ((el.tag & 0xc0) === 0 && el.tag !== 0x30 && el.tag !== 0x31) throw new NotSure();
    children(der, el, depth);
    return;
  }
  switch (el.tag) {
    case 0x01: // BOOLEAN
      if (len !== 1 || (der[el.start] !== 0 && der[el.start] !== 0xff)) throw new NotSure();
      return;
    case 0x02: // INTEGER, minimal
    case 0x0a: // ENUMERATED, the same rules
      if (len === 0 || (len > 1 && ((der[el.start] === 0 && der[el.start + 1]! < 0x80) || (der[el.start] === 0xff && der[el.start + 1]! >= 0x80))))
        throw new NotSure();
      return;
    case 0x03: // BIT STRING
      if (len === 0 || der[el.start]! > 7 || (len === 1 && der[el.start] !== 0)) throw new NotSure();
      return;
    case 0x05: // NULL
      if (len !== 0) throw new NotSure();
      return;
    case 0x06: // OBJECT IDENTIFIER
      if (len === 0 || der[el.end - 1]! & 0x80) throw new NotSure();
      for (let i = el.start; i < el.end; i++) if (der[i] === 0x80 && (i === el.start || !(der[i - 1]! & 0x80))) throw new NotSure();
      return;
    case 0x17: // UTCTime
      if (!/^\d{12}Z$/.test(latin1(der, el))) throw new NotSure();
      return;
    case 0x18: // GeneralizedTime
      if (!/^\d{14}Z$/.test(latin1(der, el))) throw new NotSure();
      return;
    case 0x1c: // UniversalString: UCS-4 (OpenSSL refuses other lengths)
      if (len % 4 !== 0) throw new NotSure();
      return;
    case 0x1e: // BMPString: UCS-2
      if (len % 2 !== 0) throw new NotSure();
      return;
    case 0x04: // OCTET STRING
    case 0x0c: // UTF8String
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x14: // TeletexString
    case 0x16: // IA5String
    case 0x19: // GraphicString
    case 0x1a: // VisibleString
    case 0x1b: // GeneralString
      return;
    default:
      // Other universal tags (end-of-contents 0, reserved, REAL …) are not part of a certificate.
      if ((el.tag & 0xc0) === 0) throw new NotSure();
      // Context-specific primitives ([1], [2] unique IDs, implicit tags inside extensions), OCTET STRING,
      // and the string types checked where names are read.
      return;
  }
}

const latin1 = (der: Uint8Array, el: Tlv): string => Buffer.from(der.buffer, der.byteOffset + el.start, el.end - el.start).toString('latin1');

function oid(der: Uint8Array, el: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = el.start; i < el.end; i++) {
    v = v * 128 + (der[i]! & 0x7f);
    if (!(der[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Every attribute value of a Name is a string OpenSSL can convert to UTF-8 (it canonicalises names
 * while decoding, and refuses a certificate whose name holds anything else): PrintableString with its
 * character set, IA5String in ASCII, UTF8String that is valid UTF-8. Other types: NotSure.
 */
function checkNameValues(der: Uint8Array, name: Tlv, depth: number): void {
  if (name.tag !== 0x30) throw new NotSure();
  for (const rdn of children(der, name, depth)) {
    const atvs = rdn.tag === 0x31 ? children(der, rdn, depth + 1) : [];
    if (atvs.length === 0) throw new NotSure();
    for (const atv of atvs) {
      const parts = atv.tag === 0x30 ? children(der, atv, depth + 2) : [];
      const value = parts[1];
      if (parts.length !== 2 || parts[0]!.tag !== 0x06 || !value) throw new NotSure();
      const bytes = der.subarray(value.start, value.end);
      if (value.tag === 0x13) {
        if (!PRINTABLE.test(latin1(der, value))) throw new NotSure();
      } else if (value.tag === 0x16) {
        if (bytes.some((b) => b >= 0x80)) throw new NotSure();
      } else if (value.tag === 0x0c) {
        try {
          UTF8.decode(bytes);
        } catch {
          throw new NotSure();
        }
      } else throw new NotSure();
    }
  }
}

/** A Name as OpenSSL's multi-line print shows it, or NotSure. */
function nameString(der: Uint8Array, name: Tlv, depth: number): string {
  if (name.tag !== 0x30) throw new NotSure();
  const lines: string[] = [];
  for (const rdn of children(der, name, depth)) {
    if (rdn.tag !== 0x31) throw new NotSure();
    const atvs = children(der, rdn, depth + 1);
    if (atvs.length !== 1 || atvs[0]!.tag !== 0x30) throw new NotSure();
    const [type, value, ...rest] = children(der, atvs[0]!, depth + 2);
    if (!type || !value || rest.length > 0 || type.tag !== 0x06) throw new NotSure();
    const sn = SHORT_NAMES[oid(der, type)];
    if (!sn) throw new NotSure();
    let text: string;
    if (value.tag === 0x13 /* PrintableString */) {
      text = latin1(der, value);
      if (!PRINTABLE.test(text)) throw new NotSure();
    } else if (value.tag === 0x0c /* UTF8String */ || value.tag === 0x16 /* IA5String */) {
      text = latin1(der, value);
    } else throw new NotSure();
    if (!PLAIN_VALUE.test(text) || text.endsWith(' ') || RFC2253_SPECIAL.test(text)) throw new NotSure();
    lines.push(`${sn}=${text}`);
  }
  return lines.join('\n');
}

/**
 * The subject of `der` exactly as `new X509Certificate(der).subject` gives it, when this walk is sure
 * OpenSSL accepts the certificate; undefined when OpenSSL must decide.
 */
export function quickSubject(der: Uint8Array): string | undefined {
  try {
    const cert = tlv(der, 0, der.byteLength);
    if (cert.tag !== 0x30 || cert.end !== der.byteLength) return undefined;
    const [tbs, sigAlg, sig, ...more] = children(der, cert, 0);
    if (!tbs || !sigAlg || !sig || more.length > 0 || tbs.tag !== 0x30 || sigAlg.tag !== 0x30 || sig.tag !== 0x03) return undefined;
    const f = children(der, tbs, 1);
    let i = 0;
    if (f[0]?.tag === 0xa0) {
      const [v, ...extra] = children(der, f[0], 2);
      // v1 must be absent in DER (DEFAULT), so only v2 and v3 may be written.
      if (!v || extra.length > 0 || v.tag !== 0x02 || v.end - v.start !== 1 || (der[v.start] !== 1 && der[v.start] !== 2)) return undefined;
      i = 1;
    }
    const [serial, alg, issuer, validity, subject, spki] = f.slice(i, i + 6);
    if (serial?.tag !== 0x02 || alg?.tag !== 0x30 || issuer?.tag !== 0x30 || validity?.tag !== 0x30 || subject?.tag !== 0x30 || spki?.tag !== 0x30)
      return undefined;
    for (const a of [sigAlg, alg]) algorithm(der, a);
    const times = children(der, validity, 2);
    if (times.length !== 2 || times.some((t) => t.tag !== 0x17 && t.tag !== 0x18)) return undefined;
    const keyParts = children(der, spki, 2);
    if (keyParts.length !== 2 || keyParts[0]!.tag !== 0x30 || keyParts[1]!.tag !== 0x03) return undefined;
    algorithm(der, keyParts[0]!);
    // Optional [1] issuerUniqueID, [2] subjectUniqueID, [3] extensions, in that order, nothing else.
    let last = 0;
    for (const opt of f.slice(i + 6)) {
      const order = opt.tag === 0x81 ? 1 : opt.tag === 0x82 ? 2 : opt.tag === 0xa3 ? 3 : 0;
      if (order <= last) return undefined;
      last = order;
      // [1]/[2] are IMPLICIT BIT STRINGs: the same content rules.
      if (order < 3 && (opt.end === opt.start || der[opt.start]! > 7 || (opt.end - opt.start === 1 && der[opt.start] !== 0))) return undefined;
      if (order === 3) checkExtensions(der, opt);
    }
    checkNameValues(der, issuer, 2);
    return nameString(der, subject, 2);
  } catch (err) {
    if (err instanceof NotSure) return undefined;
    throw err;
  }
}

/** AlgorithmIdentifier ::= SEQUENCE { OBJECT IDENTIFIER, parameters ANY OPTIONAL }. */
function algorithm(der: Uint8Array, el: Tlv): void {
  const parts = el.tag === 0x30 ? children(der, el, 3) : [];
  if (parts.length < 1 || parts.length > 2 || parts[0]!.tag !== 0x06) throw new NotSure();
}

function checkExtensions(der: Uint8Array, wrapper: Tlv): void {
  const [list, ...extra] = children(der, wrapper, 2);
  if (!list || extra.length > 0 || list.tag !== 0x30) throw new NotSure();
  const seen = new Set<string>();
  for (const ext of children(der, list, 3)) {
    const parts = ext.tag === 0x30 ? children(der, ext, 4) : [];
    const id = parts[0];
    const value = parts.at(-1);
    if (id?.tag !== 0x06 || value?.tag !== 0x04 || parts.length > 3 || (parts.length === 3 && parts[1]!.tag !== 0x01)) throw new NotSure();
    // An explicit critical FALSE is the DEFAULT written out: not DER.
    if (parts.length === 3 && der[parts[1]!.start] === 0) throw new NotSure();
    const key = oid(der, id);
    if (seen.has(key)) throw new NotSure();
    seen.add(key);
    // The extension's value must itself be one strict-DER element.
    const inner = tlv(der, value.start, value.end);
    if (inner.end !== value.end) throw new NotSure();
    checkElement(der, inner, 5);
  }
}
