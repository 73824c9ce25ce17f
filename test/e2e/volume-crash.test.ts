/**
 * Crash injection through the real CLI: for every crash point (test/support/faults/points.ts) the run
 * is SIGKILLed at that syscall by a preload — no test hook in src/. Afterwards a consumer reading through the top-level links must see exactly the
 * old or the new tree — old before the ..data rename, new from it on — and the next normal run must
 * recover and finish with exactly two generations: the old current (rollback target) and the new one.
 */
import { cp, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS, CRASH_POINT_NAMES, type CrashPoint } from '../support/faults/points.js';
import { REPO_ROOT } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';
import { generationsIn, readConsumerTree, runCliEnv } from '../support/volume.js';

const tempDir = useTempDirs();
let base = '';
let baseCurrent = '';
let oldTree: Record<string, string> = {};
let newTree: Record<string, string> = {};

/** The second publish reuses one file, drops a subtree and the top-level `opa`, adds top-level `nginx`. */
const CONFIGS: Record<string, string> = {
  'zp0.yaml': '["keycloak-data/**"]',
  'zp1.yaml': '["keycloak-data/**", "opa/**"]',
  'zp2.yaml': '["keycloak-data/realm-zeta.json", "nginx/**"]',
};

function args(root: string, config: string): string[] {
  return ['run', '--config', path.join(root, 'example', config), '--volume', path.join(root, 'volume'), '--kube-out', path.join(root, 'manifests')];
}

async function copyOf(root: string): Promise<string> {
  const dir = await tempDir();
  // cp -a keeps the symlinks and the hardlinks between generations exactly as they are.
  await execa('cp', ['-a', `${root}/.`, dir]);
  return dir;
}

async function ok(root: string, config: string): Promise<void> {
  const r = await runCliEnv(args(root, config));
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
}

/** Leftovers only recovery removes: after a finished run there must be none. */
async function leftovers(volume: string): Promise<string[]> {
  return (await readdir(volume)).filter((n) => n === '..data_tmp' || n.endsWith('.tmp') || n.startsWith('..zeta-provision.lock'));
}

// The setup crash leaves the garbage the recovery step must remove.
const SETUP: Partial<Record<CrashPoint, CrashPoint>> = {
  'recovery-data-tmp-removed': 'data-tmp-created',
  'recovery-temp-removed': 'status-tmp-written',
  'recovery-generation-removed': 'manifest-written',
};
const SWAP_INDEX = CRASH_POINT_NAMES.indexOf('data-swapped');
const crashAt = (p: CrashPoint): Record<string, string> => ({ ZP_FAULT_CRASH: JSON.stringify(CRASH_POINTS[p]) });

// The base outlives single tests, so it is not one of the per-test temp dirs.
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'zp-crash-base-'));
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(base, 'example'), { recursive: true });
  const original = await readFile(path.join(base, 'example', 'zeta-provision.yaml'), 'utf8');
  for (const [name, files] of Object.entries(CONFIGS)) {
    await writeFile(path.join(base, 'example', name), original.replace('files: ["keycloak-data/**"]', `files: ${files}`));
  }
  await ok(base, 'zp0.yaml');
  await ok(base, 'zp1.yaml');
  expect(await generationsIn(path.join(base, 'volume'))).toHaveLength(2);
  baseCurrent = await readlink(path.join(base, 'volume', '..data'));
  oldTree = await readConsumerTree(path.join(base, 'volume'));
  const reference = await copyOf(base);
  await ok(reference, 'zp2.yaml');
  newTree = await readConsumerTree(path.join(reference, 'volume'));
  expect(Object.keys(oldTree)).toContain('opa/policy.rego');
  expect(Object.keys(newTree)).toContain('nginx/nginx.conf');
  expect(Object.keys(newTree)).not.toContain('opa/policy.rego');
}, 60_000);

describe('volume publish killed at every crash point', () => {
  it('has at least 20 distinct crash points', () => {
    expect(CRASH_POINT_NAMES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CRASH_POINT_NAMES.map((p) => [p]))('SIGKILL at %s: readers see old or new, next run recovers', async (point: CrashPoint) => {
    const root = await copyOf(base);
    // Each case its own TMPDIR, so a dead run's staging directory can be seen to be tidied.
    const tmp = await tempDir();
    const env = { TMPDIR: tmp };
    const volume = path.join(root, 'volume');
    const setup = SETUP[point];
    if (setup) {
      const s = await runCliEnv(args(root, 'zp2.yaml'), { ...env, ...crashAt(setup) });
      expect(s.signal).toBe('SIGKILL');
    }
    const crashed = await runCliEnv(args(root, 'zp2.yaml'), { ...env, ...crashAt(point) });
    expect(crashed.signal, `${point} was never reached: ${crashed.stdout}`).toBe('SIGKILL');

    const seen = await readConsumerTree(volume);
    // A recovery point sees whatever the setup crash left; recovery itself never changes what is read.
    const expectNew = CRASH_POINT_NAMES.indexOf(setup ?? point) >= SWAP_INDEX;
    expect(seen).toEqual(expectNew ? newTree : oldTree);

    const rerun = await runCliEnv(args(root, 'zp2.yaml'), env);
    expect(rerun.exitCode, rerun.stdout + rerun.stderr).toBe(0);
    expect(await readdir(tmp)).toEqual([]);
    expect(await readConsumerTree(volume)).toEqual(newTree);
    const current = await readlink(path.join(volume, '..data'));
    expect(await generationsIn(volume)).toEqual([baseCurrent, current].sort());
    expect(await leftovers(volume)).toEqual([]);
    const status = JSON.parse(await readFile(path.join(volume, '..zeta-provision.json'), 'utf8'));
    expect(status.generation).toBe(current);
    expect(status.kept).toEqual([current, baseCurrent]);
    // And the run after that is a pure no-op.
    const again = await runCliEnv(args(root, 'zp2.yaml'), env);
    expect(again.stdout).toMatch(/up to date/);
  });
});

describe('an up-to-date run tidies what killed runs left', () => {
  it("an extra generation, a dead pid's lock, a record temp file and a dead run's staging dir go; nothing else is written", async () => {
    const root = await copyOf(base);
    const volume = path.join(root, 'volume');
    const tmp = await tempDir();
    // Killed right after the swap of a third publish: three generations and its lock left behind.
    const crashed = await runCliEnv(args(root, 'zp2.yaml'), { TMPDIR: tmp, ...crashAt('status-written') });
    expect(crashed.signal).toBe('SIGKILL');
    const again = await runCliEnv(args(root, 'zp2.yaml'), { TMPDIR: tmp });
    expect(again.exitCode, again.stdout).toBe(0);
    const current = await readlink(path.join(volume, '..data'));
    // Now up to date; plant what another killed run would leave.
    const orphan = '..2020_01_01_00_00_00.0badc0de';
    await execa('cp', ['-a', path.join(volume, current), path.join(volume, orphan)]);
    await writeFile(
      path.join(volume, '..zeta-provision.lock'),
      JSON.stringify({ pid: 999_999, host: os.hostname(), time: '2026-01-01T00:00:00Z', token: 'dead' }),
    );
    await writeFile(path.join(volume, '...zeta-provision.json.0123abcd.tmp'), 'half');
    await execa('mkdir', [path.join(tmp, 'zeta-provision-dead01')]);
    await writeFile(path.join(tmp, 'zeta-provision-dead01', '.zeta-provision-owner'), JSON.stringify({ pid: 999_999, host: os.hostname(), token: 'dead' }));
    const record = await readFile(path.join(volume, '..zeta-provision.json'), 'utf8');
    const tidy = await runCliEnv([...args(root, 'zp2.yaml'), '--output', 'json'], { TMPDIR: tmp });
    const report = JSON.parse(tidy.stdout);
    expect(report.outcome).toBe('up-to-date');
    expect(report.published.tidied).toEqual(expect.arrayContaining([`volume: ${orphan}`, 'staging: zeta-provision-dead01']));
    expect(await generationsIn(volume)).toEqual([baseCurrent, current].sort());
    expect(await leftovers(volume)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    // The record itself was not rewritten.
    expect(await readFile(path.join(volume, '..zeta-provision.json'), 'utf8')).toBe(record);
  });
});
