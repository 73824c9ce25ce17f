/**
 * A folder's CFDATA blocks, decoded one at a time: stored or MSZIP, every checksum checked, every size
 * checked. Only the current block and its predecessor (the MSZIP dictionary) are held in memory.
 */
import zlib from 'node:zlib';
import { cabError } from './header.js';
import { cfdataChecksum } from './checksum.js';
import { COMPRESSION_MSZIP, COMPRESSION_NONE, compressionName, type CabFolder } from './directory.js';

/** MS-CAB: a CFDATA block holds at most 32 KiB of uncompressed data. */
export const MAX_BLOCK_UNCOMPRESSED = 32768;
/** MSZIP may expand a block slightly when it stores it: 32 KiB + the "CK" tag + deflate framing. */
const MAX_BLOCK_COMPRESSED = MAX_BLOCK_UNCOMPRESSED + 12 + 2 + 5 * 4;
const CFDATA_HEADER = 8;
/**
 * zlib's sync API returns a slice of its output buffer when the output fits in one chunk, and allocates
 * (then concatenates) more chunks when it does not; one chunk larger than a block means one allocation
 * per block instead of three (its default chunk is 16 KiB).
 */
const INFLATE_CHUNK = MAX_BLOCK_UNCOMPRESSED + 1024;

export interface DecodedBlock {
  /** Offset of this block's first byte in the folder's uncompressed stream. */
  start: number;
  data: Buffer;
}

/**
 * Yield the uncompressed blocks of `folder`. `end` is cbCabinet (nothing past it is cabinet data),
 * `dataReserve` the per-block reserve from the header.
 */
export function* decodeFolder(cab: Buffer, folder: CabFolder, end: number, dataReserve: number, file: string): Generator<DecodedBlock> {
  const where = `folder ${folder.index}`;
  if (folder.compression !== COMPRESSION_NONE && folder.compression !== COMPRESSION_MSZIP) {
    throw cabError(file, `${where} uses ${compressionName(folder.compression)} compression; only stored and MSZIP cabinets are supported`);
  }
  let pos = folder.dataOffset;
  let start = 0;
  let dictionary: Buffer | undefined;
  const history = Buffer.allocUnsafe(MAX_BLOCK_UNCOMPRESSED);
  for (let i = 0; i < folder.blockCount; i++) {
    const block = `${where} block ${i}`;
    if (pos + CFDATA_HEADER + dataReserve > end) throw cabError(file, `${block}: header at offset ${pos} is truncated`);
    const checksum = cab.readUInt32LE(pos);
    const compressedSize = cab.readUInt16LE(pos + 4);
    const size = cab.readUInt16LE(pos + 6);
    const dataStart = pos + CFDATA_HEADER + dataReserve;
    if (dataStart + compressedSize > end)
      throw cabError(file, `${block}: ${compressedSize} bytes of data at offset ${dataStart} are truncated (cabinet ends at ${end})`);
    // cbUncomp 0 marks a block continued in the next cabinet of a set.
    if (size === 0 || size > MAX_BLOCK_UNCOMPRESSED) throw cabError(file, `${block}: uncompressed size ${size} is out of range`);
    if (compressedSize > MAX_BLOCK_COMPRESSED) throw cabError(file, `${block}: compressed size ${compressedSize} is out of range`);
    const payload = cab.subarray(dataStart, dataStart + compressedSize);
    // 0 means "no checksum" (MS-CAB 2.5); anything else must match before the bytes are trusted.
    if (checksum !== 0) {
      const actual = cfdataChecksum(cab.subarray(pos + 4, pos + 8), payload);
      if (actual !== checksum) throw cabError(file, `${block}: checksum mismatch (stored ${hex(checksum)}, computed ${hex(actual)})`);
    }
    const data = folder.compression === COMPRESSION_NONE ? storedBlock(payload, size, block, file) : mszipBlock(payload, size, dictionary, block, file);
    // The dictionary is a private copy: the caller may get views into `data` (see reader.ts), and what
    // it does with them must not change how the next block inflates.
    if (folder.compression === COMPRESSION_MSZIP) {
      history.set(data);
      dictionary = history.subarray(0, data.byteLength);
    }
    yield { start, data };
    start += size;
    pos = dataStart + compressedSize;
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function storedBlock(payload: Buffer, size: number, block: string, file: string): Buffer {
  if (payload.byteLength !== size) throw cabError(file, `${block}: stored block holds ${payload.byteLength} bytes but declares ${size}`);
  return payload;
}

/**
 * One MSZIP block: "CK" then a complete raw-deflate stream whose back-references may reach into the
 * previous block's output — real Microsoft cabinets depend on that, so it is passed as the dictionary.
 */
function mszipBlock(payload: Buffer, size: number, dictionary: Buffer | undefined, block: string, file: string): Buffer {
  if (payload.byteLength < 2 || payload[0] !== 0x43 || payload[1] !== 0x4b) throw cabError(file, `${block}: MSZIP block does not start with "CK"`);
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(payload.subarray(2), {
      ...(dictionary ? { dictionary } : {}),
      maxOutputLength: MAX_BLOCK_UNCOMPRESSED,
      chunkSize: INFLATE_CHUNK,
    });
  } catch (err) {
    const reason = err instanceof RangeError ? `inflates to more than ${MAX_BLOCK_UNCOMPRESSED} bytes` : `does not inflate (${(err as Error).message})`;
    throw cabError(file, `${block}: MSZIP data ${reason}`);
  }
  if (out.byteLength !== size) throw cabError(file, `${block}: MSZIP data inflates to ${out.byteLength} bytes, the block declares ${size}`);
  return out;
}
