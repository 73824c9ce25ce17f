/**
 * The cabinet reader against its peers: gcab makes cabinets (stored and MSZIP), cabextract extracts the
 * real Microsoft TrustedTpm.cab files; our file list and bytes must equal theirs. Hostile cabinets come
 * from a small writer in build.ts (checked against cabextract too) and from byte edits of real ones.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCabDirectory, readCabinet } from '../../src/cab/index.js';
import { VerifyError } from '../../src/errors.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { buildCab, firstDataOffset, type BuildFile } from './build.js';

const tempDir = useTempDirs();
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(import.meta.dirname, '../../../shared/realworld');
const realCabs = ['gematik-test/TrustedTpm.cab', 'gematik-test/trusted-tpm/TrustedTpm.cab', 'tpm-cab/TrustedTpm-10232021.cab'];

const sha = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

/** Every regular file under `dir` → sha256, keyed by POSIX path relative to `dir`. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, full).split(path.sep).join('/'), sha(await readFile(full)));
  }
  return out;
}

/**
 * Our view of a cabinet. `scribble` overwrites every member after hashing it: members may be views of
 * decoded blocks, and what a caller does with them must not change how later blocks inflate.
 */
function ours(cab: Buffer, scribble = false): Map<string, string> {
  const out = new Map<string, string>();
  for (const { file, data } of readCabinet(cab)) {
    out.set(file.name, sha(data));
    if (scribble) data.fill(0xa5);
  }
  return out;
}

function failure(cab: Buffer): string {
  try {
    for (const entry of readCabinet(cab, { name: 'x.cab' })) void entry;
  } catch (err) {
    expect(err).toBeInstanceOf(VerifyError);
    return (err as Error).message;
  }
  throw new Error('cabinet was accepted');
}

async function cabextract(cab: string, dir: string): Promise<Map<string, string>> {
  const r = await execa('cabextract', ['-q', '-d', dir, cab], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return tree(dir);
}

beforeAll(async () => {
  await requireProgram('gcab', 'gcab');
  await requireProgram('cabextract', 'cabextract');
});

describe('readCabinet on gcab cabinets', () => {
  for (const compress of [false, true]) {
    it(`reads what gcab ${compress ? '-z (MSZIP)' : '(stored)'} wrote: names with "/" and the exact bytes`, async () => {
      const dir = await tempDir();
      const src = path.join(dir, 'src');
      await mkdir(path.join(src, 'Vendor A', 'IntermediateCA'), { recursive: true });
      await mkdir(path.join(src, 'Vendor B', 'RootCA'), { recursive: true });
      const files: Record<string, Buffer> = {
        'setup.cmd': Buffer.from('@echo off\r\n'),
        'empty.txt': Buffer.alloc(0),
        // Incompressible and larger than one 32 KiB block: spans blocks, MSZIP stores it.
        'Vendor A/IntermediateCA/random.bin': crypto.randomBytes(100_000),
        // Very compressible and spanning blocks.
        'Vendor B/RootCA/Root 1.CER': Buffer.from('0123456789abcdef'.repeat(10_000)),
        'Vendor B/RootCA/root2.der': crypto.randomBytes(1300),
      };
      for (const [name, data] of Object.entries(files)) await writeFile(path.join(src, name), data);
      const cab = path.join(dir, 'out.cab');
      const r = await execa('gcab', ['-c', ...(compress ? ['-z'] : []), cab, ...Object.keys(files)], { cwd: src, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      const bytes = await readFile(cab);
      const dirInfo = readCabDirectory(bytes, 'out.cab');
      expect(dirInfo.folders.map((f) => f.compression)).toEqual([compress ? 1 : 0]);
      // gcab stores backslashes; we hand out POSIX paths.
      expect(dirInfo.files.map((f) => f.rawName)).toContain('Vendor B\\RootCA\\Root 1.CER');
      const expected = new Map(Object.entries(files).map(([n, d]) => [n, sha(d)]));
      expect(ours(bytes)).toEqual(expected);
    });
  }
});

describe('readCabinet on a gcab cabinet holding only an empty file', () => {
  it('yields the empty file although its folder has no data block', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'empty.txt'), '');
    const r = await execa('gcab', ['-c', '-z', 'e.cab', 'empty.txt'], { cwd: dir, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const bytes = await readFile(path.join(dir, 'e.cab'));
    expect(readCabDirectory(bytes, 'e.cab').folders.map((f) => f.blockCount)).toEqual([0]);
    expect([...readCabinet(bytes)].map((e) => [e.file.name, e.data.length])).toEqual([['empty.txt', 0]]);
  });
});

describe.skipIf(!existsSync(realworld))('readCabinet on real Microsoft cabinets (MSZIP with the previous block as dictionary)', () => {
  for (const rel of realCabs) {
    it(`${rel}: same file list and bytes as cabextract`, async () => {
      const file = path.join(realworld, rel);
      const expected = await cabextract(file, await tempDir());
      const got = ours(await readFile(file), true);
      expect(got.size).toBe(expected.size);
      expect(got).toEqual(expected);
    });
  }

  it('gematik-test/TrustedTpm.cab: 2,209 entries in the counts PROVENANCE.md gives', async () => {
    const dir = readCabDirectory(await readFile(path.join(realworld, realCabs[0]!)), 'TrustedTpm.cab');
    expect(dir.files).toHaveLength(2209);
    const ext = (n: string): string => n.slice(n.lastIndexOf('.'));
    const count = (e: string): number => dir.files.filter((f) => ext(f.name) === e).length;
    expect([count('.cer'), count('.crt'), count('.CER'), count('.der')]).toEqual([1820, 253, 113, 19]);
    expect(dir.files.map((f) => f.name)).toContain('AMD/IntermediateCA/readme.txt');
  });

  it('refuses a real cabinet with one flipped data byte (checksum) and one cut short (truncated block)', async () => {
    const bytes = Buffer.from(await readFile(path.join(realworld, realCabs[0]!)));
    const folder = readCabDirectory(bytes, 'x.cab').folders[0]!;
    expect(bytes.readUInt32LE(folder.dataOffset)).not.toBe(0); // Microsoft writes checksums
    const data = folder.dataOffset + 8 + 500;
    const flipped = Buffer.from(bytes);
    flipped[data] = flipped[data]! ^ 0x01;
    expect(failure(flipped)).toMatch(/^x\.cab: folder 0 block 0: checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)$/);
    // Cut in the middle of the last blocks: cbCabinet still claims the full size, so lower it too
    // (as a truncated download with a patched header would).
    const cut = Buffer.from(bytes.subarray(0, 1_000_000));
    cut.writeUInt32LE(cut.length, 8);
    expect(failure(cut)).toMatch(
      /^x\.cab: folder 0 block \d+: (header at offset \d+ is truncated|\d+ bytes of data at offset \d+ are truncated \(cabinet ends at 1000000\))$/,
    );
  });
});

describe('readCabinet with MSZIP dictionaries and hostile cabinets', () => {
  const text = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => `line ${i % 97} of a certificate list\n`).join(''));

  it('inflates MSZIP blocks that reference the previous block, like cabextract', async () => {
    const files: BuildFile[] = [
      { name: 'a\\one.txt', data: text(3000) },
      { name: 'b\\two.txt', data: text(2000) },
      { name: 'Zertifikat-ä.cer', data: Buffer.from('x'), utf8: true },
    ];
    const cab = buildCab(files, { compression: 1 });
    const dir = await tempDir();
    await writeFile(path.join(dir, 'm.cab'), cab);
    const expected = await cabextract(path.join(dir, 'm.cab'), path.join(dir, 'out'));
    expect(ours(cab)).toEqual(expected);
    expect([...expected.keys()].sort()).toEqual(['Zertifikat-ä.cer', 'a/one.txt', 'b/two.txt']);
    // Without the dictionary the second block would not inflate: prove the fixture needs it.
    const second = cab.subarray(firstDataOffset(cab) + 8 + cab.readUInt16LE(firstDataOffset(cab) + 4));
    expect(() => zlib.inflateRawSync(second.subarray(8 + 2, 8 + second.readUInt16LE(4)))).toThrow();
  });

  it('reads checksum-less blocks (checksum 0 means none)', () => {
    const cab = buildCab([{ name: 'a.txt', data: text(10) }], { compression: 1, noChecksums: true });
    expect([...readCabinet(cab)].map((e) => e.data.toString())).toEqual([text(10).toString()]);
  });

  const hostile: [string, BuildFile, RegExp][] = [
    ['a ..\\ name', { name: '..\\..\\etc\\cron.d\\x', data: Buffer.from('x') }, /refused: name has a '\.\.' segment/],
    ['a .. segment in the middle', { name: 'a\\..\\..\\x', data: Buffer.from('x') }, /refused: name has a '\.\.' segment/],
    ['an absolute name', { name: '\\windows\\x.cer', data: Buffer.from('x') }, /refused: absolute name/],
    ['a drive letter', { name: 'C:x.cer', data: Buffer.from('x') }, /refused: name with a drive letter/],
    ['a control character', { name: 'a\nb.cer', data: Buffer.from('x') }, /refused: name contains a control character/],
    [
      'invalid UTF-8 under the UTF-8 flag',
      { name: '', rawName: Buffer.from([0x61, 0xc3, 0x28]), utf8: true, data: Buffer.from('x') },
      /refused: name flagged UTF-8 is not valid UTF-8/,
    ],
  ];
  for (const [what, file, message] of hostile) {
    it(`refuses ${what}`, () => {
      expect(failure(buildCab([{ name: 'ok.txt', data: Buffer.from('ok') }, file]))).toMatch(message);
    });
  }

  it('decodes names without the UTF-8 flag as ISO-8859-1, like cabextract', async () => {
    const cab = buildCab([{ name: '', rawName: Buffer.from([0x66, 0xfc, 0x72]), data: Buffer.from('x') }]);
    expect([...readCabinet(cab)].map((e) => e.file.name)).toEqual(['für']);
  });

  it('refuses duplicate names, a name that is also a directory, LZX, a bad checksum and a truncated block', () => {
    expect(
      failure(
        buildCab([
          { name: 'a\\x', data: Buffer.from('1') },
          { name: 'a/x', data: Buffer.from('2') },
        ]),
      ),
    ).toBe('x.cab: a/x: appears twice');
    expect(
      failure(
        buildCab([
          { name: 'a', data: Buffer.from('1') },
          { name: 'a\\x', data: Buffer.from('2') },
        ]),
      ),
    ).toBe('x.cab: a/x: its directory a is also a file');
    expect(failure(buildCab([{ name: 'a', data: Buffer.from('1') }], { compression: 3 }))).toBe(
      'x.cab: folder 0 uses LZX compression; only stored and MSZIP cabinets are supported',
    );
    expect(failure(buildCab([{ name: 'a', data: Buffer.from('1') }], { compression: 2 }))).toMatch(/uses Quantum compression/);

    const good = buildCab([{ name: 'a.txt', data: text(100) }], { compression: 1 });
    const bad = Buffer.from(good);
    bad[bad.length - 3] = bad[bad.length - 3]! ^ 0xff;
    expect(failure(bad)).toMatch(/^x\.cab: folder 0 block 0: checksum mismatch/);
    // The data of the block is cut short while the headers still promise it.
    const truncated = Buffer.from(good.subarray(0, good.length - 10));
    truncated.writeUInt32LE(truncated.length, 8);
    expect(failure(truncated)).toMatch(/^x\.cab: folder 0 block 0: \d+ bytes of data at offset \d+ are truncated/);
    // A file claiming more bytes than its folder decodes to.
    const long = Buffer.from(buildCab([{ name: 'a.txt', data: text(100) }]));
    long.writeUInt32LE(text(100).length + 1, 44);
    expect(failure(long)).toBe("x.cab: a.txt: extends past the end of folder 0's data (" + text(100).length + ' bytes): the cabinet is truncated or corrupt');
  });

  it('refuses a header whose file table runs past the cabinet and a folder beyond the folder count', () => {
    const cab = Buffer.from(buildCab([{ name: 'a.txt', data: Buffer.from('a') }]));
    const short = Buffer.from(cab.subarray(0, 50));
    short.writeUInt32LE(50, 8);
    expect(failure(short)).toBe('x.cab: folder 0: data offset 66 is outside the cabinet');
    const table = Buffer.from(cab);
    table.writeUInt32LE(cab.length - 5, 16); // coffFiles near the end
    expect(failure(table)).toBe(`x.cab: file record 0 at offset ${cab.length - 5} runs past the end of the cabinet (${cab.length} bytes)`);
    const badFolder = Buffer.from(cab);
    badFolder.writeUInt16LE(3, 44 + 8);
    expect(failure(badFolder)).toBe('x.cab: a.txt: folder 3 does not exist (1 folders)');
    const spanned = Buffer.from(cab);
    spanned.writeUInt16LE(0xfffd, 44 + 8);
    expect(failure(spanned)).toMatch(/continues in another cabinet of a set/);
  });
});
