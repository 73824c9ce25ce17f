import { mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises';
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
    expect(first).toBe(combineDigests([
      { path: 'nginx/nginx.conf', sha256: await sha256File(conf) },
      { path: 'opa/policy.rego', sha256: await sha256File(path.join(volume, 'opa', 'policy.rego')) },
    ]));
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
});
