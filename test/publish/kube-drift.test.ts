/**
 * Converging on the live state, end to end through the built CLI against the API double: objects
 * deleted or edited by others are repaired in the same run (or a named conflict), a consumer added to
 * the config is a pending rollout, rollback moves volume and ConfigMaps together or refuses, and the
 * up-to-date run is one LIST and zero writes (asserted from the double's request log).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { NS, seedWorkloads, writeConfig, writeKubeconfig, writePayload, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const CONFIG = `
volume:
  files: ["data/**"]
configMaps:
  - name: nginx-config
    files: [nginx/nginx.conf]
  - name: opa-policy
    files: [opa/policy.rego]
    consumers: [deployment/opa]
`;
const FILES = { 'nginx/nginx.conf': 'events {}\n', 'opa/policy.rego': 'package zeta\n', 'data/big.json': '{"v":1}\n' };

async function setup(config = CONFIG, files: Record<string, string> = FILES) {
  api = await startKubeApi({ rbac: 'allow-all', token: 'test-token', namespaces: [NS] });
  seedWorkloads(api, ['deployment/opa', 'deployment/pep']);
  const dir = await tempDir();
  const payload = await writePayload(dir, files);
  const configFile = await writeConfig(dir, config);
  const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS });
  const volume = path.join(dir, 'volume');
  const targets = ['--config', configFile, '--kubeconfig', kubeconfig, '--volume', volume];
  const run = async (extra: string[] = []) => {
    const r = await runCli(['run', ...targets, '--source', `dir:${payload}`, '--output', 'json', ...extra]);
    let report: any;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      report = undefined;
    }
    return { ...r, report };
  };
  return { dir, payload, configFile, volume, targets, run };
}

const cm = (name: string) => api!.store.peek(api!.type('configmaps'), NS, name);
const events = () =>
  api!.store
    .list(api!.type('events'), NS, undefined)
    .items.sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
    .map((e: any) => ({ reason: e.reason as string, message: e.message as string }));
const generation = (name: string) => api!.store.peek(api!.type('deployments'), NS, name)?.metadata.generation as number;

/** The up-to-date run: exactly one label-selected LIST, nothing else, no write. */
async function expectUpToDate(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  api!.requests.length = 0;
  const r = await s.run();
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  expect(r.report.outcome).toBe('up-to-date');
  expect(api!.requests.map((q) => `${q.method} ${q.resource}`)).toEqual(['GET configmaps']);
  expect(api!.requests[0]!.labelSelector).toBe('app.kubernetes.io/managed-by=zeta-provision,app.kubernetes.io/instance=zeta-provision');
  expect(writes(api!)).toEqual([]);
}

describe('drift is repaired in the same run', () => {
  it('a managed ConfigMap deleted by hand is recreated (DriftCorrected), then the run is up to date again', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    await expectUpToDate(s);
    api!.store.delete(api!.type('configmaps'), NS, 'nginx-config', false);
    const r = await s.run();
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.report.outcome).toBe('drift-corrected');
    expect(r.report.plan.drift).toEqual([{ target: 'kube', object: 'ConfigMap/nginx-config', what: 'deleted' }]);
    expect(cm('nginx-config')!.data).toEqual({ 'nginx.conf': FILES['nginx/nginx.conf'] });
    expect(events().map((e: { reason: string }) => e.reason)).toEqual(['Provisioned', 'DriftCorrected']);
    expect(events()[1]!.message).toContain('ConfigMap/nginx-config (deleted)');
    const status = JSON.parse(cm('zeta-provision-status')!.data['status.json']);
    expect(status).toMatchObject({ outcome: 'drift-corrected', drift: [{ object: 'ConfigMap/nginx-config', what: 'deleted' }] });
    // Only the deleted object was written (plus the status); the consumer did not roll out again.
    expect(generation('opa')).toBe(2);
    await expectUpToDate(s);
  });

  it('an edit by another field manager (server-side apply) is a conflict naming object, field and manager; --force-conflicts repairs it', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    api!.store.apply(
      api!.type('configmaps'),
      NS,
      'nginx-config',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nginx-config' }, data: { 'nginx.conf': 'edited\n' } },
      { dryRun: false, fieldManager: 'other', force: true },
    );
    const r = await s.run();
    expect(r.exitCode).toBe(5);
    expect(r.report.plan.drift[0]).toMatchObject({ object: 'ConfigMap/nginx-config', what: 'data changed (field managers: other)' });
    expect(r.report.error.message).toContain('conflict with "other": .data.nginx.conf');
    expect(r.report.error.message).toContain('ConfigMap/nginx-config');
    expect(r.report.error.hint).toContain('--force-conflicts');
    expect(cm('nginx-config')!.data['nginx.conf']).toBe('edited\n');
    // Never "up to date" while the edit stands.
    expect((await s.run()).report.outcome).toBe('failed');
    const forced = await s.run(['--force-conflicts']);
    expect(forced.exitCode, forced.stdout).toBe(0);
    expect(forced.report.outcome).toBe('drift-corrected');
    expect(cm('nginx-config')!.data['nginx.conf']).toBe(FILES['nginx/nginx.conf']);
    await expectUpToDate(s);
  });

  it('an edit via update (kubectl edit) takes the field: a conflict naming kubectl-edit, never silently left', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    api!.store.mergePatch(
      api!.type('configmaps'),
      NS,
      'opa-policy',
      { data: { 'policy.rego': 'package evil\n' } },
      { dryRun: false, fieldManager: 'kubectl-edit' },
    );
    const managers = cm('opa-policy')!.metadata.managedFields.map((m: any) => [m.manager, m.operation]);
    expect(managers).toEqual([
      ['zeta-provision', 'Apply'],
      ['kubectl-edit', 'Update'],
    ]);
    const r = await s.run();
    expect(r.exitCode).toBe(5);
    expect(r.report.error.message).toContain('conflict with "kubectl-edit": .data.policy.rego');
  });

  it('a consumer added to the config: the dry run exits 10 and lists the rollout; the real run rolls it out', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    await writeFile(s.configFile, CONFIG.replace('files: [nginx/nginx.conf]', 'files: [nginx/nginx.conf]\n    consumers: [deployment/pep]'));
    const dry = await s.run(['--dry-run', '--detailed-exitcode']);
    expect(dry.exitCode, dry.stdout).toBe(10);
    expect(dry.report.plan.rollouts).toEqual(['deployment/pep (inputs nginx-config)']);
    const server = await s.run(['--dry-run=server', '--detailed-exitcode']);
    expect(server.exitCode).toBe(10);
    expect(server.report.published.kube.restarted).toEqual([{ workload: 'deployment/pep', inputs: ['nginx-config'] }]);
    expect(generation('pep')).toBe(1);
    const r = await s.run();
    expect(r.exitCode).toBe(0);
    expect(r.report.outcome).toBe('applied');
    expect(generation('pep')).toBe(2);
    await expectUpToDate(s);
  });

  it('a namespace that does not exist: exit 5 with the API message and a hint', async () => {
    const s = await setup();
    const r = await s.run(['--namespace', 'missing']);
    expect(r.exitCode).toBe(5);
    expect(r.report.error.message).toContain('namespaces "missing" not found');
    expect(r.report.error.hint).toContain('--namespace');
  });
});

describe('rollback moves every target together', () => {
  it('volume and ConfigMaps go back to the previous payload; the next run holds it; a new payload ends it', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    await writeFile(path.join(s.payload, 'nginx/nginx.conf'), 'events { worker_connections 64; }\n');
    await writeFile(path.join(s.payload, 'data/big.json'), '{"v":2}\n');
    expect((await s.run()).exitCode).toBe(0);
    expect(cm('nginx-config')!.data['nginx.conf']).toContain('64');
    const rb = await runCli(['rollback', ...s.targets, '--output', 'json']);
    expect(rb.exitCode, rb.stdout + rb.stderr).toBe(0);
    expect(JSON.parse(rb.stdout).reapplied).toEqual(['nginx-config']);
    expect(cm('nginx-config')!.data['nginx.conf']).toBe(FILES['nginx/nginx.conf']);
    expect(events().map((e: { reason: string }) => e.reason)).toEqual(['Provisioned', 'Provisioned', 'RolledBack']);
    const status = JSON.parse(cm('zeta-provision-status')!.data['status.json']);
    expect(status.outcome).toBe('rolled-back');
    expect(status.applied.rollback.fromDigest).toMatch(/^sha256:/);
    // The same (newer) payload again: held, not undone, and nothing written.
    api!.requests.length = 0;
    const held = await s.run();
    expect(held.report.outcome).toBe('up-to-date');
    expect(held.report.warnings.join('\n')).toContain('rolled back from');
    expect(writes(api!)).toEqual([]);
    // A new payload publishes again.
    await writeFile(path.join(s.payload, 'nginx/nginx.conf'), 'events { worker_connections 128; }\n');
    expect((await s.run()).report.outcome).toBe('applied');
    expect(cm('nginx-config')!.data['nginx.conf']).toContain('128');
  });

  it('refuses before changing anything when a Secret would have to be restored', async () => {
    const config = CONFIG + '  - name: api-key\n    files: [{ path: key.txt, sensitive: true }]\n';
    const s = await setup(config, { ...FILES, 'key.txt': 'first-key\n' });
    expect((await s.run()).exitCode).toBe(0);
    await writeFile(path.join(s.payload, 'key.txt'), 'second-key\n');
    await writeFile(path.join(s.payload, 'nginx/nginx.conf'), 'events { worker_connections 64; }\n');
    expect((await s.run()).exitCode).toBe(0);
    api!.requests.length = 0;
    const rb = await runCli(['rollback', ...s.targets]);
    expect(rb.exitCode).toBe(5);
    expect(rb.stderr).toContain('cannot restore Secret api-key');
    expect(rb.stderr).toContain('nothing was changed');
    expect(writes(api!)).toEqual([]);
    expect(cm('nginx-config')!.data['nginx.conf']).toContain('64');
  });
});
