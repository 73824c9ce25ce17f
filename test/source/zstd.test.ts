/**
 * zstd layers: the decoder against streams made by the `zstd` program (levels, several frames,
 * skippable frames, long windows), layers applied from a layout, and crafted streams that must be
 * refused before they cost memory: a 2 GiB window and an RLE bomb.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import { ZstdFrameScanner, zstdDecoder } from '../../src/source/zstd.js';
import { requireProgram } from '../support/programs.js';
import { listTree, packTar, singleImageLayout, tempDir } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  await requireProgram('zstd', 'zstd');
});
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function zstd(input: Buffer, args: string[] = []): Promise<Buffer> {
  return Buffer.from((await execa('zstd', ['-q', '-c', ...args], { input, encoding: 'buffer' })).stdout);
}

async function decode(data: Buffer, chunkSize = 65536): Promise<Buffer> {
  const chunks = function* () {
    for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
  };
  const out: Buffer[] = [];
  for await (const c of zstdDecoder()(Readable.from(chunks()))) out.push(c);
  return Buffer.concat(out);
}

/** Mixed content: compressible text and incompressible noise, a few MiB. */
function sample(): Buffer {
  const text = Buffer.from('trust anchor certificate revocation list '.repeat(40_000));
  return Buffer.concat([text, randomBytes(1_500_000), text.subarray(0, 700_001)]);
}

/** One frame of RLE blocks (4 bytes each, 128 KiB of output each), as a hostile registry would serve. */
function rleFrame(blocks: number, byte: number): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58])]; // magic, no FCS, 2 MiB window
  for (let i = 0; i < blocks; i++) {
    const v = ((128 * 1024) << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0);
    parts.push(Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, byte]));
  }
  return Buffer.concat(parts);
}

describe('zstd decoder', () => {
  it('decodes what the zstd program writes, at several levels and chunkings', async () => {
    const data = sample();
    for (const args of [['-1'], ['-15'], ['--long=27', '-3'], ['--no-check']]) {
      const packed = await zstd(data, args);
      expect((await decode(packed)).equals(data), args.join(' ')).toBe(true);
    }
    const packed = await zstd(data);
    expect((await decode(packed, 7)).equals(data)).toBe(true);
    expect((await decode(packed, 1 << 20)).equals(data)).toBe(true);
  });

  it('decodes several frames and skips skippable frames', async () => {
    const a = Buffer.from('first frame\n'.repeat(1000));
    const b = randomBytes(100_000);
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]), Buffer.from('hello')]);
    const stream = Buffer.concat([await zstd(a), skippable, await zstd(b), await zstd(Buffer.alloc(0))]);
    expect((await decode(stream, 1000)).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('refuses a frame that asks for a window over 128 MiB (zstd --long=31 from a pipe)', async () => {
    const packed = await zstd(Buffer.from('x'.repeat(1000)), ['--long=31', '--zstd=wlog=31']);
    await expect(decode(packed)).rejects.toThrowError(/needs a 2147483648 byte window, over the limit of 134217728/);
  });

  it('refuses bad magic, truncation and reserved bits', async () => {
    await expect(decode(Buffer.from('not zstd at all'))).rejects.toThrowError(/bad magic number/);
    const packed = await zstd(sample());
    await expect(decode(packed.subarray(0, packed.length - 100))).rejects.toThrowError(/truncated/);
    await expect(decode(Buffer.alloc(0))).rejects.toThrowError(/truncated/);
    await expect(decode(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x58, 0x01, 0x00, 0x00]))).rejects.toThrowError(/reserved bit/);
  });

  it('cuts an RLE bomb so the decoder is never handed more than ~2 MiB of output at once', () => {
    // 40000 blocks: 160 KB of input, 5 GiB of output.
    const bomb = rleFrame(40_000, 0);
    const cuts = new ZstdFrameScanner().scan(bomb);
    expect(cuts.length).toBe(2500);
    const gaps = cuts.map((c, i) => c - (i === 0 ? 6 : cuts[i - 1]!));
    expect(new Set(gaps)).toEqual(new Set([16 * 4])); // 16 blocks × 128 KiB = 2 MiB per step
  });
});

describe('zstd layers', () => {
  it('applies zstd layers (with a whiteout) exactly like gzip ones', async () => {
    const lower = await packTar([
      { name: 'etc/a.txt', content: 'A' },
      { name: 'etc/gone.txt', content: 'bye' },
      { name: 'data/big.bin', content: sample() },
    ]);
    const upper = await packTar([{ name: 'etc/.wh.gone.txt' }, { name: 'etc/new.txt', content: 'N' }]);
    await singleImageLayout(path.join(tmp, 'z'), {
      layers: [
        { tar: lower, zstd: true },
        { tar: upper, zstd: true },
      ],
    });
    await singleImageLayout(path.join(tmp, 'g'), { layers: [{ tar: lower }, { tar: upper }] });
    const z = await resolveSource(parseSourceReference(`oci-layout:${tmp}/z`));
    expect(z.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
    await unpackSource(z, path.join(tmp, 'sz'));
    await unpackSource(await resolveSource(parseSourceReference(`oci-layout:${tmp}/g`)), path.join(tmp, 'sg'));
    const tree = await listTree(path.join(tmp, 'sz'));
    expect(tree).toEqual(await listTree(path.join(tmp, 'sg')));
    expect(tree.filter((l) => l.startsWith('f etc/'))).toEqual(['f etc/a.txt 644 A', 'f etc/new.txt 644 N']);
  });

  async function expectLayerRefused(blob: Buffer, tar: Buffer, re: RegExp, limits = {}): Promise<void> {
    await singleImageLayout(path.join(tmp, 'bad'), { layers: [{ tar, blob, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] });
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${tmp}/bad`));
    const err = await unpackSource(resolved, path.join(tmp, 's'), limits).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).exitCode).toBe(4);
    expect((err as Error).message).toMatch(/^layer sha256:[0-9a-f]{64}: /);
    expect((err as Error).message).toMatch(re);
  }

  it('refuses a truncated stream and a huge window as layer errors', async () => {
    const tar = await packTar([{ name: 'a', content: sample() }]);
    const packed = await zstd(tar);
    await expectLayerRefused(packed.subarray(0, packed.length - 5000), tar, /truncated/);
    await fs.rm(path.join(tmp, 's'), { recursive: true, force: true });
    await expectLayerRefused(await zstd(tar, ['--long=31', '--zstd=wlog=31']), tar, /cannot decompress: zstd frame needs a 2147483648 byte window/);
  });

  it('stops an RLE bomb at the unpack limits', async () => {
    const tar = await packTar([{ name: 'a' }]);
    // 5 GiB of zero bytes; the uncompressed-bytes cap (limits + 64 MiB slack) ends it.
    await expectLayerRefused(rleFrame(40_000, 0), tar, /uncompressed data exceeds the unpack limits/, { maxTotalBytes: 1024 * 1024, maxEntries: 10 });
  });
});
