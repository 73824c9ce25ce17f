/**
 * A minimal cabinet writer for tests: stored or MSZIP folders, arbitrary (also hostile) names, correct
 * checksums unless told otherwise. MSZIP blocks are deflated with the previous block as the dictionary,
 * the way Microsoft's cabinets are (gcab's blocks are independent and would not exercise it).
 */
import zlib from 'node:zlib';
import { cfdataChecksum } from '../../src/cab/checksum.js';

export interface BuildFile {
  name: string;
  data: Buffer;
  /** Sets the UTF-8 name flag (0x80); names are written as UTF-8 either way. */
  utf8?: boolean;
  /** Raw name bytes, overriding `name`. */
  rawName?: Buffer;
}

export interface BuildOptions {
  /** typeCompress: 0 stored, 1 MSZIP, 3 LZX (data is then written stored, just labelled). */
  compression?: number;
  blockSize?: number;
  /** Write 0 as every checksum ("none"). */
  noChecksums?: boolean;
}

export function buildCab(files: BuildFile[], opts: BuildOptions = {}): Buffer {
  const compression = opts.compression ?? 0;
  const blockSize = opts.blockSize ?? 32768;
  const stream = Buffer.concat(files.map((f) => f.data));
  const blocks: Buffer[] = [];
  let prev: Buffer | undefined;
  for (let pos = 0; pos < stream.length || (pos === 0 && blocks.length === 0); pos += blockSize) {
    const chunk = stream.subarray(pos, pos + blockSize);
    if (chunk.length === 0) break;
    let payload = chunk;
    if (compression === 1) {
      payload = Buffer.concat([Buffer.from('CK'), zlib.deflateRawSync(chunk, prev ? { dictionary: prev } : {})]);
    }
    const sizes = Buffer.alloc(4);
    sizes.writeUInt16LE(payload.length, 0);
    sizes.writeUInt16LE(chunk.length, 2);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(opts.noChecksums ? 0 : cfdataChecksum(sizes, payload), 0);
    blocks.push(Buffer.concat([head, sizes, payload]));
    prev = chunk;
  }
  const fileRecords: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(f.data.length, 0);
    rec.writeUInt32LE(offset, 4);
    rec.writeUInt16LE(0, 8);
    rec.writeUInt16LE(0x5b1d, 10); // 2025-08-29
    rec.writeUInt16LE(0x92c0, 12);
    rec.writeUInt16LE(0x20 | (f.utf8 ? 0x80 : 0), 14);
    fileRecords.push(rec, f.rawName ?? Buffer.from(f.name, 'utf8'), Buffer.alloc(1));
    offset += f.data.length;
  }
  const table = Buffer.concat(fileRecords);
  const coffFiles = 36 + 8;
  const dataOffset = coffFiles + table.length;
  const data = Buffer.concat(blocks);
  const header = Buffer.alloc(36);
  header.write('MSCF', 0, 'latin1');
  header.writeUInt32LE(dataOffset + data.length, 8);
  header.writeUInt32LE(coffFiles, 16);
  header[24] = 3;
  header[25] = 1;
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(files.length, 28);
  const folder = Buffer.alloc(8);
  folder.writeUInt32LE(dataOffset, 0);
  folder.writeUInt16LE(blocks.length, 4);
  folder.writeUInt16LE(compression, 6);
  return Buffer.concat([header, folder, table, data]);
}

/** Offset of the first CFDATA block of the single folder. */
export function firstDataOffset(cab: Buffer): number {
  return cab.readUInt32LE(36);
}
