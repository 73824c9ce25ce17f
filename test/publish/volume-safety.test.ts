/**
 * What a hostile or damaged volume cannot make the publisher do: follow a symlink it did not create,
 * hardlink a foreign inode on the manifest's word, reuse a file changed in place, or remove anything
 * but its own leftovers. Plus the manifest's incremental cost and the status record's contents.
 */
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { publishVolume, rollbackVolume, validateVolumePaths, volumeStatus } from '../../src/publish/volume/index.js';
import { MANIFEST_DIR, bucketOf } from '../../src/publish/volume/manifest.js';
import { newRecord } from '../../src/publish/record.js';
import { useTempDirs } from '../support/tmp.js';
import { generationsIn, readConsumerTree, stageFiles } from '../support/volume.js';

const tempDir = useTempDirs();

/** The manifest bucket file of `rel` in a generation, and its parsed content. */
async function bucketWith(
  genDir: string,
  rel: string,
): Promise<{ file: string; json: { version: number; files: Record<string, [string, number, number, number]> } }> {
  const names = await readdir(path.join(genDir, MANIFEST_DIR));
  const count = Number(names[0]!.split('-')[0]);
  const file = path.join(genDir, MANIFEST_DIR, `${count}-${bucketOf(rel, count)}.json`);
  return { file, json: JSON.parse(await readFile(file, 'utf8')) };
}

/** A foreign directory with a file of the given content, as an attacker's target. */
async function foreign(content: string): Promise<{ dir: string; file: string }> {
  const dir = await tempDir();
  const file = path.join(dir, 'x');
  await writeFile(file, content);
  return { dir, file };
}

describe('symlinks the publisher did not create', () => {
  it('a file of the current generation replaced by a symlink is neither followed nor linked', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'payload', 'a/y': '1' }));
    const target = await foreign('payload');
    const planted = path.join(vol, g1.generation, 'a', 'x');
    await rm(planted);
    await symlink(target.file, planted);
    // Even a manifest that names the foreign inode does not help: link(2) links the symlink itself.
    const { file, json } = await bucketWith(path.join(vol, g1.generation), 'a/x');
    const fst = await stat(target.file);
    json.files['a/x'] = [json.files['a/x']![0], fst.size, fst.ino, fst.mtimeMs];
    await writeFile(file, JSON.stringify(json) + '\n');

    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'payload', 'a/y': '2' }));
    const published = await lstat(path.join(vol, g2.generation, 'a', 'x'));
    expect(published.isFile()).toBe(true);
    expect(published.ino).not.toBe(fst.ino);
    expect((await stat(target.file)).nlink).toBe(1);
    expect(g2).toMatchObject({ copied: 2, linked: 0 });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'payload', 'a/y': '2' });
  });

  it('a directory of the current generation replaced by a symlink is not traversed, even with a forged manifest', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'b/y': '1' }));
    const target = await foreign('same');
    const genDir = path.join(vol, g1.generation);
    const { file, json } = await bucketWith(genDir, 'a/x');
    await rm(path.join(genDir, 'a'), { recursive: true });
    await symlink(target.dir, path.join(genDir, 'a'));
    // The forged entry matches the foreign file exactly, so only the directory check stops the link.
    const fst = await stat(target.file);
    json.files['a/x'] = [json.files['a/x']![0], fst.size, fst.ino, fst.mtimeMs];
    await writeFile(file, JSON.stringify(json) + '\n');

    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'b/y': '2' }));
    expect((await lstat(path.join(vol, g2.generation, 'a', 'x'))).ino).not.toBe(fst.ino);
    expect((await stat(target.file)).nlink).toBe(1);
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'same', 'b/y': '2' });
  });

  it('a current generation that is itself a symlink is refused and its target left alone', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }));
    const target = await foreign('keep me');
    await rename(path.join(vol, g1.generation), path.join(await tempDir(), 'moved'));
    await symlink(target.dir, path.join(vol, g1.generation));
    await expect(publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }))).rejects.toThrowError(/is not a directory; refusing/);
    // Refused: the symlinked generation does not count as a kept one, so there is nothing to restore.
    await expect(rollbackVolume(vol)).rejects.toThrowError(/keeps no previous generation to roll back to/);
    expect(await readdir(target.dir)).toEqual(['x']);
    expect(await readlink(path.join(vol, g1.generation))).toBe(target.dir);
  });

  it('recovery removes a leftover generation without following the links inside it', async () => {
    const vol = path.join(await tempDir(), 'vol');
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }));
    const target = await foreign('keep me');
    const leftover = path.join(vol, '..2020_01_01_00_00_00.deadbeef');
    await mkdir(path.join(leftover, 'sub'), { recursive: true });
    await symlink(target.dir, path.join(leftover, 'dirlink'));
    await symlink(target.file, path.join(leftover, 'sub', 'filelink'));
    // A non-directory with a generation's name is not ours either way: it is left alone.
    const lookalike = path.join(vol, '..2020_01_01_00_00_01.cafebabe');
    await symlink(target.dir, lookalike);
    const r = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }));
    expect(r.removedGenerations).toEqual(['..2020_01_01_00_00_00.deadbeef']);
    expect(await lstat(leftover).catch(() => undefined)).toBeUndefined();
    expect(await readFile(target.file, 'utf8')).toBe('keep me');
    expect(await readlink(lookalike)).toBe(target.dir);
    expect(await generationsIn(vol)).toHaveLength(3);
  });
});

describe('reuse is checked, not assumed', () => {
  it('a file changed in place in the current generation is copied fresh, not carried forward', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'original', 'a/y': '1' }));
    await writeFile(path.join(vol, g1.generation, 'a', 'x'), 'tampered');
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'original', 'a/y': '2' }));
    expect(g2).toMatchObject({ copied: 2, linked: 0 });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'original', 'a/y': '2' });
  });

  it('a tampered-with generation is not taken for identical content', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const files = { 'a/x': 'original', 'a/y': '1' };
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), files));
    await writeFile(path.join(vol, g1.generation, 'a', 'x'), 'tampered');
    await writeFile(path.join(vol, g1.generation, 'a', 'planted'), 'extra');
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), files));
    expect(g2.changed).toBe(true);
    expect(await readConsumerTree(vol)).toEqual(files);
  });

  it('a volume copied with cp -a (new inodes) is still reused, by hashing what was linked', async () => {
    const from = path.join(await tempDir(), 'vol');
    await publishVolume(from, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '1' }));
    const vol = path.join(await tempDir(), 'copy');
    await execa('cp', ['-a', from, vol]);
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '2' }));
    expect(g2).toMatchObject({ linked: 1, copied: 1 });
    // The new generation's manifest records the new inodes, so the next republish needs no hashing.
    const { json } = await bucketWith(path.join(vol, g2.generation), 'a/x');
    expect(json.files['a/x']![2]).toBe((await stat(path.join(vol, g2.generation, 'a', 'x'))).ino);
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'same', 'a/y': '2' });
  });

  it('a missing or corrupt manifest costs re-hashing, never a wrong reuse', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '1' }));
    const { file } = await bucketWith(path.join(vol, g1.generation), 'a/x');
    await writeFile(file, '{"version":2,"files":{"a/x":["not a hash",1,2,3]}}');
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '2' }));
    expect(g2).toMatchObject({ linked: 1, copied: 1 });
    await rm(path.join(vol, g2.generation, MANIFEST_DIR), { recursive: true });
    const g3 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': 'same', 'a/y': '3' }));
    expect(g3).toMatchObject({ linked: 1, copied: 1 });
    expect(await readConsumerTree(vol)).toEqual({ 'a/x': 'same', 'a/y': '3' });
  });

  it('a republish rewrites only the manifest bucket of the changed file and hardlinks the others', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const tree: Record<string, string> = {};
    for (let i = 0; i < 600; i++) tree[`d${i % 7}/f${i}`] = `content ${i}`;
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), tree));
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { ...tree, 'd3/f10': 'changed' }));
    expect(g2).toMatchObject({ linked: 599, copied: 1, bytesWritten: 7 });
    const buckets = (await readdir(path.join(vol, g2.generation, MANIFEST_DIR))).sort();
    expect(buckets).toHaveLength(16);
    const fresh: string[] = [];
    for (const b of buckets) {
      const [a, c] = await Promise.all([stat(path.join(vol, g1.generation, MANIFEST_DIR, b)), stat(path.join(vol, g2.generation, MANIFEST_DIR, b))]);
      if (a.ino !== c.ino) fresh.push(b);
    }
    expect(fresh).toEqual([`16-${bucketOf('d3/f10', 16)}.json`]);
  });
});

describe('paths', () => {
  it.each([
    [['a\0b'], /backslashes or NUL/],
    [['a', 'a/b'], /"a" is a file/],
    [['x/y', 'x/y'], /listed twice/],
    [['..zeta-manifest/1-0.json'], /reserved/],
    [['a/'], /empty/],
  ])('refuses %j', (paths, message) => {
    expect(() => validateVolumePaths(paths)).toThrowError(message);
  });

  it('allows names that only contain dots inside a segment', () => {
    expect(() => validateVolumePaths(['a/..b', 'a/b..', 'c.d/e'])).not.toThrow();
  });
});

describe('status record', () => {
  it('records the applied record of each kept generation, and rollback marks the restored one', async () => {
    const vol = path.join(await tempDir(), 'vol');
    const applied = (n: number) =>
      newRecord({
        source: `oci:/img:${n}`,
        digest: `sha256:${String(n).repeat(64)}`,
        revision: `r${n}`,
        configHash: `c${n}`,
        freshness: {},
        appliedAt: `2026-01-0${n}T10:00:00.000Z`,
      });
    const at = (s: string) => () => new Date(`2026-01-0${s}T10:00:00Z`);
    const g1 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1', b: '22' }), { record: applied(1), now: at('1') });
    const g2 = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '333' }), { record: applied(2), now: at('2') });
    const record = JSON.parse(await readFile(path.join(vol, '..zeta-provision.json'), 'utf8'));
    expect(record).toEqual({
      version: 2,
      generation: g2.generation,
      kept: [g2.generation, g1.generation],
      generations: {
        [g1.generation]: { ...applied(1), targets: { volume: { generation: g1.generation, files: 2, bytes: 3 } } },
        [g2.generation]: { ...applied(2), targets: { volume: { generation: g2.generation, files: 1, bytes: 3 } } },
      },
    });
    expect((await stat(path.join(vol, '..zeta-provision.json'))).mode & 0o777).toBe(0o644);

    await rollbackVolume(vol, { now: at('3') });
    const rolled = JSON.parse(await readFile(path.join(vol, '..zeta-provision.json'), 'utf8'));
    expect(rolled).toMatchObject({
      generation: g1.generation,
      kept: [g1.generation, g2.generation],
      rollback: { from: g2.generation, to: g1.generation, at: '2026-01-03T10:00:00.000Z' },
    });
    // The config it rolled away from is kept too: the rollback holds only against that payload and config.
    expect(rolled.generations[g1.generation].rollback).toEqual({
      fromDigest: applied(2).digest,
      fromConfigHash: applied(2).configHash,
      at: '2026-01-03T10:00:00.000Z',
    });
    const status = await volumeStatus(vol);
    expect(status.generations.map((g) => [g.name, g.current, g.digest, g.files])).toEqual([
      [g1.generation, true, applied(1).digest, 2],
      [g2.generation, false, applied(2).digest, 1],
    ]);
    expect((await readdir(vol)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
