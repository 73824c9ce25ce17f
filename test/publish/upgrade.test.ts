/**
 * Upgrade path: a volume, a status ConfigMap and a --kube-out directory written by release 0.1.0
 * (fixtures/upgrade/v0.1.0, made by fixtures/make-upgrade-records.mjs) are read by this release, which
 * converges from them without a manual step — no re-apply of unchanged objects, no rollout — and
 * rewrites the records in the current format. A record of a newer format is refused, untouched.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { writeKubeconfig, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { useTempDirs } from '../support/tmp.js';
import { readConsumerTree } from '../support/volume.js';

const FIXTURE = path.join(REPO_ROOT, 'fixtures', 'upgrade', 'v0.1.0');
const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

type Obj = Record<string, any>;
const bare = (o: Obj, kind: string, apiVersion: string): Obj => ({
  ...o,
  apiVersion,
  kind,
  metadata: { name: o.metadata.name, labels: o.metadata.labels, annotations: o.metadata.annotations },
});

/** The cluster and the volume exactly as release 0.1.0 left them. */
async function restore() {
  const kube = JSON.parse(await readFile(path.join(FIXTURE, 'kube.json'), 'utf8')) as { namespace: string; configmaps: Obj[]; deployments: Obj[] };
  api = await startKubeApi({ rbac: 'allow-all', token: 'test-token', namespaces: [kube.namespace] });
  // Written by the release under our field manager, as it did (server-side apply).
  for (const c of kube.configmaps)
    api.store.apply(api.type('configmaps'), kube.namespace, c.metadata.name, bare(c, 'ConfigMap', 'v1'), { dryRun: false, fieldManager: 'zeta-provision' });
  for (const d of kube.deployments)
    api.store.create(api.type('deployments'), kube.namespace, bare(d, 'Deployment', 'apps/v1'), { dryRun: false, fieldManager: 'kubectl-client-side-apply' });
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  for (const f of ['first.yaml', 'second.yaml']) await cp(path.join(FIXTURE, f), path.join(dir, 'example', f));
  const volume = path.join(dir, 'volume');
  await execa('mkdir', ['-p', volume]);
  await execa('tar', ['-x', '-f', path.join(FIXTURE, 'volume.tar'), '-C', volume]);
  const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: kube.namespace });
  const args = [
    'run',
    '--config',
    path.join(dir, 'example', 'second.yaml'),
    '--volume',
    volume,
    '--kubeconfig',
    kubeconfig,
    '--namespace',
    kube.namespace,
    '--output',
    'json',
  ];
  const status = () => JSON.parse(api!.store.peek(api!.type('configmaps'), kube.namespace, 'zeta-provision-status')!.data['status.json']);
  const generationOf = (name: string) => api!.store.peek(api!.type('deployments'), kube.namespace, name)!.metadata.generation as number;
  return { dir, volume, args, kube, status, generationOf };
}

describe('records of release 0.1.0', () => {
  it('are read and rewritten; the objects and consumers are left alone; the run after is up to date with zero writes', async () => {
    const r0 = await restore();
    expect(r0.status().version).toBe(1);
    expect(JSON.parse(await readFile(path.join(r0.volume, '..zeta-provision.json'), 'utf8')).version).toBe(1);
    const tree = await readConsumerTree(r0.volume);
    const opaGeneration = r0.generationOf('opa');
    const cmVersions = r0.kube.configmaps
      .filter((c) => c.metadata.name !== 'zeta-provision-status')
      .map((c) => api!.store.peek(api!.type('configmaps'), r0.kube.namespace, c.metadata.name)!.metadata.resourceVersion);

    const first = await runCli(r0.args);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    // No object re-applied, no rollout: the release's records said what was live, and it still is.
    expect(writes(api!).filter((w) => w.name !== 'zeta-provision-status' && w.resource !== 'events')).toEqual([]);
    expect(r0.generationOf('opa')).toBe(opaGeneration);
    expect(
      r0.kube.configmaps
        .filter((c) => c.metadata.name !== 'zeta-provision-status')
        .map((c) => api!.store.peek(api!.type('configmaps'), r0.kube.namespace, c.metadata.name)!.metadata.resourceVersion),
    ).toEqual(cmVersions);
    expect(await readConsumerTree(r0.volume)).toEqual(tree);
    // Rewritten in the current format.
    expect(r0.status()).toMatchObject({ version: 2, applied: { version: 2, targets: { kube: { namespace: r0.kube.namespace } } } });
    const record = JSON.parse(await readFile(path.join(r0.volume, '..zeta-provision.json'), 'utf8'));
    expect(record.version).toBe(2);
    expect(record.kept).toHaveLength(2);

    api!.requests.length = 0;
    const second = await runCli(r0.args);
    expect(JSON.parse(second.stdout).outcome).toBe('up-to-date');
    expect(api!.requests.map((q) => `${q.method} ${q.resource}`)).toEqual(['GET configmaps']);
    expect(writes(api!)).toEqual([]);
  });

  it('a --kube-out directory of release 0.1.0 converges, its record rewritten', async () => {
    const dir = await tempDir();
    await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
    await cp(path.join(FIXTURE, 'first.yaml'), path.join(dir, 'example', 'first.yaml'));
    const out = path.join(dir, 'kube-out');
    await cp(path.join(FIXTURE, 'kube-out'), out, { recursive: true });
    expect(JSON.parse(await readFile(path.join(out, '.zeta-provision.json'), 'utf8')).version).toBe(1);
    const args = ['run', '--config', path.join(dir, 'example', 'first.yaml'), '--volume', path.join(dir, 'volume'), '--kube-out', out];
    const r = await runCli(args);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(out, '.zeta-provision.json'), 'utf8'))).toMatchObject({ version: 2, applied: { version: 2 } });
    expect((await runCli(args)).stdout).toMatch(/up to date/);
  });

  it('a record of a newer format is refused with a clear message and left as it is', async () => {
    const r0 = await restore();
    const file = path.join(r0.volume, '..zeta-provision.json');
    const newer = JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), version: 3 });
    await writeFile(file, newer);
    const r = await runCli(r0.args);
    expect(r.exitCode).toBe(5);
    expect(JSON.parse(r.stdout).error.message).toContain('was written by a newer zeta-provision (record format 3; this release reads up to 2)');
    expect(await readFile(file, 'utf8')).toBe(newer);
    expect(writes(api!)).toEqual([]);
  });
});
