/**
 * `zeta-provision run` publishing through the Kubernetes API, end to end through the built CLI,
 * against the in-process API double.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { NS, seedWorkloads, writeConfig, writeKubeconfig, writePayload, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const CONFIG = `
configMaps:
  - name: nginx-config
    files: [nginx/nginx.conf]
    consumers: [deployment/pep]
  - name: opa-policy
    files: [opa/policy.rego, opa/signer.pub]
    consumers: [deployment/opa]
  - name: pep-roots
    files: [pep/roots.json]
    consumers: [deployment/pep, statefulset/keycloak]
`;

const FILES = {
  'nginx/nginx.conf': 'events {}\nhttp { server { listen 8080; } }\n',
  'opa/policy.rego': 'package zeta\ndefault allow := false\n',
  'opa/signer.pub': '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n',
  'pep/roots.json': '{"roots":[]}\n',
};

interface Setup {
  dir: string;
  payload: string;
  args: string[];
  run(extra?: string[], env?: Record<string, string>): Promise<{ exitCode: number; stdout: string; stderr: string; report: any }>;
}

async function setup(opts: { config?: string; files?: Record<string, string | Buffer>; api?: KubeApiOptions; consumers?: string[] } = {}): Promise<Setup> {
  api = await startKubeApi(opts.api ?? { rbac: 'allow-all', token: 'test-token' });
  seedWorkloads(api, opts.consumers ?? ['deployment/pep', 'deployment/opa', 'statefulset/keycloak']);
  const dir = await tempDir();
  const payload = await writePayload(dir, opts.files ?? FILES);
  const config = await writeConfig(dir, opts.config ?? CONFIG);
  const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS });
  const args = ['run', '--config', config, '--source', `dir:${payload}`, '--kubeconfig', kubeconfig, '--output', 'json', '--log-format', 'json'];
  return {
    dir,
    payload,
    args,
    run: async (extra = [], env = {}) => {
      const r = await runCli([...args, ...extra], { env });
      let report: any;
      try {
        report = JSON.parse(r.stdout);
      } catch {
        report = undefined;
      }
      return { ...r, report };
    },
  };
}

const cmData = (name: string) => api!.store.peek(api!.type('configmaps'), NS, name);
const eventReasons = () =>
  api!.store
    .list(api!.type('events'), NS, undefined)
    .items.sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
    .map((e: any) => e.reason as string);
const generation = (resource: string, name: string) => api!.store.peek(api!.type(resource), NS, name)?.metadata.generation as number;

describe('publishing through the Kubernetes API', () => {
  it('fresh apply: every target by server-side apply with labels, annotations and a rollout of each consumer', async () => {
    const s = await setup();
    const r = await s.run();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.report.outcome).toBe('applied');
    const nginx = cmData('nginx-config')!;
    expect(nginx.data).toEqual({ 'nginx.conf': FILES['nginx/nginx.conf'] });
    expect(nginx.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'zeta-provision', 'app.kubernetes.io/name': 'zeta-provision', 'app.kubernetes.io/instance': 'zeta-provision' });
    expect(nginx.metadata.annotations['zeta-provision/content-hash']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(nginx.metadata.annotations['zeta-provision/source']).toBe(`dir:${s.payload}`);
    expect(nginx.metadata.annotations['zeta-provision/source-digest']).toBe(r.report.source.digest);
    expect(nginx.metadata.managedFields.map((m: any) => m.manager)).toEqual(['zeta-provision']);
    expect(Object.keys(cmData('opa-policy')!.data).sort()).toEqual(['policy.rego', 'signer.pub']);
    const applies = api!.requests.filter((q) => q.verb === 'patch' && q.resource === 'configmaps' && q.name !== 'zeta-provision-status');
    expect(applies).toHaveLength(3);
    expect(applies.every((q) => q.contentType === 'application/apply-patch+yaml' && q.fieldManager === 'zeta-provision' && q.force === false)).toBe(true);
    // Each consumer rolled out exactly once, even pep which reads two targets.
    expect(generation('deployments', 'pep')).toBe(2);
    expect(generation('deployments', 'opa')).toBe(2);
    expect(generation('statefulsets', 'keycloak')).toBe(2);
    const status = JSON.parse(cmData('zeta-provision-status')!.data['status.json']);
    expect(status).toMatchObject({ outcome: 'applied', digest: r.report.source.digest, counts: { applied: 3, restarted: 3, pending: 0 } });
    expect(Object.keys(status.consumers).sort()).toEqual(['deployment/opa', 'deployment/pep', 'statefulset/keycloak']);
    const events = api!.store.list(api!.type('events'), NS, undefined).items;
    expect(events.map((e: any) => [e.reason, e.type, e.involvedObject.name])).toEqual([['Provisioned', 'Normal', 'zeta-provision-status']]);
    expect(r.report.published.kube.applied.map((a: any) => `${a.action} ${a.kind}/${a.name}`)).toEqual(['create ConfigMap/nginx-config', 'create ConfigMap/opa-policy', 'create ConfigMap/pep-roots']);
  });

  it('no change: the re-run reads once and writes no object and rolls out nothing; with --force it still applies nothing', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    api!.requests.length = 0;
    const again = await s.run();
    expect(again.exitCode).toBe(0);
    expect(again.report.outcome).toBe('up-to-date');
    expect(api!.requests.filter((q) => q.verb === 'list' || q.verb === 'get').map((q) => `${q.verb} ${q.resource}`)).toEqual(['list configmaps']);
    // Only the run record: the status ConfigMap and its UpToDate event.
    expect(writes(api!)).toEqual([
      { verb: 'patch', resource: 'configmaps', name: 'zeta-provision-status' },
      { verb: 'create', resource: 'events', name: undefined },
    ]);
    api!.requests.length = 0;
    const forced = await s.run(['--force']);
    expect(forced.exitCode, forced.stdout).toBe(0);
    expect(forced.report.outcome).toBe('no-changes');
    expect(api!.requests.filter((q) => q.verb === 'list' || q.verb === 'get')).toHaveLength(1);
    expect(writes(api!).filter((w) => w.name !== 'zeta-provision-status' && w.resource !== 'events')).toEqual([]);
    expect(generation('deployments', 'pep')).toBe(2);
    expect(eventReasons()).toEqual(['Provisioned', 'UpToDate', 'UpToDate']);
  });

  it('one file changed: one write and one rollout of exactly the consumer that reads it', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    await writeFile(path.join(s.payload, 'opa/policy.rego'), 'package zeta\ndefault allow := true\n');
    api!.requests.length = 0;
    const r = await s.run();
    expect(r.exitCode, r.stdout).toBe(0);
    expect(writes(api!).filter((w) => w.name !== 'zeta-provision-status' && w.resource !== 'events')).toEqual([
      { verb: 'patch', resource: 'configmaps', name: 'opa-policy' },
      { verb: 'patch', resource: 'deployments', name: 'opa' },
    ]);
    expect(cmData('opa-policy')!.data['policy.rego']).toContain('allow := true');
    expect([generation('deployments', 'opa'), generation('deployments', 'pep'), generation('statefulsets', 'keycloak')]).toEqual([3, 2, 2]);
    const opa = api!.store.peek(api!.type('deployments'), NS, 'opa')!;
    expect(opa.spec.template.metadata.annotations['zeta-provision/inputs-hash']).toMatch(/^sha256:/);
    expect(r.report.published.kube.restarted).toEqual([{ workload: 'deployment/opa', inputs: ['opa-policy'] }]);
  });

  it('binary files go to binaryData (base64), text to data', async () => {
    const bin = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    const s = await setup({ config: 'configMaps:\n  - name: mixed\n    files: [a.txt, b.bin]\n', files: { 'a.txt': 'hello\n', 'b.bin': bin } });
    expect((await s.run()).exitCode).toBe(0);
    const cm = cmData('mixed')!;
    expect(cm.data).toEqual({ 'a.txt': 'hello\n' });
    expect(Buffer.from(cm.binaryData['b.bin'], 'base64')).toEqual(bin);
  });
});
