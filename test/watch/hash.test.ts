import { lstat, mkdir, readdir, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { combineDigests, DirectoryHasher } from '../../src/watch/hash.js';
import { sha256File } from '../../src/util/fs.js';
import { useTempDirs } from '../support/tmp.js';
import { publish } from './helpers.js';

const tempDir = useTempDirs();

describe('DirectoryHasher on a published volume', () => {
  it('hashes what consumers see: same content in a new generation → same hash; any change → another', async () => {
    const volume = path.join(await tempDir(), 'volume');
    await publish(volume, { 'nginx/nginx.conf': 'a\n', 'opa/policy.rego': 'p\n' });
    const hasher = new DirectoryHasher(volume);
    const first = await hasher.hash();
    const conf = path.join(volume, 'nginx', 'nginx.conf');
    expect(first).toBe(
      combineDigests([
        { path: 'nginx/nginx.conf', sha256: await sha256File(conf) },
        { path: 'opa/policy.rego', sha256: await sha256File(path.join(volume, 'opa', 'policy.rego')) },
      ]),
    );
    // Bookkeeping (..data, generations, status, lock) does not count.
    expect((await readdir(volume)).filter((n) => n.startsWith('..')).length).toBeGreaterThan(1);

    await publish(volume, { 'nginx/nginx.conf': 'b\n', 'opa/policy.rego': 'p\n' });
    const second = await hasher.hash();
    expect(second).not.toBe(first);
    await publish(volume, { 'nginx/nginx.conf': 'a\n', 'opa/policy.rego': 'p\n' });
    expect(await hasher.hash()).toBe(first);
    expect(await new DirectoryHasher(volume).hash()).toBe(first);
    // A renamed file is a change, though every byte is the same.
    await publish(volume, { 'nginx/default.conf': 'a\n', 'opa/policy.rego': 'p\n' });
    expect(await hasher.hash()).not.toBe(first);
  });

  it('hashes the generation ..data points to, as kubelet lays out a ConfigMap volume', async () => {
    const dir = await tempDir();
    const gen1 = path.join(dir, '..2026_01_01_00_00_00.000000001');
    const gen2 = path.join(dir, '..2026_01_01_00_01_00.000000002');
    await mkdir(gen1);
    await mkdir(gen2);
    await writeFile(path.join(gen1, 'nginx.conf'), 'one\n');
    await writeFile(path.join(gen2, 'nginx.conf'), 'two\n');
    await symlink(path.basename(gen1), path.join(dir, '..data'));
    await symlink('..data/nginx.conf', path.join(dir, 'nginx.conf'));
    const hasher = new DirectoryHasher(dir);
    const one = await hasher.hash();
    expect(one).toBe(combineDigests([{ path: 'nginx.conf', sha256: await sha256File(path.join(gen1, 'nginx.conf')) }]));
    // kubelet's swap: a new link renamed over ..data.
    await symlink(path.basename(gen2), path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    expect(await hasher.hash()).toBe(combineDigests([{ path: 'nginx.conf', sha256: await sha256File(path.join(gen2, 'nginx.conf')) }]));
  });

  it('walks a plain directory, following links and leaving out dangling ones', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'a.txt'), 'a');
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'b.txt'), 'b');
    await symlink('a.txt', path.join(dir, 'link.txt'));
    await symlink('missing', path.join(dir, 'dangling'));
    const sha = (s: string) => sha256File(path.join(dir, s));
    expect(await new DirectoryHasher(dir).hash()).toBe(
      combineDigests([
        { path: 'a.txt', sha256: await sha('a.txt') },
        { path: 'link.txt', sha256: await sha('a.txt') },
        { path: 'sub/b.txt', sha256: await sha('sub/b.txt') },
      ]),
    );
  });

  it('dates the content by the ctime of the ..data swap, which neither an old mtime nor a rollback fools', async () => {
    const dir = await tempDir();
    const gen = (n: number) => path.join(dir, `..2026_01_01_00_0${n}_00.00000000${n}`);
    for (const n of [1, 2]) {
      await mkdir(gen(n));
      await writeFile(path.join(gen(n), 'nginx.conf'), `${n}\n`);
      // As `cp -a` or tar would leave them: a year-old mtime.
      await utimes(gen(n), new Date('2025-01-01'), new Date('2025-01-01'));
    }
    await symlink(path.basename(gen(1)), path.join(dir, '..data'));
    await symlink('..data/nginx.conf', path.join(dir, 'nginx.conf'));
    const hasher = new DirectoryHasher(dir);
    const swap = async (n: number) => {
      await symlink(path.basename(gen(n)), path.join(dir, '..data_tmp'));
      await new Promise((r) => setTimeout(r, 30));
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      return (await lstat(path.join(dir, '..data'))).ctimeMs;
    };
    const before = Date.now();
    const t2 = await swap(2);
    expect(await hasher.contentTime()).toBe(t2);
    // The rename set it, not the symlink's creation 30 ms earlier (its mtime).
    expect(t2).toBeGreaterThan((await lstat(path.join(dir, '..data'))).mtimeMs + 20);
    expect(t2).toBeGreaterThanOrEqual(before - 20);
    // A rollback to the older generation is a swap like any other: dated now, not by its old content.
    const t1 = await swap(1);
    expect(await hasher.contentTime()).toBe(t1);
    expect(t1).toBeGreaterThan(t2);
  });

  it("dates a subdirectory of a swapped volume by the parent's ..data swap", async () => {
    const volume = path.join(await tempDir(), 'volume');
    await publish(volume, { 'nginx/nginx.conf': 'a\n' });
    await new Promise((r) => setTimeout(r, 20));
    await publish(volume, { 'nginx/nginx.conf': 'b\n' });
    expect(await new DirectoryHasher(path.join(volume, 'nginx')).contentTime()).toBe((await lstat(path.join(volume, '..data'))).ctimeMs);
  });

  it('dates a plain directory by the newest ctime in it, which a removed file moves too', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'a'), 'a');
    await writeFile(path.join(dir, 'b'), 'b');
    const hasher = new DirectoryHasher(dir);
    expect(await hasher.contentTime()).toBe(
      Math.max(...(await Promise.all([dir, path.join(dir, 'sub'), path.join(dir, 'sub', 'a'), path.join(dir, 'b')].map(async (p) => (await stat(p)).ctimeMs)))),
    );
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(path.join(dir, 'sub', 'c'), 'c');
    await rm(path.join(dir, 'sub', 'c'));
    expect(await hasher.contentTime()).toBe((await stat(path.join(dir, 'sub'))).ctimeMs);
  });
});
