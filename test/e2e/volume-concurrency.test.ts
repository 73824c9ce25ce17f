/**
 * Readers and writers at the same time: a reader process racing 100 publishes, the volume lock between
 * two CLI runs, and the CLI side of disk-full, status and rollback.
 */
import { cp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { PublishError } from '../../src/errors.js';
import { acquireVolumeLock, publishVolume } from '../../src/publish/volume/index.js';
import { REPO_ROOT } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';
import { generationsIn, readConsumerTree, runCliEnv, stageFiles } from '../support/volume.js';

const tempDir = useTempDirs();

/** Generation m: `a` always, `odd` or `even` by parity; file k changes every k+1 generations (so most are reused). */
function tree(m: number): Record<string, string> {
  const out: Record<string, string> = {};
  const dirs: [string, number][] = [
    ['a', 10],
    [m % 2 ? 'odd' : 'even', 3],
  ];
  for (const [name, n] of dirs) {
    out[`${name}/MARKER`] = String(m);
    for (let k = 0; k < n; k++) out[`${name}/sub/f${k}`] = `${name}/f${k}@${m - (m % (k + 1))}`;
  }
  return out;
}

const READER = `
import { readdir, readFile, realpath, lstat, access } from 'node:fs/promises';
import path from 'node:path';
const [vol, stop] = process.argv.slice(2);
${tree.toString()}
const errors = []; const seen = new Set(); let iterations = 0; let vanished = 0;
for (;;) {
  if (await access(stop).then(() => true, () => false)) break;
  for (const name of await readdir(vol)) {
    if (name.startsWith('..')) continue;
    let real; try { real = await realpath(path.join(vol, name)); } catch { continue; }
    const got = {};
    try {
      for (const rel of await readdir(real, { recursive: true })) {
        const abs = path.join(real, rel);
        if ((await lstat(abs)).isFile()) got[name + '/' + rel] = await readFile(abs, 'utf8');
      }
    } catch (err) {
      // A reader that pinned a generation and fell two publishes behind sees it garbage-collected
      // (the record stops keeping it before removal starts): not a mix. A file missing from a
      // generation still kept is an error.
      if (err.code !== 'ENOENT') throw err;
      const kept = JSON.parse(await readFile(path.join(vol, '..zeta-provision.json'), 'utf8')).kept;
      if (kept.includes(path.basename(path.dirname(real)))) errors.push({ name, missing: err.path });
      else vanished++;
      continue;
    }
    const m = Number(got[name + '/MARKER']);
    seen.add(m);
    const want = Object.fromEntries(Object.entries(tree(m)).filter(([p]) => p.startsWith(name + '/')));
    if (JSON.stringify(got, Object.keys(got).sort()) !== JSON.stringify(want, Object.keys(want).sort())) errors.push({ name, m, got });
  }
  iterations++;
}
process.stdout.write(JSON.stringify({ iterations, vanished, generations: seen.size, errors: errors.slice(0, 3), errorCount: errors.length }));
`;

describe('concurrent reader', () => {
  it('a reader resolving through the top-level links during 100 publishes never sees a mix', async () => {
    const dir = await tempDir();
    const vol = path.join(dir, 'vol');
    const stop = path.join(dir, 'stop');
    await publishVolume(vol, await stageFiles(path.join(dir, 'stage0'), tree(0)));
    await writeFile(path.join(dir, 'reader.mjs'), READER);
    const reader = execa(process.execPath, [path.join(dir, 'reader.mjs'), vol, stop]);
    let linked = 0;
    for (let m = 1; m <= 100; m++) {
      const r = await publishVolume(vol, await stageFiles(path.join(dir, `stage${m}`), tree(m)));
      linked += r.linked;
      await rm(path.join(dir, `stage${m}`), { recursive: true });
    }
    await writeFile(stop, '');
    const result = JSON.parse((await reader).stdout) as { iterations: number; generations: number; errorCount: number; errors: unknown[] };
    expect(result.errors).toEqual([]);
    expect(result.errorCount).toBe(0);
    expect(result.iterations).toBeGreaterThan(10);
    expect(result.generations).toBeGreaterThan(5);
    expect(linked).toBeGreaterThan(100);
    expect(await readConsumerTree(vol)).toEqual(tree(100));
    expect(await generationsIn(vol)).toHaveLength(2);
  });
});

describe('volume lock', () => {
  it('a second writer waits a bounded time, then fails naming the holder', async () => {
    const vol = await tempDir();
    const lock = await acquireVolumeLock(vol);
    try {
      const started = Date.now();
      const err = await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }), { lock: { timeoutMs: 300 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PublishError);
      expect((err as Error).message).toContain(`locked by pid ${process.pid} on host ${os.hostname()}`);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await lock.release();
    }
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }));
  });

  it('takes over a lock whose pid is dead on this host, or that is older than the stale age', async () => {
    const vol = await tempDir();
    const dead = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const lockPath = path.join(vol, '..zeta-provision.lock');
    await writeFile(lockPath, JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), time: '2020-01-01T00:00:00Z', token: 'x' }));
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '1' }), { lock: { timeoutMs: 2000 } });
    await writeFile(lockPath, JSON.stringify({ pid: 1, host: 'some-other-node', time: '2020-01-01T00:00:00Z', token: 'y' }));
    await expect(publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }), { lock: { timeoutMs: 200 } })).rejects.toThrowError(/some-other-node/);
    await new Promise((r) => setTimeout(r, 150));
    await publishVolume(vol, await stageFiles(await tempDir(), { 'a/x': '2' }), { lock: { timeoutMs: 2000, staleMs: 100 } });
    await expect(readFile(lockPath)).rejects.toThrow(/ENOENT/);
  });
});

async function example(): Promise<{ root: string; args: (config?: string) => string[]; volume: string }> {
  const root = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(root, 'example'), { recursive: true });
  const original = await readFile(path.join(root, 'example', 'zeta-provision.yaml'), 'utf8');
  await writeFile(path.join(root, 'example', 'zp2.yaml'), original.replace('files: ["keycloak-data/**"]', 'files: ["keycloak-data/**", "nginx/**"]'));
  // The same, without waiting for another run's lock.
  await writeFile(
    path.join(root, 'example', 'zp2-nowait.yaml'),
    original.replace('files: ["keycloak-data/**"]', 'files: ["keycloak-data/**", "nginx/**"]\n  lockTimeout: 0'),
  );
  const volume = path.join(root, 'volume');
  return {
    root,
    volume,
    args: (config = 'zeta-provision.yaml') => [
      'run',
      '--config',
      path.join(root, 'example', config),
      '--volume',
      volume,
      '--kube-out',
      path.join(root, 'manifests'),
    ],
  };
}

describe('two CLI runs and the volume commands', () => {
  it('two runs at once: one publishes, the other exits 5 naming the holder; never both', async () => {
    const ex = await example();
    // Held for 3 s once the files are written, before the manifest (fault injection from outside, test/support/faults).
    const holder = runCliEnv(ex.args(), { ZP_FAULT_PAUSE: JSON.stringify({ op: 'writeFile', match: '/\\.\\.zeta-manifest/', ms: 3000 }) });
    await new Promise((r) => setTimeout(r, 1200));
    const loser = await runCliEnv(ex.args('zp2-nowait.yaml'));
    expect(loser.exitCode).toBe(5);
    expect(loser.stdout).toMatch(/volume .* is locked by pid \d+ on host .* since/);
    const winner = await holder;
    expect(winner.exitCode, winner.stdout).toBe(0);
    expect(await generationsIn(ex.volume)).toHaveLength(1);
    // Started together without a timeout override, the second simply waits for the first.
    const [a, b] = await Promise.all([runCliEnv([...ex.args('zp2.yaml'), '--force']), runCliEnv([...ex.args('zp2.yaml'), '--force'])]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    expect(await generationsIn(ex.volume)).toHaveLength(2);
    expect(Object.keys(await readConsumerTree(ex.volume))).toContain('nginx/nginx.conf');
  });

  it('a full disk during run exits 5 and leaves the current generation readable', async () => {
    const ex = await example();
    expect((await runCliEnv(ex.args())).exitCode).toBe(0);
    const before = await readConsumerTree(ex.volume);
    const current = await readlink(path.join(ex.volume, '..data'));
    const r = await runCliEnv(ex.args('zp2.yaml'), { ZP_FAULT_ERROR: JSON.stringify({ op: 'copyFile', match: '/\\.\\.\\d{4}_', code: 'ENOSPC' }) });
    expect(r.exitCode).toBe(5);
    expect(r.stdout).toMatch(/ENOSPC/);
    expect(r.stdout + r.stderr).toMatch(/the volume is full/);
    expect(await readlink(path.join(ex.volume, '..data'))).toBe(current);
    expect(await readConsumerTree(ex.volume)).toEqual(before);
    expect(await generationsIn(ex.volume)).toEqual([current]);
  });

  it('status and rollback through the CLI, with RESULT_DIR as the env twin', async () => {
    const ex = await example();
    expect((await runCliEnv(ex.args())).exitCode).toBe(0);
    const first = await readlink(path.join(ex.volume, '..data'));
    expect((await runCliEnv(ex.args('zp2.yaml'))).exitCode).toBe(0);
    const second = await readlink(path.join(ex.volume, '..data'));
    const status = await runCliEnv(['status', '--output', 'json'], { RESULT_DIR: ex.volume });
    expect(status.exitCode, status.stdout).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ current: second, previous: first, lastApplied: { revision: 'demo-1' } });
    const text = await runCliEnv(['status', '--volume', ex.volume]);
    expect(text.stdout).toContain(`current  ${second}`);
    expect(text.stdout).toContain(`previous ${first}`);

    // The payload also went to --kube-out: the volume alone is not rolled back (targets would disagree).
    const alone = await runCliEnv(['rollback'], { ZETA_PROVISION_VOLUME: ex.volume });
    expect(alone.exitCode, alone.stdout + alone.stderr).toBe(2);
    expect(alone.stderr).toContain('also published to kube-out');
    expect(await readlink(path.join(ex.volume, '..data'))).toBe(second);
    const rb = await runCliEnv(['rollback', ...ex.args('zp2.yaml').slice(1)], { ZETA_PROVISION_VOLUME: ex.volume });
    expect(rb.exitCode, rb.stdout + rb.stderr).toBe(0);
    expect(await readlink(path.join(ex.volume, '..data'))).toBe(first);
    expect(Object.keys(await readConsumerTree(ex.volume))).not.toContain('nginx/nginx.conf');
    // The rollback holds: the next run of the same payload and config is up to date.
    expect((await runCliEnv(ex.args('zp2.yaml'))).stdout).toMatch(/up to date/);
    const unknown = await runCliEnv(['rollback', '--volume', ex.volume, '--to', '..2020_01_01_00_00_00.00000000']);
    expect(unknown.exitCode).toBe(2);
    expect((await runCliEnv(['rollback'])).exitCode).toBe(2);
    expect((await runCliEnv(['status', '--help'])).stdout).toContain('Examples:');
    // The restored payload and config are what is applied now.
    expect((await runCliEnv(ex.args())).stdout).toMatch(/up to date/);
  });
});
