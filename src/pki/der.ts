/** Minimal DER framing: where one TLV element ends, without decoding what it contains. */

export interface DerFrame {
  /** Bytes of tag + length. */
  headerLength: number;
  /** Bytes of the contents. */
  length: number;
  /** headerLength + length: the whole element. */
  total: number;
}

/**
 * Frame of the element at the start of `bytes` (definite length only). Returns undefined when the bytes
 * do not start with a complete, definite-length element; never reads past `bytes`.
 */
export function derFrame(bytes: Uint8Array): DerFrame | undefined {
  if (bytes.byteLength < 2) return undefined;
  let pos = 1;
  // High tag numbers (low five bits all set) continue in base-128 octets.
  if ((bytes[0]! & 0x1f) === 0x1f) {
    while (pos < bytes.byteLength && (bytes[pos]! & 0x80) !== 0) pos++;
    pos++;
  }
  if (pos >= bytes.byteLength) return undefined;
  const first = bytes[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    // 0x80 is the BER indefinite form; more than 4 length octets cannot describe anything we accept.
    if (n === 0 || n > 4 || pos + n > bytes.byteLength) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[pos++]!;
  }
  const total = pos + length;
  if (total > bytes.byteLength) return undefined;
  return { headerLength: pos, length, total };
}

/** Elements a signature or certificate may have: real ones have hundreds to a few thousand. */
export const MAX_ELEMENTS = 200_000;

/**
 * Check that the TLV structure of the element at the start of `bytes` nests exactly: every element lies
 * inside its parent, definite-length parents are filled exactly by their children, indefinite ones end
 * with end-of-contents. Bytes after that element are the caller's business (it reports them itself).
 * Returns the first problem or undefined. Iterative, so hostile nesting cannot exhaust the stack.
 *
 * Why: our reader (./asn1.ts) only looks inside the elements a structure needs, so a signature whose
 * skipped inner element (an unsigned attribute, a CRL) overruns its SEQUENCE would still parse (and
 * verify, the signed bytes being intact), while OpenSSL, which decodes everything, refuses it.
 * Accepting encodings other tools reject is how parser differentials start.
 */
export function berStructureError(bytes: Uint8Array, maxDepth = 100, maxElements = MAX_ELEMENTS): string | undefined {
  const stack: { end: number | undefined; limit: number }[] = [{ end: bytes.byteLength, limit: bytes.byteLength }];
  let pos = 0;
  let elements = 0;
  for (;;) {
    const frame = stack[stack.length - 1]!;
    if (frame.end !== undefined) {
      if (pos === frame.end) {
        if (stack.length === 1) return 'no element';
        stack.pop();
        if (stack.length === 1) return undefined; // the top-level element is complete
        continue;
      }
    } else if (pos + 2 <= frame.limit && bytes[pos] === 0 && bytes[pos + 1] === 0) {
      pos += 2; // end-of-contents of an indefinite-length element
      stack.pop();
      if (stack.length === 1) return undefined;
      continue;
    }
    const start = pos;
    // A few bytes per element: without a cap, 16 MiB of `30 00` would become millions of parsed
    // elements (gigabytes of heap) in whatever structure a caller walks.
    if (++elements > maxElements) return `more than ${maxElements} elements`;
    const tag = bytes[pos++];
    if (tag === undefined || pos >= frame.limit) return `truncated element at offset ${start}`;
    if ((tag & 0x1f) === 0x1f) {
      while (pos < frame.limit && (bytes[pos]! & 0x80) !== 0) pos++;
      pos++;
    }
    if (pos >= frame.limit) return `truncated element at offset ${start}`;
    const first = bytes[pos++]!;
    const constructed = (tag & 0x20) !== 0;
    if (constructed && stack.length > maxDepth) return `nesting deeper than ${maxDepth} levels`;
    if (first === 0x80) {
      if (!constructed) return `primitive element with indefinite length at offset ${start}`;
      stack.push({ end: undefined, limit: frame.limit });
      continue;
    }
    let length = first;
    if (first > 0x80) {
      const n = first & 0x7f;
      if (n > 4 || pos + n > frame.limit) return `invalid length at offset ${start}`;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + bytes[pos++]!;
    }
    const end = pos + length;
    if (end > frame.limit) return `element at offset ${start} overruns its parent`;
    if (constructed) stack.push({ end, limit: end });
    else if (stack.length === 1) return undefined;
    else pos = end;
  }
}

/**
 * Why `bytes` (one element) is not DER, or undefined: definite minimal lengths only, BOOLEANs 00/FF,
 * minimal INTEGERs, and the elements of every SET in ascending order of their encodings (X.690 §11.6).
 * For the bytes a signature covers that OpenSSL re-encodes before verifying (CMS signed attributes):
 * accepting a non-DER encoding there would verify what OpenSSL does not, and the other way round.
 * Iterative; `bytes` must already have passed berStructureError.
 */
export function derStrictError(bytes: Uint8Array): string | undefined {
  // Ranges still to check, each with the tag of the element they are the contents of.
  const pending: { from: number; to: number; parentTag?: number }[] = [{ from: 0, to: bytes.byteLength }];
  while (pending.length > 0) {
    const { from, to, parentTag } = pending.pop()!;
    let previous: Uint8Array | undefined;
    for (let pos = from; pos < to; ) {
      const start = pos;
      const tag = bytes[pos++]!;
      if ((tag & 0x1f) === 0x1f) while ((bytes[pos++]! & 0x80) !== 0);
      const first = bytes[pos++]!;
      let length = first;
      if (first === 0x80) return `indefinite length at offset ${start}`;
      if (first > 0x80) {
        const n = first & 0x7f;
        if (bytes[pos] === 0) return `length with a leading zero octet at offset ${start}`;
        length = 0;
        for (let i = 0; i < n; i++) length = length * 256 + bytes[pos++]!;
        if (length < 0x80) return `non-minimal length at offset ${start}`;
      }
      const end = pos + length;
      if (tag === 0x01 && (length !== 1 || (bytes[pos] !== 0 && bytes[pos] !== 0xff))) return `BOOLEAN not 00 or FF at offset ${start}`;
      if (tag === 0x02 && length > 1 && ((bytes[pos] === 0 && (bytes[pos + 1]! & 0x80) === 0) || (bytes[pos] === 0xff && (bytes[pos + 1]! & 0x80) !== 0))) {
        return `non-minimal INTEGER at offset ${start}`;
      }
      // A SET's elements in ascending order of their encodings (for a [0] IMPLICIT SET, the caller
      // passes the bytes with the tag already replaced by SET).
      if (parentTag === 0x31) {
        const encoding = bytes.subarray(start, end);
        if (previous && Buffer.compare(previous, encoding) > 0) return `SET elements out of DER order at offset ${start}`;
        previous = encoding;
      }
      if ((tag & 0x20) !== 0) pending.push({ from: pos, to: end, parentTag: tag });
      pos = end;
    }
  }
  return undefined;
}
