/**
 * The volume settings of the config file (`volume.fileMode`, `dirMode`, `group`, `keep`) through the
 * real CLI: they reach the published generation, a change of them republishes, and bad values are
 * refused with exit 2 before anything is written.
 */
import { cp, mkdir, readFile, readdir, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, logText } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';
import { generationsIn, runCliEnv } from '../support/volume.js';

const tempDir = useTempDirs();

async function example(volumeYaml: string): Promise<{
  run: (extra?: string[], env?: Record<string, string>) => ReturnType<typeof runCliEnv>;
  rollback: () => ReturnType<typeof runCliEnv>;
  volume: string;
  setVolume: (yaml: string) => Promise<void>;
}> {
  const root = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(root, 'example'), { recursive: true });
  const configFile = path.join(root, 'example', 'zeta-provision.yaml');
  const original = await readFile(configFile, 'utf8');
  const setVolume = (yaml: string) =>
    writeFile(configFile, original.replace('volume:\n  files: ["keycloak-data/**"]', `volume:\n  files: ["keycloak-data/**"]\n${yaml}`));
  await setVolume(volumeYaml);
  const volume = path.join(root, 'volume');
  return {
    volume,
    setVolume,
    run: (extra = [], env = {}) => runCliEnv(['run', '--config', configFile, '--volume', volume, '--kube-out', path.join(root, 'manifests'), ...extra], env),
    // Every target the payload went to moves back together, so rollback takes the run's targets.
    rollback: () => runCliEnv(['rollback', '--config', configFile, '--volume', volume, '--kube-out', path.join(root, 'manifests')]),
  };
}

/** Mode bits of every entry of the current generation's payload, by type. */
async function modes(volume: string): Promise<{ files: Set<number>; dirs: Set<number>; gids: Set<number> }> {
  const gen = path.join(volume, await readlink(path.join(volume, '..data')));
  const out = { files: new Set<number>(), dirs: new Set<number>(), gids: new Set<number>() };
  for (const rel of await readdir(gen, { recursive: true })) {
    if (rel.startsWith('..')) continue;
    const st = await stat(path.join(gen, rel));
    (st.isDirectory() ? out.dirs : out.files).add(st.mode & 0o7777);
    out.gids.add(st.gid);
  }
  return out;
}

describe('volume settings from the config file', () => {
  it('applies modes, group and kept generations, and a changed setting republishes', async () => {
    const ex = await example('  fileMode: "0640"\n  dirMode: "0750"\n  group: 4242\n  keep: 3\n');
    const first = await ex.run();
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(await modes(ex.volume)).toEqual({ files: new Set([0o640]), dirs: new Set([0o750]), gids: new Set([4242]) });

    // Same payload, other mode: the config hash changes, so this is not "up to date" and a new
    // generation with the new mode is written.
    await ex.setVolume('  fileMode: "0644"\n  dirMode: "0755"\n  group: 4242\n  keep: 3\n');
    const second = await ex.run();
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.stdout).not.toMatch(/up to date/);
    expect(await modes(ex.volume)).toEqual({ files: new Set([0o644]), dirs: new Set([0o755]), gids: new Set([4242]) });
    expect((await ex.run(['--force'])).exitCode).toBe(0);
    await ex.setVolume('  fileMode: "0640"\n  group: 4242\n  keep: 3\n');
    expect((await ex.run()).exitCode).toBe(0);
    // keep: 3 holds three generations where the default would hold two.
    expect(await generationsIn(ex.volume)).toHaveLength(3);
    const status = JSON.parse(await readFile(path.join(ex.volume, '..zeta-provision.json'), 'utf8'));
    expect(status.kept).toHaveLength(3);
    // A rollback must not drop the third kept generation.
    const rolled = await ex.rollback();
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(await generationsIn(ex.volume)).toHaveLength(3);
  });

  it("volume.lockStale decides when another host's unrefreshed lock is taken over", async () => {
    const ex = await example('  lockTimeout: 0\n');
    await mkdir(ex.volume);
    const lockFile = path.join(ex.volume, '..zeta-provision.lock');
    await writeFile(lockFile, JSON.stringify({ pid: 1, host: 'other-node', time: '2026-01-01T00:00:00Z', token: 'x' }));
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(lockFile, aMinuteAgo, aMinuteAgo);
    // Default stale age (10 minutes): a minute-old lock of another node is respected.
    const blocked = await ex.run();
    expect(blocked.exitCode).toBe(5);
    expect(blocked.stdout).toMatch(/locked by pid 1 on host other-node/);
    await ex.setVolume('  lockStale: 30\n  lockTimeout: 0\n');
    const taken = await ex.run();
    expect(taken.exitCode, taken.stdout).toBe(0);
    await expect(readFile(lockFile)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['  lockStale: 5\n', /volume\.lockStale: expected an integer from 10 to 86400/],
    ['  fileMode: 0640\n', /volume\.fileMode: expected an octal mode as a quoted string/],
    ['  fileMode: "0240"\n', /volume\.fileMode: 0240 must give the owner read permission/],
    ['  dirMode: "0644"\n', /volume\.dirMode: 0644 must give the owner full permission/],
    ['  fileMode: "4755"\n', /volume\.fileMode: expected an octal mode/],
    ['  group: -1\n', /volume\.group: expected an integer from 0/],
    ['  keep: 0\n', /volume\.keep: expected an integer from 1 to 100/],
  ])('refuses %j with exit 2 and writes nothing', async (yaml, message) => {
    const ex = await example(yaml);
    const r = await ex.run();
    expect(r.exitCode).toBe(2);
    expect(r.stdout + logText(r.stderr)).toMatch(message);
    await expect(readdir(ex.volume)).rejects.toThrow(/ENOENT/);
  });
});
