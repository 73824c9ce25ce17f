/**
 * A small BER/DER reader over the original bytes: an element is a tag and offsets, nothing is copied or
 * decoded until a caller asks. It replaces asn1js + pkijs on every verification path: their schema
 * machinery cost ~100 ms of CPU (cold JIT) and 600 KB of code per run for a handful of certificates.
 *
 * Decoding follows what the structures need and no more. Callers walk by schema (`children`, `expect`);
 * every mismatch is an Asn1Error, which the callers turn into a VerifyError naming the file. Signatures
 * are always checked over the original bytes (`raw`), so no re-encoding can change what was signed.
 *
 * Leniency, chosen per field: definite lengths need not be minimal and INTEGERs may carry leading zero
 * octets (real STMicro TPM CAs do); indefinite lengths and constructed OCTET STRINGs (BER, e.g. `openssl
 * cms -stream`) are read where CMS allows them. Everything else is refused.
 */

export class Asn1Error extends Error {}

export interface Element {
  /** The buffer this element lies in (shared with its parent, never copied). */
  readonly bytes: Uint8Array;
  /** First identifier octet: class bits, constructed bit and tag number (0x1f for high tag numbers). */
  readonly tag: number;
  /** Tag number (for high tag numbers, the decoded value). */
  readonly number: number;
  readonly constructed: boolean;
  readonly start: number;
  readonly contentStart: number;
  /** End of the contents (before an end-of-contents marker, for indefinite lengths). */
  readonly contentEnd: number;
  readonly end: number;
  readonly indefinite: boolean;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag byte [n], constructed or primitive. */
export const context = (n: number, constructed = true): number => 0x80 | (constructed ? 0x20 : 0) | n;

/** Nesting limit for indefinite-length elements, whose end can only be found by walking inside. */
const MAX_DEPTH = 64;

/** The element starting at `start`; it must end by `limit`. */
export function readElement(bytes: Uint8Array, start = 0, limit = bytes.byteLength): Element {
  const head = readHeader(bytes, start, limit);
  if (head.length !== undefined) return finish(head, head.contentStart + head.length, 0);
  // Indefinite length: walk inside (iteratively, so hostile nesting cannot exhaust the stack) to the
  // end-of-contents marker that closes this element.
  let open = 1;
  let pos = head.contentStart;
  for (;;) {
    if (pos + 2 <= limit && bytes[pos] === 0 && bytes[pos + 1] === 0) {
      pos += 2;
      if (--open === 0) return finish(head, pos - 2, 2);
      continue;
    }
    const inner = readHeader(bytes, pos, limit);
    if (inner.length !== undefined) pos = inner.contentStart + inner.length;
    else {
      if (++open > MAX_DEPTH) throw new Asn1Error(`nesting deeper than ${MAX_DEPTH} levels at offset ${pos}`);
      pos = inner.contentStart;
    }
  }
}

interface Header {
  bytes: Uint8Array;
  tag: number;
  number: number;
  constructed: boolean;
  start: number;
  contentStart: number;
  /** undefined: indefinite length. */
  length: number | undefined;
}

/** One object literal of fixed shape per element (no spreads: hostile inputs make many of them). */
function finish(h: Header, contentEnd: number, eoc: number): Element {
  return {
    bytes: h.bytes,
    tag: h.tag,
    number: h.number,
    constructed: h.constructed,
    start: h.start,
    contentStart: h.contentStart,
    contentEnd,
    end: contentEnd + eoc,
    indefinite: h.length === undefined,
  };
}

function readHeader(bytes: Uint8Array, start: number, limit: number): Header {
  if (start >= limit) throw new Asn1Error(`truncated element at offset ${start}`);
  const tag = bytes[start]!;
  let pos = start + 1;
  let number = tag & 0x1f;
  if (number === 0x1f) {
    number = 0;
    for (let i = 0; ; i++) {
      if (pos >= limit || i > 3) throw new Asn1Error(`invalid tag at offset ${start}`);
      const b = bytes[pos++]!;
      number = number * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  if (pos >= limit) throw new Asn1Error(`truncated element at offset ${start}`);
  const first = bytes[pos++]!;
  const constructed = (tag & 0x20) !== 0;
  let length: number | undefined;
  if (first < 0x80) length = first;
  else if (first === 0x80) {
    if (!constructed) throw new Asn1Error(`primitive element with indefinite length at offset ${start}`);
    length = undefined;
  } else {
    const n = first & 0x7f;
    if (n > 4 || pos + n > limit) throw new Asn1Error(`invalid length at offset ${start}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[pos++]!;
  }
  if (length !== undefined && pos + length > limit) throw new Asn1Error(`element at offset ${start} overruns its parent`);
  return { bytes, tag, number, constructed, start, contentStart: pos, length };
}

/** `bytes` must be exactly one element: trailing bytes would be invisible to us but not to other tools. */
export function readWhole(bytes: Uint8Array): Element {
  const el = readElement(bytes);
  if (el.end !== bytes.byteLength) throw new Asn1Error(`${bytes.byteLength - el.end} bytes after the element`);
  return el;
}

/** The elements inside a constructed element, in order; they must fill it exactly. */
export function children(el: Element): Element[] {
  if (!el.constructed) throw new Asn1Error(`element at offset ${el.start} is not constructed`);
  const out: Element[] = [];
  for (let pos = el.contentStart; pos < el.contentEnd; ) {
    const child = readElement(el.bytes, pos, el.contentEnd);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** The whole encoding (tag, length, contents) — what signatures and hashes are over. */
export function raw(el: Element): Uint8Array {
  return el.bytes.subarray(el.start, el.end);
}

/** The contents of a primitive element. */
export function content(el: Element): Uint8Array {
  if (el.constructed) throw new Asn1Error(`element at offset ${el.start} is constructed, a primitive was expected`);
  return el.bytes.subarray(el.contentStart, el.contentEnd);
}

const describe = (tag: number): string => `0x${tag.toString(16).padStart(2, '0')}`;

/** `el`, after checking its tag byte. */
export function expect(el: Element | undefined, tag: number, what: string): Element {
  if (!el) throw new Asn1Error(`${what} is missing`);
  if (el.tag !== tag) throw new Asn1Error(`${what} has tag ${describe(el.tag)}, expected ${describe(tag)}`);
  return el;
}

/** Children of a SEQUENCE (or other constructed tag), after checking the tag. */
export function sequence(el: Element | undefined, what: string, tag: number = TAG.SEQUENCE): Element[] {
  return children(expect(el, tag, what));
}

export function oid(el: Element | undefined, what: string): string {
  const c = content(expect(el, TAG.OID, what));
  if (c.byteLength === 0 || (c[c.byteLength - 1]! & 0x80) !== 0) throw new Asn1Error(`${what} is not a valid OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < c.byteLength; i++) {
    const b = c[i]!;
    // A leading 0x80 is a non-minimal arc: OpenSSL refuses it, so do we.
    if (value === 0 && b === 0x80) throw new Asn1Error(`${what} is not a valid OBJECT IDENTIFIER`);
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new Asn1Error(`${what} has an arc too large`);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const top = value < 40 ? 0 : value < 80 ? 1 : 2;
        arcs.push(top, value - top * 40);
      } else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** INTEGER contents as given (two's complement, big-endian; leading zeros kept). */
export function integerBytes(el: Element | undefined, what: string): Uint8Array {
  const c = content(expect(el, TAG.INTEGER, what));
  if (c.byteLength === 0) throw new Asn1Error(`${what} is an empty INTEGER`);
  return c;
}

/** A small non-negative INTEGER (versions, counts, path lengths). */
export function smallInteger(el: Element | undefined, what: string): number {
  const c = integerBytes(el, what);
  if ((c[0]! & 0x80) !== 0) throw new Asn1Error(`${what} is negative`);
  let v = 0;
  for (const b of c) {
    v = v * 256 + b;
    if (v > 0xffffffff) throw new Asn1Error(`${what} is too large`);
  }
  return v;
}

export function boolean(el: Element | undefined, what: string): boolean {
  const c = content(expect(el, TAG.BOOLEAN, what));
  if (c.byteLength !== 1) throw new Asn1Error(`${what} is not a valid BOOLEAN`);
  return c[0] !== 0;
}

/** BIT STRING: the unused-bit count and the bit bytes (after that count octet). */
export function bitString(el: Element | undefined, what: string): { unused: number; bits: Uint8Array } {
  const c = content(expect(el, TAG.BIT_STRING, what));
  if (c.byteLength === 0 || c[0]! > 7 || (c.byteLength === 1 && c[0] !== 0)) throw new Asn1Error(`${what} is not a valid BIT STRING`);
  return { unused: c[0]!, bits: c.subarray(1) };
}

/**
 * OCTET STRING value. `allowConstructed` (BER, CMS content only): the segments of a constructed
 * OCTET STRING joined, as `openssl cms -stream` writes them.
 */
export function octetString(el: Element | undefined, what: string, allowConstructed = false): Uint8Array {
  const e = el && allowConstructed && el.tag === (TAG.OCTET_STRING | 0x20) ? el : expect(el, TAG.OCTET_STRING, what);
  if (!e.constructed) return content(e);
  const parts: Uint8Array[] = [];
  const collect = (cur: Element, depth: number): void => {
    if (depth > MAX_DEPTH) throw new Asn1Error(`${what} nests deeper than ${MAX_DEPTH} levels`);
    for (const k of children(cur)) {
      if (k.tag === TAG.OCTET_STRING) parts.push(content(k));
      else if (k.tag === (TAG.OCTET_STRING | 0x20)) collect(k, depth + 1);
      else throw new Asn1Error(`${what} has a segment that is not an OCTET STRING`);
    }
  };
  collect(e, 1);
  return Buffer.concat(parts);
}

const TWO_DIGITS = /^\d\d$/;
const num = (s: string, from: number, to: number): number => Number(s.slice(from, to));

/**
 * UTCTime (YYMMDDHHMMSSZ; years 50–99 are 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ), the forms RFC
 * 5280 §4.1.2.5 allows. Other forms (no seconds, offsets) are refused; fractional seconds only with
 * `fraction` (RFC 3161 genTime, e.g. `20211021184613.123Z`, without trailing zeros).
 */
export function time(el: Element | undefined, what: string, fraction = false): Date {
  if (!el || (el.tag !== TAG.UTC_TIME && el.tag !== TAG.GENERALIZED_TIME)) throw new Asn1Error(`${what} is not a UTCTime or GeneralizedTime`);
  const s = Buffer.from(content(el)).toString('latin1');
  const utc = el.tag === TAG.UTC_TIME;
  const re = utc ? /^\d{12}Z$/ : fraction ? /^\d{14}(\.\d*[1-9])?Z$/ : /^\d{14}Z$/;
  if (!re.test(s)) throw new Asn1Error(`${what} "${s.replace(/[^\x20-\x7e]/g, '?')}" is not of the form ${utc ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`);
  const o = utc ? 0 : 2;
  let year = utc ? num(s, 0, 2) : num(s, 0, 4);
  if (utc) year += year >= 50 ? 1900 : 2000;
  const [mo, d, h, mi, se] = [num(s, o + 2, o + 4), num(s, o + 4, o + 6), num(s, o + 6, o + 8), num(s, o + 8, o + 10), num(s, o + 10, o + 12)];
  const dot = s.indexOf('.');
  const ms = dot < 0 ? 0 : Math.floor(Number(`0${s.slice(dot, -1)}`) * 1000);
  // setUTCFullYear, not Date.UTC: the latter maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, mo - 1, d);
  date.setUTCHours(h, mi, se, ms);
  // Reject out-of-range fields instead of letting Date roll them over (month 13, 31 February …).
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59 || !TWO_DIGITS.test(s.slice(o + 2, o + 4))) {
    throw new Asn1Error(`${what} "${s}" is not a valid time`);
  }
  return date;
}

/**
 * A directory string's text, decoded by its type; undefined for anything that is not a string type.
 * PrintableString, IA5String and the other single-byte types are read byte for byte (latin1).
 */
export function stringValue(el: Element): string | undefined {
  if (el.constructed) return undefined;
  const c = Buffer.from(content(el));
  switch (el.tag) {
    case TAG.UTF8_STRING:
      return c.toString('utf8');
    case TAG.BMP_STRING: {
      if (c.byteLength % 2 !== 0) return undefined;
      const swapped = Buffer.from(c);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (c.byteLength % 4 !== 0) return undefined;
      let s = '';
      for (let i = 0; i < c.byteLength; i += 4) {
        const cp = c.readUInt32BE(i);
        if (cp > 0x10ffff) return undefined;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case TAG.NUMERIC_STRING:
    case TAG.PRINTABLE_STRING:
    case TAG.TELETEX_STRING:
    case 0x15: // VideotexString
    case TAG.IA5_STRING:
    case 0x19: // GraphicString
    case TAG.VISIBLE_STRING:
    case 0x1b: // GeneralString
    case 0x1d: // CharacterString
      return c.toString('latin1');
    default:
      return undefined;
  }
}

// ---- encoding: the few structures we write (PKCS#12) ----

/** Bytes of a one-byte tag plus the DER length field for `length`. */
export function headerLength(length: number): number {
  let n = 2;
  if (length >= 0x80) for (let v = length; v > 0; v = Math.floor(v / 256)) n++;
  return n;
}

/** Writes a one-byte tag and the DER length field at `at`; returns the offset after them. */
export function writeHeader(buf: Uint8Array, at: number, tag: number, length: number): number {
  buf[at++] = tag;
  if (length < 0x80) {
    buf[at++] = length;
    return at;
  }
  const n = headerLength(length) - 2;
  buf[at++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) buf[at++] = Math.floor(length / 256 ** i) & 0xff;
  return at;
}

/** Tag and length of an element whose contents are `length` bytes. */
export function header(tag: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(headerLength(length));
  writeHeader(out, 0, tag, length);
  return out;
}

/** DER of one element from its tag byte and contents. */
export function encode(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([header(tag, body.byteLength), body]);
}

export function encodeOid(value: string): Buffer {
  const arcs = value.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0) || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) {
    throw new Error(`bad OID ${value}`);
  }
  const out: number[] = [];
  const push = (v: number): void => {
    const group: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) group.unshift(0x80 | (x & 0x7f));
    out.push(...group);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return encode(TAG.OID, Buffer.from(out));
}

/** A non-negative INTEGER. */
export function encodeInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`encodeInteger: ${n} is not a non-negative integer`);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  if (out.length === 0 || (out[0]! & 0x80) !== 0) out.unshift(0);
  return encode(TAG.INTEGER, Buffer.from(out));
}
