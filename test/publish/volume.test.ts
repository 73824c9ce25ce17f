import { mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PublishError } from '../../src/errors.js';
import type { VolumeFile } from '../../src/process/types.js';
import { publishVolume, readVolumeState } from '../../src/publish/volume/index.js';
import { sha256File } from '../../src/util/fs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

async function stage(root: string, files: Record<string, string>): Promise<VolumeFile[]> {
  const out: VolumeFile[] = [];
  for (const [p, content] of Object.entries(files)) {
    const abs = path.join(root, p);
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content);
    out.push({ path: p, source: abs, size: Buffer.byteLength(content), sha256: await sha256File(abs) });
  }
  return out;
}

describe('volume publisher', () => {
  it('writes a generation, swaps ..data and links top-level names into it', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const files = await stage(await tempDir(), { 'keycloak-data/a.json': 'A', 'keycloak-data/sub/b.txt': 'B', 'top.txt': 'T' });
    const r = await publishVolume(vol, files);
    expect(await readlink(path.join(vol, '..data'))).toBe(r.generation);
    expect(await readlink(path.join(vol, 'keycloak-data'))).toBe('..data/keycloak-data');
    expect(await readFile(path.join(vol, 'keycloak-data/sub/b.txt'), 'utf8')).toBe('B');
    expect(await readFile(path.join(vol, 'top.txt'), 'utf8')).toBe('T');
    expect([...(await readVolumeState(vol)).keys()].sort()).toEqual(['keycloak-data/a.json', 'keycloak-data/sub/b.txt', 'top.txt']);
    expect(r.bytesWritten).toBe(3);
  });

  it('a second generation replaces the set whole, keeps one previous and removes stale links', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const first = await publishVolume(vol, await stage(await tempDir(), { 'a/x': '1', 'old/y': '2' }));
    const second = await publishVolume(vol, await stage(await tempDir(), { 'a/x': '3' }));
    const third = await publishVolume(vol, await stage(await tempDir(), { 'a/x': '4' }));
    const names = (await readdir(vol)).sort();
    expect(names).not.toContain(first.generation);
    expect(names).toContain(second.generation);
    expect(names).toContain(third.generation);
    expect(names).not.toContain('old');
    expect(third.removedGenerations).toEqual([first.generation]);
    expect(await readFile(path.join(vol, 'a/x'), 'utf8')).toBe('4');
  });

  it('refuses to replace a top-level name it did not create', async () => {
    const vol = await tempDir();
    await writeFile(path.join(vol, 'keycloak-data'), 'operator file');
    await expect(publishVolume(vol, await stage(await tempDir(), { 'keycloak-data/a': '1' }))).rejects.toThrowError(PublishError);
    expect(await readFile(path.join(vol, 'keycloak-data'), 'utf8')).toBe('operator file');
    expect(await readdir(vol)).toEqual(['keycloak-data']);
  });

  it('refuses a ..data link that points outside its own generations', async () => {
    const vol = await tempDir();
    await symlink('/etc', path.join(vol, '..data'));
    await expect(readVolumeState(vol)).rejects.toThrowError(/not a zeta-provision generation/);
  });

  it('leaves foreign files beside the links alone', async () => {
    const vol = await tempDir();
    await writeFile(path.join(vol, 'README'), 'mine');
    await publishVolume(vol, await stage(await tempDir(), { 'a/x': '1' }));
    await publishVolume(vol, await stage(await tempDir(), { 'b/x': '1' }));
    expect(await readFile(path.join(vol, 'README'), 'utf8')).toBe('mine');
  });
});
