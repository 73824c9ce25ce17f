/**
 * The CFDATA checksum (MS-CAB 2.5): XOR of the block's little-endian 32-bit words, the 1–3 trailing
 * bytes folded in most-significant first (a quirk of Microsoft's implementation that libmspack and gcab
 * reproduce), seeded with the checksum of the data and then run over the cbData/cbUncomp fields.
 */
export function cabChecksum(data: Uint8Array, seed = 0): number {
  let sum = seed >>> 0;
  const words = data.byteLength >>> 2;
  let i = 0;
  for (let w = 0; w < words; w++, i += 4) {
    sum ^= (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
  }
  let tail = 0;
  switch (data.byteLength & 3) {
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the tail bytes fold in by deliberate fallthrough
    case 3:
      tail |= data[i++]! << 16;
    // falls through
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: as above
    case 2:
      tail |= data[i++]! << 8;
    // falls through
    case 1:
      tail |= data[i]!;
  }
  return (sum ^ tail) >>> 0;
}

/** Checksum of one CFDATA block: `sizes` are its 4 bytes cbData + cbUncomp, `data` its payload. */
export function cfdataChecksum(sizes: Uint8Array, data: Uint8Array): number {
  return cabChecksum(sizes, cabChecksum(data));
}
