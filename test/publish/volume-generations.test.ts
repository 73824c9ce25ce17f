/** Reuse, no-op, modes, path validation, GC, recovery, rollback and disk-full of the volume publisher. */
import { execa } from 'execa';
import { lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PublishError, UsageError } from '../../src/errors.js';
import { publishVolume, rollbackVolume, volumeStatus, type VolumeFsOps } from '../../src/publish/volume/index.js';
import { useTempDirs } from '../support/tmp.js';
import { generationsIn, readConsumerTree, stageFiles } from '../support/volume.js';

const tempDir = useTempDirs();

describe('volume generations', () => {
  it('hardlinks unchanged files, copies only changed ones, and is a no-op for identical content', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const big = 'x'.repeat(100_000);
    const first = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/big': big, 'a/small': '1' }));
    expect(first).toMatchObject({ changed: true, copied: 2, linked: 0, bytesWritten: 100_001 });
    const second = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/big': big, 'a/small': '2' }));
    expect(second).toMatchObject({ changed: true, copied: 1, linked: 1, bytesWritten: 1, previous: first.generation });
    const ino = async (g: string): Promise<number> => (await stat(path.join(vol, g, 'a/big'))).ino;
    expect(await ino(second.generation)).toBe(await ino(first.generation));

    const before = (await readdir(vol)).sort();
    const statusBefore = await readFile(path.join(vol, '..zeta-provision.json'), 'utf8');
    const third = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/big': big, 'a/small': '2' }));
    expect(third).toMatchObject({ changed: false, generation: second.generation, bytesWritten: 0, recordWritten: false });
    expect((await readdir(vol)).sort()).toEqual(before);
    expect(await readFile(path.join(vol, '..zeta-provision.json'), 'utf8')).toBe(statusBefore);
  });

  it('falls back to copying when hardlinks fail with EXDEV', async () => {
    const vol = path.join(await tempDir(), 'vol');
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '1' }));
    const exdev: VolumeFsOps['link'] = () => {
      throw Object.assign(new Error('EXDEV: cross-device link'), { code: 'EXDEV' });
    };
    const r = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '2' }), { fs: { link: exdev } });
    expect(r).toMatchObject({ linked: 0, copied: 2 });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'same', 'a/y': '2' });
  });

  it('sets configured modes on files and directories, and never chmods a shared inode', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/b/x': 'x' }), { fileMode: 0o640, dirMode: 0o750 });
    expect((await stat(path.join(vol, g1.generation, 'a/b/x'))).mode & 0o777).toBe(0o640);
    expect((await stat(path.join(vol, g1.generation, 'a/b'))).mode & 0o777).toBe(0o750);
    // Same bytes, other mode: must be a copy, or the live generation's file would change mode too.
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/b/x': 'x' }));
    expect(g2).toMatchObject({ changed: true, copied: 1, linked: 0 });
    expect((await stat(path.join(vol, g1.generation, 'a/b/x'))).mode & 0o777).toBe(0o640);
    expect((await stat(path.join(vol, g2.generation, 'a/b/x'))).mode & 0o777).toBe(0o644);
  });

  it.each([
    ['../escape'],
    ['a/../../etc/passwd'],
    ['/etc/passwd'],
    ['..data/x'],
    ['..2026_01_01_00_00_00.00000000/x'],
    ['a//b'],
    ['a/./b'],
    ['a\\b'],
    ['x'.repeat(256)],
    [`${'a/'.repeat(2100)}b`],
  ])('refuses the path %s before touching the volume', async (bad) => {
    const vol = path.join(await tempDir(), 'vol');
    const src = path.join(await tempDir(), 'f');
    await writeFile(src, 'x');
    await expect(publishVolume(vol, [{ path: bad, source: src, size: 1, sha256: '0' }])).rejects.toThrowError(PublishError);
    await expect(readdir(vol)).rejects.toThrow(/ENOENT/);
  });

  it('keeps N generations chosen by what ..data pointed to, even within one second', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const fixed = () => new Date('2026-01-01T00:00:00Z');
    const gens: string[] = [];
    for (let i = 0; i < 5; i++)
      gens.push((await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': String(i) }), { now: fixed, keepGenerations: 3 })).generation);
    expect(await generationsIn(vol)).toEqual(gens.slice(2).sort());
    const status = await volumeStatus(vol);
    expect(status.generations.map((g) => g.name)).toEqual([gens[4], gens[3], gens[2]]);
    expect(status.previous).toBe(gens[3]);
  });

  it('recovery removes a stale ..data_tmp, temp files and unreferenced generations, never the current or previous', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }));
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }));
    await mkdir(path.join(vol, '..2020_01_01_00_00_00.deadbeef', 'a'), { recursive: true });
    await writeFile(path.join(vol, '..2020_01_01_00_00_00.deadbeef', 'a', 'x'), 'partial');
    await symlink('..2020_01_01_00_00_00.deadbeef', path.join(vol, '..data_tmp'));
    await writeFile(path.join(vol, '...zeta-provision.json.0badc0de.tmp'), '{');
    await writeFile(path.join(vol, 'README'), 'operator note');
    const r = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }));
    expect(r).toMatchObject({ changed: false, removedGenerations: ['..2020_01_01_00_00_00.deadbeef'] });
    expect((await readdir(vol)).sort()).toEqual(['..data', g1.generation, g2.generation, '..zeta-provision.json', 'README', 'a'].sort());
  });

  it('leaves foreign files alone but removes a stale top-level link of ours', async () => {
    const vol = path.join(await tempDir(), 'vol');
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1', 'b/y': '1' }));
    await symlink('/etc', path.join(vol, 'foreign-link'));
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }));
    expect(await readlink(path.join(vol, 'foreign-link'))).toBe('/etc');
    expect(await lstat(path.join(vol, 'b')).catch(() => undefined)).toBeUndefined();
    await symlink('/etc', path.join(vol, 'c'));
    await expect(publishVolume(vol, await stageFiles(await tempDir(), { 'c/passwd': 'x' }))).rejects.toThrowError(/not created by zeta-provision/);
    expect(await readFile('/etc/hostname', 'utf8').catch(() => 'n/a')).not.toBe('x');
  });

  it('rolls back atomically to the previous or a named generation and refuses unknown ones', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1', 'old/y': 'y' }));
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2', 'new/z': 'z' }));
    const r = await rollbackVolume(vol);
    expect(r).toEqual({ from: g2.generation, to: g1.generation, kept: [g1.generation, g2.generation] });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': '1', 'old/y': 'y' });
    const status = await volumeStatus(vol);
    expect(status).toMatchObject({ current: g1.generation, previous: g2.generation, rollback: { from: g2.generation, to: g1.generation } });
    await expect(rollbackVolume(vol, { to: '..2020_01_01_00_00_00.00000000' })).rejects.toThrowError(UsageError);
    await expect(rollbackVolume(vol, { to: '../etc' })).rejects.toThrowError(UsageError);
    await rollbackVolume(vol, { to: g2.generation });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': '2', 'new/z': 'z' });
    // The next publish keeps the generation it replaces and drops the other.
    const g3 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '3' }));
    expect(await generationsIn(vol)).toEqual([g2.generation, g3.generation].sort());
  });
});

describe('disk full', () => {
  it('ENOSPC on a small tmpfs exits as PublishError and leaves the current generation readable', async () => {
    const mnt = await tempDir();
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false });
    const fullDisk: Partial<VolumeFsOps> | undefined =
      mounted.exitCode === 0
        ? undefined
        : {
            // No mount permission here: inject the error the kernel would return.
            copyFile: async () => {
              throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
            },
          };
    try {
      const vol = path.join(mnt, 'vol');
      const small = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'small', 'a/y': 'y' }));
      const err = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': Buffer.alloc(2 * 1024 * 1024, 1), 'a/y': 'y' }), { fs: fullDisk }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PublishError);
      expect((err as PublishError).exitCode).toBe(5);
      expect((err as PublishError).hint).toMatch(/volume is full/);
      expect(await readlink(path.join(vol, '..data'))).toBe(small.generation);
      expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'small', 'a/y': 'y' });
      // The half-written generation was removed at once, so the space is free again.
      expect(await generationsIn(vol)).toEqual([small.generation]);
    } finally {
      if (mounted.exitCode === 0) await execa('umount', [mnt]);
    }
  });
});
