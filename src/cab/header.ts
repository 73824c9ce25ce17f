/**
 * Microsoft cabinet (MS-CAB) header: the fixed CFHEADER, the reserve that carries the Authenticode
 * signature location, and the byte ranges the Authenticode digest covers.
 *
 * Every offset and size comes from the file, i.e. from whoever made it: each one is checked against the
 * file size before it is used, and a violation is a VerifyError, never an exception from a Buffer read.
 */
import type { FileHandle } from 'node:fs/promises';
import { VerifyError } from '../errors.js';

export const CAB_MAGIC = 'MSCF';
/** CFHEADER without the optional reserve fields. */
export const CAB_FIXED_HEADER = 36;
/** CFHEADER with cbCFHeader/cbCFFolder/cbCFData and the 20-byte Authenticode reserve. */
export const CAB_SIGNED_HEADER = 60;
/** Size of the header reserve Authenticode uses (offset and size of the signature). */
export const AUTHENTICODE_RESERVE = 20;
/** u32 at byte 40, the first word of the Authenticode header reserve (signtool writes this). */
const AUTHENTICODE_RESERVE_TAG = 0x00100000;

export const FLAG_PREV_CABINET = 0x0001;
export const FLAG_NEXT_CABINET = 0x0002;
export const FLAG_RESERVE_PRESENT = 0x0004;

/** szCabinet/szDisk strings are at most 255 bytes plus NUL (MS-CAB 2.1). */
const MAX_NAME = 256;
/** Upper bound of a PKCS#7 we read into memory; real ones are ~10 KiB. */
export const MAX_SIGNATURE_SIZE = 1024 * 1024;

export interface CabHeader {
  fileSize: number;
  cbCabinet: number;
  coffFiles: number;
  cFolders: number;
  cFiles: number;
  flags: number;
  setId: number;
  iCabinet: number;
  /** Present when FLAG_RESERVE_PRESENT is set. */
  cbCFHeader?: number;
  cbCFFolder?: number;
  cbCFData?: number;
  /** Authenticode signature location from the header reserve (u32 at 44 and 48). */
  signature?: { offset: number; size: number };
}

/** A VerifyError that names the file. */
export const cabError = (file: string, reason: string): VerifyError => new VerifyError(`${file}: ${reason}`, file);

/**
 * Parse the fixed header from the first bytes of a cabinet. `fileSize` is the real size of the file;
 * every offset is checked against it.
 */
export function parseCabHeader(head: Uint8Array, fileSize: number, file: string): CabHeader {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.byteLength < CAB_FIXED_HEADER || fileSize < CAB_FIXED_HEADER) throw cabError(file, 'too short to be a cabinet');
  if (b.toString('latin1', 0, 4) !== CAB_MAGIC) throw cabError(file, 'not a cabinet (no MSCF signature)');
  const header: CabHeader = {
    fileSize,
    cbCabinet: b.readUInt32LE(8),
    coffFiles: b.readUInt32LE(16),
    cFolders: b.readUInt16LE(26),
    cFiles: b.readUInt16LE(28),
    flags: b.readUInt16LE(30),
    setId: b.readUInt16LE(32),
    iCabinet: b.readUInt16LE(34),
  };
  if (header.cbCabinet > fileSize) throw cabError(file, `cbCabinet ${header.cbCabinet} is beyond the end of the file (${fileSize} bytes)`);
  if (header.coffFiles < CAB_FIXED_HEADER || header.coffFiles > header.cbCabinet) {
    throw cabError(file, `coffFiles ${header.coffFiles} is outside the cabinet (${header.cbCabinet} bytes)`);
  }
  if (header.flags & FLAG_RESERVE_PRESENT) {
    if (b.byteLength < 40 || fileSize < 40) throw cabError(file, 'header reserve fields are truncated');
    header.cbCFHeader = b.readUInt16LE(36);
    header.cbCFFolder = b.readUInt8(38);
    header.cbCFData = b.readUInt8(39);
    if (header.cbCFHeader >= AUTHENTICODE_RESERVE) {
      if (b.byteLength < CAB_SIGNED_HEADER || fileSize < CAB_SIGNED_HEADER) throw cabError(file, 'header reserve is truncated');
      header.signature = { offset: b.readUInt32LE(44), size: b.readUInt32LE(48) };
    }
  }
  return header;
}

/**
 * Checks that make the Authenticode digest mean what the extractor will see. Called only for signed
 * cabinets; `prefix` holds the bytes from 0 up to coffFiles (the header, name strings and CFFOLDERs).
 */
export function checkSignedLayout(h: CabHeader, prefix: Uint8Array, file: string): { offset: number; size: number } {
  if (!(h.flags & FLAG_RESERVE_PRESENT)) throw cabError(file, 'cabinet carries no Authenticode signature (no header reserve)');
  // The digest skips bytes 34–55, so it is computed as if the header ended at 60. Any other reserve size,
  // or a per-folder / per-data reserve, would make an extractor parse the signed bytes differently from
  // the way they were hashed (cbCFFolder and cbCFData are not covered by the digest): refuse them.
  if (h.cbCFHeader !== AUTHENTICODE_RESERVE || !h.signature)
    throw cabError(file, `header reserve is ${h.cbCFHeader} bytes; a signed cabinet has ${AUTHENTICODE_RESERVE}`);
  if (h.cbCFFolder !== 0 || h.cbCFData !== 0) throw cabError(file, 'signed cabinet has folder or data reserves, which the signature does not cover');
  const { offset, size } = h.signature;
  if (offset > h.fileSize || size > h.fileSize - offset) {
    throw cabError(file, `signature (offset ${offset}, ${size} bytes) lies outside the file (${h.fileSize} bytes)`);
  }
  // cbCabinet is covered by the digest, the signature offset is not: tying them together means the
  // cabinet an extractor reads (cbCabinet bytes) is exactly the signed one.
  if (offset !== h.cbCabinet) throw cabError(file, `signature offset ${offset} differs from the cabinet size ${h.cbCabinet}`);
  // Bytes after the signature would be covered by nothing yet travel with the file.
  if (offset + size !== h.fileSize) throw cabError(file, `${h.fileSize - offset - size} unsigned bytes follow the signature`);
  if (size === 0 || size > MAX_SIGNATURE_SIZE) throw cabError(file, `signature size ${size} is out of range`);
  if (h.coffFiles < CAB_SIGNED_HEADER) throw cabError(file, `coffFiles ${h.coffFiles} points into the header`);
  // reserved1 (4–7) and the first reserve word (40–43) are not covered by the digest; MS-CAB says zero
  // and signtool writes 0x00100000, and osslsigncode refuses anything else. Accepting other values would
  // let unsigned bytes vary and accept cabinets the peer rejects (found by test/verify/fuzz.test.ts).
  const bytes = Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const reserved1 = bytes.readUInt32LE(4);
  if (reserved1 !== 0) throw cabError(file, `header field reserved1 is 0x${reserved1.toString(16).padStart(8, '0')}, not 0`);
  const reserveTag = bytes.readUInt32LE(40);
  if (reserveTag !== AUTHENTICODE_RESERVE_TAG) throw cabError(file, `header reserve starts with 0x${reserveTag.toString(16).padStart(8, '0')}, not 0x00100000`);
  // Walk the optional name strings and the CFFOLDER records; they must end exactly at coffFiles, or
  // the header and the file table overlap (a second way to read the same bytes).
  let pos = CAB_SIGNED_HEADER;
  const names = (h.flags & FLAG_PREV_CABINET ? 2 : 0) + (h.flags & FLAG_NEXT_CABINET ? 2 : 0);
  for (let i = 0; i < names; i++) {
    const end = bytes.indexOf(0, pos);
    if (end < 0 || end - pos >= MAX_NAME) throw cabError(file, 'cabinet set name in the header is unterminated or too long');
    pos = end + 1;
  }
  pos += h.cFolders * 8;
  if (pos !== h.coffFiles) throw cabError(file, `corrupt header: folders end at ${pos}, but coffFiles is ${h.coffFiles}`);
  return { offset, size };
}

/**
 * Byte ranges [start, end) of the Authenticode cabinet digest: 0–3 (magic), 8–33 (sizes, offsets,
 * counts, flags, setID), then 56 up to the signature — which covers the last 4 reserve bytes, the set
 * names, the CFFOLDERs and everything from coffFiles on. Skipped: reserved1 (4–7) and 34–55 (iCabinet,
 * the reserve sizes and the signature location, which cannot be signed by the signature itself).
 */
export function authenticodeRanges(signatureOffset: number): [number, number][] {
  return [
    [0, 4],
    [8, 34],
    [56, signatureOffset],
  ];
}

/** Upper bound of coffFiles in a well-formed cabinet: header, four names, 65535 folders. */
const MAX_PREFIX = CAB_SIGNED_HEADER + 4 * MAX_NAME + 0xffff * 8;

async function readExactly(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

export interface SignedCab {
  header: CabHeader;
  /** File bytes 0 … coffFiles. */
  prefix: Buffer;
  signature: { offset: number; size: number };
  /** The raw signature area (DER PKCS#7 plus padding). */
  signatureBytes: Buffer;
}

/** Read and check the header of a signed cabinet and its signature area through an open handle. */
export async function readSignedCab(fh: FileHandle, file: string): Promise<SignedCab> {
  const { size: fileSize } = await fh.stat();
  const head = await readExactly(fh, 0, Math.min(fileSize, CAB_SIGNED_HEADER));
  const header = parseCabHeader(head, fileSize, file);
  if (header.coffFiles > MAX_PREFIX) throw cabError(file, `coffFiles ${header.coffFiles} is implausibly far into the file`);
  const prefix = await readExactly(fh, 0, header.coffFiles);
  const signature = checkSignedLayout(header, prefix, file);
  const signatureBytes = await readExactly(fh, signature.offset, signature.size);
  if (signatureBytes.byteLength !== signature.size) throw cabError(file, 'file changed while it was read');
  return { header, prefix, signature, signatureBytes };
}

/** Stream the digest ranges through `update`, reading the large tail in chunks. */
export async function digestRanges(fh: FileHandle, ranges: [number, number][], update: (chunk: Uint8Array) => void, chunkSize = 1 << 20): Promise<void> {
  const buf = Buffer.alloc(chunkSize);
  for (const [start, end] of ranges) {
    let pos = start;
    while (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(chunkSize, end - pos), pos);
      if (bytesRead === 0) throw new Error(`unexpected end of file at ${pos}`);
      update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  }
}
