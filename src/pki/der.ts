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
