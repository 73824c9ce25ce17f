/** Pure cabinet-header logic: every offset from the file is checked before use. */
import { describe, expect, it } from 'vitest';
import { FLAG_NEXT_CABINET, FLAG_PREV_CABINET, FLAG_RESERVE_PRESENT, authenticodeRanges, checkSignedLayout, parseCabHeader } from '../../src/cab/index.js';
import { VerifyError } from '../../src/errors.js';
import { derFrame } from '../../src/pki/der.js';

interface Layout {
  cabinet?: number;
  coffFiles?: number;
  cFolders?: number;
  flags?: number;
  cbCFHeader?: number;
  cbCFFolder?: number;
  cbCFData?: number;
  sigOffset?: number;
  sigSize?: number;
  names?: string[];
}

/** A signed-cabinet header (as osslsigncode writes it) followed by its names and CFFOLDERs. */
function header(l: Layout = {}): Buffer {
  const names = Buffer.concat((l.names ?? []).map((n) => Buffer.from(`${n}\0`, 'latin1')));
  const cFolders = l.cFolders ?? 1;
  const coffFiles = l.coffFiles ?? 60 + names.byteLength + cFolders * 8;
  const cabinet = l.cabinet ?? 1000;
  const b = Buffer.alloc(Math.max(coffFiles, 60));
  b.write('MSCF', 0, 'latin1');
  b.writeUInt32LE(cabinet, 8);
  b.writeUInt32LE(coffFiles, 16);
  b[24] = 3;
  b[25] = 1;
  b.writeUInt16LE(cFolders, 26);
  b.writeUInt16LE(1, 28);
  b.writeUInt16LE(l.flags ?? FLAG_RESERVE_PRESENT, 30);
  b.writeUInt16LE(l.cbCFHeader ?? 20, 36);
  b[38] = l.cbCFFolder ?? 0;
  b[39] = l.cbCFData ?? 0;
  b.writeUInt32LE(0x00100000, 40);
  b.writeUInt32LE(l.sigOffset ?? cabinet, 44);
  b.writeUInt32LE(l.sigSize ?? 200, 48);
  names.copy(b, 60);
  return b;
}

const FILE_SIZE = 1200;
const check = (b: Buffer, size = FILE_SIZE): { offset: number; size: number } => checkSignedLayout(parseCabHeader(b, size, 'x.cab'), b, 'x.cab');
const reason = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(VerifyError);
    return (err as VerifyError).message;
  }
  throw new Error('expected a VerifyError');
};

describe('parseCabHeader / checkSignedLayout', () => {
  it('reads the fields and the signature location of a signed cabinet', () => {
    const b = header();
    const h = parseCabHeader(b, FILE_SIZE, 'x.cab');
    expect(h).toMatchObject({ cbCabinet: 1000, coffFiles: 68, cFolders: 1, cFiles: 1, cbCFHeader: 20, signature: { offset: 1000, size: 200 } });
    expect(check(b)).toEqual({ offset: 1000, size: 200 });
  });

  it('accepts previous/next cabinet names and walks past them', () => {
    const flags = FLAG_RESERVE_PRESENT | FLAG_PREV_CABINET | FLAG_NEXT_CABINET;
    expect(check(header({ flags, names: ['a.cab', 'Disk 1', 'c.cab', 'Disk 3'] }))).toEqual({ offset: 1000, size: 200 });
    expect(reason(() => check(header({ flags, names: ['a.cab', 'Disk 1', 'c.cab', 'x'.repeat(300)] })))).toMatch(/unterminated or too long/);
  });

  it.each<[string, () => unknown, RegExp]>([
    ['too short', () => parseCabHeader(Buffer.from('MSCF'), 4, 'x.cab'), /too short/],
    ['wrong magic', () => parseCabHeader(Buffer.alloc(60), 60, 'x.cab'), /no MSCF signature/],
    ['cbCabinet beyond the file', () => check(header({ cabinet: 5000, sigOffset: 1000 })), /cbCabinet 5000 is beyond the end/],
    ['coffFiles outside the cabinet', () => check(header({ coffFiles: 10 })), /coffFiles 10 is outside/],
    ['no reserve: unsigned', () => check(header({ flags: 0 })), /no Authenticode signature/],
    ['a reserve of another size', () => check(header({ cbCFHeader: 24 })), /header reserve is 24 bytes/],
    ['folder reserve', () => check(header({ cbCFFolder: 4 })), /folder or data reserves/],
    ['data reserve', () => check(header({ cbCFData: 8 })), /folder or data reserves/],
    ['signature offset past the end', () => check(header({ sigOffset: 0xffffffff })), /outside the file/],
    ['signature size past the end', () => check(header({ sigSize: 0xffffffff })), /outside the file/],
    ['offset and cbCabinet disagree', () => check(header({ sigOffset: 900, sigSize: 300 })), /differs from the cabinet size/],
    ['unsigned bytes after the signature', () => check(header(), FILE_SIZE + 3), /3 unsigned bytes follow/],
    ['folders do not end at coffFiles', () => check(header({ cFolders: 2, coffFiles: 68 })), /folders end at 76, but coffFiles is 68/],
    ['coffFiles inside the header', () => check(header({ cFolders: 0, coffFiles: 40 })), /points into the header/],
  ])('%s is a VerifyError', (_name, f, re) => {
    expect(reason(f)).toMatch(re);
  });

  it('digest ranges skip reserved1 and bytes 34–55 only', () => {
    expect(authenticodeRanges(1000)).toEqual([
      [0, 4],
      [8, 34],
      [56, 1000],
    ]);
  });
});

describe('derFrame', () => {
  it('frames short, long and high-tag elements', () => {
    expect(derFrame(Uint8Array.from([0x04, 0x02, 1, 2, 0, 0]))).toEqual({ headerLength: 2, length: 2, total: 4 });
    const long = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256)]);
    expect(derFrame(long)).toEqual({ headerLength: 4, length: 256, total: 260 });
    expect(derFrame(Uint8Array.from([0x1f, 0x81, 0x01, 0x01, 0xaa]))).toEqual({ headerLength: 4, length: 1, total: 5 });
  });

  it('refuses indefinite, truncated and oversized lengths', () => {
    expect(derFrame(Uint8Array.from([0x30, 0x80, 0, 0]))).toBeUndefined();
    expect(derFrame(Uint8Array.from([0x30, 0x05, 1]))).toBeUndefined();
    expect(derFrame(Uint8Array.from([0x30, 0x85, 1, 1, 1, 1, 1]))).toBeUndefined();
    expect(derFrame(Uint8Array.from([0x30]))).toBeUndefined();
  });
});
