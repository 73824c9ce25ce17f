/**
 * Hostile layers: each must be refused (or, for device nodes, skipped) with nothing written outside
 * the staging directory. `outside/` next to the staging directory is the canary.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import type { UnpackLimits, UnpackResult } from '../../src/source/types.js';
import { listTree, packTar, singleImageLayout, tarDir, tempDir, type PackEntry } from './helpers.js';
import { rejection } from '../support/errors.js';

let tmp: string;
let staging: string;
let outside: string;
let n = 0;

beforeEach(async () => {
  tmp = await tempDir();
  staging = path.join(tmp, 'staging');
  outside = path.join(tmp, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'secret');
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function unpackLayers(layers: Buffer[], limits?: Partial<UnpackLimits>): Promise<UnpackResult> {
  const dir = path.join(tmp, `layout${n++}`);
  await singleImageLayout(dir, { layers: layers.map((tar) => ({ tar })) });
  const resolved = await resolveSource(parseSourceReference(`oci-layout:${dir}`));
  return unpackSource(resolved, staging, limits);
}

async function unpackEntries(...layers: PackEntry[][]): Promise<UnpackResult> {
  return unpackLayers(await Promise.all(layers.map((l) => packTar(l))));
}

async function expectRefused(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await rejection(p, SourceError);
  expect((err as Error).message).toMatch(/^layer sha256:[0-9a-f]{64}: |^image sha256:/);
  expect((err as Error).message).toMatch(re);
  // The canary: nothing was created, changed or removed next to the staging directory.
  expect((await fs.readdir(tmp)).filter((x) => !x.startsWith('layout')).sort()).toEqual(['outside', 'staging']);
  expect(await fs.readdir(outside)).toEqual(['secret']);
  expect(await fs.readFile(path.join(outside, 'secret'), 'utf8')).toBe('secret');
}

describe('hostile names', () => {
  it('refuses an absolute name', async () => {
    await expectRefused(unpackEntries([{ name: `${outside}/pwned`, content: 'x' }]), /refusing entry '.*\/pwned': absolute name/);
  });

  it('refuses a .. segment', async () => {
    await expectRefused(unpackEntries([{ name: '../outside/pwned', content: 'x' }]), /'\.\.\/outside\/pwned': name has a '\.\.' segment/);
    await expectRefused(unpackEntries([{ name: 'a/../../outside/pwned', content: 'x' }]), /'\.\.' segment/);
  });

  it('refuses backslashes and over-long names', async () => {
    await expectRefused(unpackEntries([{ name: '..\\outside\\pwned', content: 'x' }]), /backslash/);
    await expectRefused(unpackLayers([await packTar([{ name: `${'d'.repeat(150)}/f`, content: 'x' }])], { maxPathLength: 100 }), /longer than 100/);
  });
});

describe('hostile links', () => {
  it('refuses an absolute symlink (etc -> /)', async () => {
    await expectRefused(unpackEntries([{ name: 'etc', type: 'symlink', linkname: '/' }]), /'etc': absolute symlink target '\/'/);
  });

  it('refuses writing through a symlinked parent from a lower layer', async () => {
    await expectRefused(
      unpackEntries(
        [
          { name: 'sub/', type: 'directory' },
          { name: 'etc', type: 'symlink', linkname: 'sub' },
        ],
        [{ name: 'etc/passwd', content: 'root::0:0::/:/bin/sh' }],
      ),
      /'etc\/passwd': parent 'etc' is a symlink/,
    );
    expect(await fs.readdir(path.join(staging, 'sub'))).toEqual([]);
  });

  it('refuses writing through a directory that an earlier entry of the same layer turned into a symlink', async () => {
    // `etc/` is known to be a real directory after `etc/a`; the symlink replacing it must not be
    // trusted on that knowledge when `etc/passwd` arrives.
    await expectRefused(
      unpackEntries([
        { name: 'sub/', type: 'directory' },
        { name: 'etc/a', content: 'a' },
        { name: 'etc', type: 'symlink', linkname: 'sub' },
        { name: 'etc/passwd', content: 'root::0:0::/:/bin/sh' },
      ]),
      /'etc\/passwd': parent 'etc' is a symlink/,
    );
    expect(await fs.readdir(path.join(staging, 'sub'))).toEqual([]);
    await fs.rm(staging, { recursive: true });
    await expectRefused(
      unpackEntries([
        { name: 'd/a', content: 'a' },
        { name: 'd', content: 'now a file' },
        { name: 'd/b', content: 'b' },
      ]),
      /'d\/b': parent 'd' is not a directory/,
    );
  });

  it('refuses a whiteout through a symlinked parent', async () => {
    await expectRefused(
      unpackEntries(
        [
          { name: 'sub/f', content: 'keep' },
          { name: 'd', type: 'symlink', linkname: 'sub' },
        ],
        [{ name: 'd/.wh.f' }],
      ),
      /parent 'd' is a symlink/,
    );
    expect(await fs.readFile(path.join(staging, 'sub/f'), 'utf8')).toBe('keep');
  });

  it('refuses symlinks leading outside, directly or through other links', async () => {
    await expectRefused(unpackEntries([{ name: 'esc', type: 'symlink', linkname: '../outside' }]), /leads outside the image/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(
      unpackEntries([
        { name: 'sub/up', type: 'symlink', linkname: '..' },
        { name: 'esc', type: 'symlink', linkname: 'sub/up/../outside' },
      ]),
      /'esc': symlink target 'sub\/up\/\.\.\/outside' leads outside/,
    );
    await fs.rm(staging, { recursive: true });
    // The link is harmless when written and becomes an escape only once sub/up exists:
    // the sweep over the finished tree catches it.
    await expectRefused(
      unpackEntries([
        { name: 'sub/', type: 'directory' },
        { name: 'esc', type: 'symlink', linkname: 'sub/up/../outside' },
        { name: 'sub/up', type: 'symlink', linkname: '..' },
      ]),
      /symlink 'esc' leads outside the image/,
    );
  });

  it('refuses hardlinks out of the tree or to anything but a regular file in it', async () => {
    await expectRefused(unpackEntries([{ name: 'h', type: 'link', linkname: '../outside/secret' }]), /'\.\.' segment/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackEntries([{ name: 'h', type: 'link', linkname: `${outside}/secret` }]), /absolute name/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(
      unpackEntries([
        { name: 'sub/f', content: 'x' },
        { name: 'd', type: 'symlink', linkname: 'sub' },
        { name: 'h', type: 'link', linkname: 'd/f' },
      ]),
      /parent 'd' is a symlink/,
    );
    await fs.rm(staging, { recursive: true });
    await expectRefused(
      unpackEntries([
        { name: 'l', type: 'symlink', linkname: 'x' },
        { name: 'h', type: 'link', linkname: 'l' },
      ]),
      /hardlink target 'l' is not a regular file/,
    );
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackEntries([{ name: 'h', type: 'link', linkname: 'missing' }]), /not a regular file/);
  });

  it('never writes through a symlink planted at the same name', async () => {
    await unpackEntries(
      [
        { name: 'target', content: 'original' },
        { name: 'f', type: 'symlink', linkname: 'target' },
      ],
      [{ name: 'f', content: 'replaced' }],
    );
    expect(await listTree(staging)).toEqual(['f f 644 replaced', 'f target 644 original']);
  });
});

describe('special files and caps', () => {
  it('skips device nodes and fifos with a warning', async () => {
    const result = await unpackEntries([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'fifo', type: 'fifo' },
      { name: 'ok', content: 'ok' },
    ]);
    expect(await listTree(staging)).toEqual(['f ok 644 ok']);
    expect(result.warnings).toHaveLength(3);
    expect(result.warnings[0]).toMatch(/skipped character-device 'dev\/null'/);
  });

  it('skips a real device node and fifo written by GNU tar', async () => {
    const src = path.join(tmp, 'src');
    await fs.mkdir(src);
    await execa('mknod', [path.join(src, 'null'), 'c', '1', '3']);
    await execa('mkfifo', [path.join(src, 'fifo')]);
    await fs.writeFile(path.join(src, 'ok'), 'ok');
    const tar = await tarDir(src);
    await fs.rm(src, { recursive: true });
    const result = await unpackLayers([tar]);
    expect(await listTree(staging)).toEqual(['f ok 644 ok']);
    expect(result.warnings.join('|')).toMatch(/skipped fifo '\.\/fifo'.*skipped character-device '\.\/null'/);
  });

  it('strips setuid, setgid and sticky bits', async () => {
    await unpackEntries([
      { name: 'suid', content: 'x', mode: 0o4755 },
      { name: 'sgid', content: 'x', mode: 0o2755 },
      { name: 'sticky/', type: 'directory', mode: 0o1777 },
    ]);
    expect(await listTree(staging)).toEqual(['f sgid 755 x', 'd sticky 777', 'f suid 755 x']);
  });

  it('enforces the file size, total size and entry count caps', async () => {
    const big = await packTar([{ name: 'big', content: Buffer.alloc(5000) }]);
    await expectRefused(unpackLayers([big], { maxFileBytes: 4096 }), /'big': file of 5000 bytes exceeds the 4096 byte limit/);
    await fs.rm(staging, { recursive: true });
    const two = await packTar([
      { name: 'a', content: Buffer.alloc(3000) },
      { name: 'b', content: Buffer.alloc(3000) },
    ]);
    await expectRefused(unpackLayers([two], { maxTotalBytes: 5000 }), /exceeds the 5000 byte limit/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackLayers([two], { maxEntries: 1 }), /more than 1 entries/);
  });
});

/** A tar whose one header declares `size` bytes (base-256, as GNU tar writes > 8 GiB) but carries 1 KiB. */
async function hugeHeaderTar(size: bigint): Promise<Buffer> {
  const tarBuf = Buffer.from(await packTar([{ name: 'huge', content: Buffer.alloc(1024, 'x') }], { withEnd: false }));
  const field = Buffer.alloc(12);
  field[0] = 0x80;
  let v = size;
  for (let i = 11; i >= 1; i--) {
    field[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  field.copy(tarBuf, 124);
  return withChecksum(tarBuf);
}

/** Recomputes the first header's checksum after a test edited it. */
function withChecksum(tarBuf: Buffer): Buffer {
  tarBuf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tarBuf[i]!;
  tarBuf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return tarBuf;
}

describe('declared sizes', () => {
  it('refuses a layer whose header declares 100 GiB from the header alone, with the default limits', async () => {
    const tarBuf = await hugeHeaderTar(100n * 1024n ** 3n);
    // GNU tar agrees the header says 100 GiB: the test really sends what it claims.
    const listing = await execa('tar', ['-tvf', '-'], { input: tarBuf, reject: false });
    expect(listing.stdout).toMatch(/107374182400 .* huge/);
    await expectRefused(unpackLayers([tarBuf]), /'huge': file of 107374182400 bytes exceeds the 67108864 byte limit/);
  });
});

/** A tar whose one entry carries `typeByte` as its type flag (checksum recomputed). */
async function typedTar(typeByte: number): Promise<Buffer> {
  const tarBuf = Buffer.from(await packTar([{ name: 'odd', content: 'x' }]));
  tarBuf[156] = typeByte;
  return withChecksum(tarBuf);
}

describe('names a consumer cannot use', () => {
  it('refuses control characters in a name, printing the name escaped', async () => {
    await expectRefused(unpackEntries([{ name: 'conf/a\nb.pem', content: 'x' }]), /refusing entry 'conf\/a\\nb\.pem': name contains a control character/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackEntries([{ name: 'x\x1b[31m', content: 'x' }]), /refusing entry 'x\\x1b\[31m': name contains a control character/);
    await fs.rm(staging, { recursive: true });
    // In a directory name, a whiteout and a symlink target alike.
    await expectRefused(unpackEntries([{ name: 'd\t/', type: 'directory' }]), /'d\\t\/': name contains a control character/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackEntries([{ name: 'l', type: 'symlink', linkname: 'a\rb' }]), /'l': symlink target contains a control character/);
  });

  it("refuses the volume's reserved top-level '..' names, also through a directory", async () => {
    await expectRefused(unpackEntries([{ name: '..data/x', content: 'x' }]), /refusing entry '\.\.data\/x': top-level names starting with '\.\.' are reserved/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(
      unpackEntries([{ name: './..zeta-provision.json', content: '{}' }]),
      /'\.\/\.\.zeta-provision\.json': top-level names starting with '\.\.'/,
    );
    await fs.rm(staging, { recursive: true });
    // Below the top level a '..' prefix is an ordinary name (the volume only reserves its own level).
    await unpackEntries([{ name: 'conf/..hidden', content: 'ok' }]);
    expect(await listTree(staging)).toEqual(['d conf 755', 'f conf/..hidden 644 ok']);
  });

  it('names the type byte of an entry type it does not know', async () => {
    await expectRefused(unpackLayers([await typedTar('Z'.charCodeAt(0))]), /refusing entry 'odd': unsupported entry type byte 0x5a 'Z'/);
    await fs.rm(staging, { recursive: true });
    await expectRefused(unpackLayers([await typedTar(0x01)]), /unsupported entry type byte 0x01$/);
  });
});
