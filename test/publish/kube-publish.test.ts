/**
 * `zeta-provision run` publishing through the Kubernetes API, end to end through the built CLI,
 * against the in-process API double.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logText, runCli } from '../support/cli.js';
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
    expect(nginx.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'zeta-provision',
      'app.kubernetes.io/name': 'zeta-provision',
      'app.kubernetes.io/instance': 'zeta-provision',
    });
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
    expect(status).toMatchObject({ version: 2, outcome: 'applied', applied: { version: 2, digest: r.report.source.digest } });
    expect(status.conditions.map((c: any) => [c.type, c.status, c.reason])).toEqual([
      ['Fetched', 'True', 'Fetched'],
      ['Verified', 'True', 'Verified'],
      ['Published', 'True', 'Provisioned'],
    ]);
    expect(status.applied.targets.kube.objects.map((o: any) => o.name)).toEqual(['nginx-config', 'opa-policy', 'pep-roots']);
    expect(Object.keys(status.applied.targets.kube.consumers).sort()).toEqual(['deployment/opa', 'deployment/pep', 'statefulset/keycloak']);
    const events = api!.store.list(api!.type('events'), NS, undefined).items;
    expect(events.map((e: any) => [e.reason, e.type, e.involvedObject.name])).toEqual([['Provisioned', 'Normal', 'zeta-provision-status']]);
    expect(r.report.published.kube.applied.map((a: any) => `${a.action} ${a.kind}/${a.name}`)).toEqual([
      'create ConfigMap/nginx-config',
      'create ConfigMap/opa-policy',
      'create ConfigMap/pep-roots',
    ]);
  });

  it('no change: the re-run makes one LIST and nothing else — no write, no Event; with --force it still applies nothing', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    api!.requests.length = 0;
    const again = await s.run();
    expect(again.exitCode).toBe(0);
    expect(again.report.outcome).toBe('up-to-date');
    // The whole cost of the hourly run: one label-selected LIST, zero writes.
    expect(api!.requests.map((q) => `${q.verb} ${q.resource} ${q.labelSelector ?? ''}`)).toEqual([
      'list configmaps app.kubernetes.io/managed-by=zeta-provision,app.kubernetes.io/instance=zeta-provision',
    ]);
    expect(writes(api!)).toEqual([]);
    api!.requests.length = 0;
    const forced = await s.run(['--force']);
    expect(forced.exitCode, forced.stdout).toBe(0);
    expect(forced.report.outcome).toBe('no-changes');
    expect(api!.requests.filter((q) => q.verb === 'list' || q.verb === 'get')).toHaveLength(1);
    expect(writes(api!)).toEqual([]);
    expect(generation('deployments', 'pep')).toBe(2);
    // Events on change only.
    expect(eventReasons()).toEqual(['Provisioned']);
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

  it('a lost status record causes no rollout: the workloads already carry their inputs hash', async () => {
    const s = await setup();
    expect((await s.run()).exitCode).toBe(0);
    api!.store.delete(api!.type('configmaps'), NS, 'zeta-provision-status', false);
    api!.requests.length = 0;
    const r = await s.run();
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.report.outcome).toBe('no-changes');
    expect([generation('deployments', 'opa'), generation('deployments', 'pep'), generation('statefulsets', 'keycloak')]).toEqual([2, 2, 2]);
    expect(api!.requests.filter((q) => q.resource !== 'configmaps' && q.resource !== 'events').map((q) => `${q.verb} ${q.name}`)).toEqual([
      'get opa',
      'get pep',
      'get keycloak',
    ]);
    expect(Object.keys(JSON.parse(cmData('zeta-provision-status')!.data['status.json']).applied.targets.kube.consumers)).toHaveLength(3);
  });

  it('a payload that fails verification leaves the objects alone and records VerificationFailed', async () => {
    const trust = path.resolve('fixtures/example/trust/example-root-ca.pem');
    const config = `trust:\n  example: [${trust}]\nverify:\n  - files: nginx/nginx.conf\n    trust: [example]\n` + CONFIG;
    const s = await setup({ config });
    const r = await s.run();
    expect(r.exitCode, r.stdout).toBe(3);
    expect(api!.store.list(api!.type('configmaps'), NS, undefined).items.map((i: any) => i.metadata.name)).toEqual(['zeta-provision-status']);
    const status = JSON.parse(cmData('zeta-provision-status')!.data['status.json']);
    expect(status).toMatchObject({ outcome: 'failed', message: expect.stringContaining('nginx/nginx.conf') });
    expect(status.conditions.map((c: any) => [c.type, c.status, c.reason])).toEqual([
      ['Fetched', 'True', 'Fetched'],
      ['Verified', 'False', 'VerificationFailed'],
      ['Published', 'Unknown', 'NotReached'],
    ]);
    expect(eventReasons()).toEqual(['VerificationFailed']);
    // The same failure an hour later records nothing new.
    expect((await s.run()).exitCode).toBe(3);
    expect(eventReasons()).toEqual(['VerificationFailed']);
    expect(generation('deployments', 'opa')).toBe(1);
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

describe('publishing through the Kubernetes API: failures and options', () => {
  it('an oversize target fails before any write, naming files and sizes and suggesting the volume', async () => {
    const s = await setup({
      config: 'configMaps:\n  - name: big\n    files: [a.json, small.txt]\n',
      files: { 'a.json': 'x'.repeat(1024 * 1024), 'small.txt': 'hi\n' },
    });
    const r = await s.run();
    expect(r.exitCode).toBe(5);
    expect(r.report.error.message).toContain('ConfigMap big would hold 1048579 bytes, over the API limit of 1048576');
    expect(r.report.error.message).toContain('a.json 1048576 B');
    expect(r.report.error.message).toContain('small.txt 3 B');
    expect(r.report.error.hint).toContain('volume');
    expect(writes(api!).filter((w) => w.resource !== 'events' && w.name !== 'zeta-provision-status')).toEqual([]);
    expect(cmData('big')).toBeUndefined();
  });

  it('an invalid key is refused with the key path before anything is contacted', async () => {
    const s = await setup({ config: 'configMaps:\n  - name: x\n    files: [{ path: a.txt, key: "a/b" }]\n', files: { 'a.txt': 'a' } });
    const r = await s.run();
    expect(r.exitCode).toBe(2);
    expect(r.stdout + logText(r.stderr)).toContain('configMaps.0.files.0: "a/b" is not a valid ConfigMap key');
    expect(api!.requests).toEqual([]);
  });

  it('429 with Retry-After, 503, 500 and a dropped connection are retried and the run succeeds', async () => {
    const s = await setup();
    api!.inject({ match: { method: 'GET' }, fault: { kind: 'status', code: 429, retryAfterSeconds: 1 } });
    api!.inject({ match: { method: 'PATCH', name: 'nginx-config' }, fault: { kind: 'status', code: 503 } });
    api!.inject({ match: { method: 'PATCH', name: 'opa-policy' }, fault: { kind: 'status', code: 500 } });
    api!.inject({ match: { method: 'PATCH', name: 'pep-roots' }, fault: { kind: 'drop' } });
    const r = await s.run();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(api!.requests.filter((q) => q.verb === 'list').map((q) => q.status)).toEqual([429, 200]);
    for (const [name, first] of [
      ['nginx-config', 503],
      ['opa-policy', 500],
      ['pep-roots', -1],
    ] as const) {
      // A GET first (404): an object of that name that is not ours would be refused, never adopted.
      expect(api!.requests.filter((q) => q.name === name).map((q) => q.status)).toEqual([404, first, 201]);
    }
    expect(r.stderr).toContain('API request failed, retrying');
    expect(Object.keys(cmData('pep-roots')!.data)).toEqual(['roots.json']);
  });

  it('API down for the whole deadline: exit 5, the report names every pending object, nothing half-applied', async () => {
    const s = await setup();
    api!.inject({ fault: { kind: 'drop' }, times: Infinity });
    const r = await s.run(['--kube-deadline', '1']);
    expect(r.exitCode).toBe(5);
    expect(r.report.published.kube.pending.map((p: any) => `${p.step} ${p.kind}/${p.name}`)).toEqual([
      'apply ConfigMap/nginx-config',
      'apply ConfigMap/opa-policy',
      'apply ConfigMap/pep-roots',
    ]);
    expect(r.report.error.message).toContain('no answer from the API server');
    expect(api!.requests.length).toBeGreaterThan(1);
    api!.clearFaults();
    // The next run converges.
    const next = await s.run();
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.report.published.kube.applied).toHaveLength(3);
  });

  it('API down after the LIST: the report lists what was applied and what is pending; consumers of pending inputs do not roll out', async () => {
    const s = await setup();
    api!.inject({ match: { method: 'PATCH', name: 'pep-roots' }, fault: { kind: 'status', code: 503 }, times: Infinity });
    const r = await s.run(['--kube-deadline', '1']);
    expect(r.exitCode).toBe(5);
    const k = r.report.published.kube;
    expect(k.applied.map((a: any) => a.name)).toEqual(['nginx-config', 'opa-policy']);
    expect(k.pending.map((p: any) => `${p.step} ${p.kind}/${p.name}`)).toEqual([
      'apply ConfigMap/pep-roots',
      'restart Deployment/pep',
      'restart StatefulSet/keycloak',
    ]);
    expect(k.restarted).toEqual([{ workload: 'deployment/opa', inputs: ['opa-policy'] }]);
    expect(generation('deployments', 'pep')).toBe(1);
    const status = JSON.parse(cmData('zeta-provision-status')!.data['status.json']);
    expect(status).toMatchObject({ outcome: 'failed', message: expect.stringContaining('pep-roots') });
    expect(status.conditions.find((c: any) => c.type === 'Published')).toMatchObject({ status: 'False', reason: 'PublishFailed' });
    // Nothing converged yet: no applied record, so the next run is not "up to date".
    expect(status.applied).toBeUndefined();
    expect(r.stdout).not.toContain('"outcome": "applied"');
  });

  it('an object whose retries use up the apply deadline does not hold back the roll-out of consumers whose inputs applied', async () => {
    const s = await setup();
    // One slow 503 takes longer than the whole apply phase: no time is left in it for anything else.
    api!.inject({ match: { method: 'PATCH', name: 'pep-roots' }, fault: { kind: 'status', code: 503 }, afterMs: 1_300, times: Infinity });
    const r = await s.run(['--kube-deadline', '1']);
    expect(r.exitCode).toBe(5);
    const k = r.report.published.kube;
    expect(k.pending.map((p: any) => `${p.step} ${p.kind}/${p.name}`)).toEqual([
      'apply ConfigMap/pep-roots',
      'restart Deployment/pep',
      'restart StatefulSet/keycloak',
    ]);
    expect(k.restarted).toEqual([{ workload: 'deployment/opa', inputs: ['opa-policy'] }]);
    expect(generation('deployments', 'opa')).toBe(2);
  });

  it('an object of that name that is not ours is never adopted; the message says whose it is; --force-conflicts takes it over', async () => {
    const s = await setup();
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nginx-config' }, data: { 'nginx.conf': 'hand-made\n' } };
    api!.store.apply(api!.type('configmaps'), NS, 'nginx-config', cm, { dryRun: false, fieldManager: 'kubectl' });
    const r = await s.run();
    expect(r.exitCode).toBe(5);
    expect(r.report.published.kube.pending[0]).toMatchObject({
      name: 'nginx-config',
      step: 'apply',
      error: expect.stringContaining('exists and is not managed by zeta-provision'),
    });
    expect(r.report.published.kube.pending[0].error).toContain('managed by kubectl');
    expect(r.report.error.hint).toContain('--force-conflicts');
    expect(cmData('nginx-config')!.data['nginx.conf']).toBe('hand-made\n');
    const forced = await s.run(['--force-conflicts']);
    expect(forced.exitCode, forced.stdout).toBe(0);
    expect(cmData('nginx-config')!.data['nginx.conf']).toBe(FILES['nginx/nginx.conf']);
  });

  it('prune (opt-in) deletes only what this instance made and the config no longer produces', async () => {
    const s = await setup({
      config: CONFIG + '  - name: api-key\n    files: [{ path: key.txt, sensitive: true }]\n',
      files: { ...FILES, 'key.txt': 'k3y-material-0001\n' },
    });
    expect((await s.run()).exitCode).toBe(0);
    api!.store.apply(
      api!.type('configmaps'),
      NS,
      'foreign',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'foreign' }, data: { a: 'b' } },
      { dryRun: false, fieldManager: 'kubectl' },
    );
    const smaller = await writeConfig(s.dir, 'configMaps:\n  - name: nginx-config\n    files: [nginx/nginx.conf]\n    consumers: [deployment/pep]\n');
    expect(smaller).toBe(s.args[2]);
    const without = await s.run();
    expect(without.exitCode).toBe(0);
    expect(cmData('opa-policy')).toBeDefined();
    const pruned = await s.run(['--prune', '--force']);
    expect(pruned.exitCode, pruned.stdout).toBe(0);
    expect(pruned.report.published.kube.pruned.map((p: any) => `${p.kind}/${p.name}`)).toEqual([
      'ConfigMap/opa-policy',
      'ConfigMap/pep-roots',
      'Secret/api-key',
    ]);
    expect(cmData('opa-policy')).toBeUndefined();
    expect(api!.store.peek(api!.type('secrets'), NS, 'api-key')).toBeUndefined();
    expect(cmData('foreign')).toBeDefined();
    expect(cmData('nginx-config')).toBeDefined();
    expect(cmData('zeta-provision-status')).toBeDefined();
    // Secrets were never listed.
    expect(api!.requests.filter((q) => q.resource === 'secrets' && q.verb === 'list')).toEqual([]);
  });

  it('a sensitive file becomes a Secret; its content never appears in logs or the report', async () => {
    const secret = 'zeta-TOKEN-5f1e9c2a7b\n';
    const config =
      'configMaps:\n  - name: pep-credentials\n    files:\n      - { path: pep/client.secret, sensitive: true }\n      - pep/client.id\n    consumers: [deployment/pep]\n';
    const s = await setup({ config, files: { 'pep/client.secret': secret, 'pep/client.id': 'pep\n' }, consumers: ['deployment/pep'] });
    const forms = [secret.trim(), Buffer.from(secret).toString('base64')];
    const outputs: string[] = [];
    for (const extra of [['--debug'], ['--debug', '--output', 'text', '--force'], ['--dry-run=server', '--force']]) {
      const r = await s.run(extra);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      outputs.push(r.stdout, r.stderr);
    }
    // A failing apply of the Secret must not leak it through an error message either.
    api!.inject({ match: { method: 'PATCH', name: 'pep-credentials' }, fault: { kind: 'status', code: 500 }, times: Infinity });
    await writeFile(path.join(s.payload, 'pep/client.id'), 'pep2\n');
    const failed = await s.run(['--kube-deadline', '1', '--debug']);
    expect(failed.exitCode).toBe(5);
    outputs.push(failed.stdout, failed.stderr);
    for (const out of outputs) for (const f of forms) expect(out).not.toContain(f);
    const stored = api!.store.peek(api!.type('secrets'), NS, 'pep-credentials')!;
    expect(stored.type).toBe('Opaque');
    expect(Buffer.from(stored.data['client.secret'], 'base64').toString()).toBe(secret);
    expect(cmData('pep-credentials')).toBeUndefined();
    for (const cm of api!.store.list(api!.type('configmaps'), NS, undefined).items) expect(JSON.stringify(cm)).not.toContain(forms[1]);
  });

  it('--dry-run=server sends every apply with dryRun=All and stores nothing; --detailed-exitcode says changes are pending', async () => {
    const s = await setup();
    const r = await s.run(['--dry-run=server', '--detailed-exitcode']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(10);
    expect(r.report.outcome).toBe('dry-run');
    const applies = api!.requests.filter((q) => q.verb === 'patch');
    expect(applies.map((q) => `${q.resource}/${q.name} ${q.dryRun}`)).toEqual([
      'configmaps/nginx-config true',
      'configmaps/opa-policy true',
      'configmaps/pep-roots true',
      'deployments/opa true',
      'deployments/pep true',
      'statefulsets/keycloak true',
    ]);
    expect(writes(api!)).toEqual([]);
    expect(api!.store.list(api!.type('configmaps'), NS, undefined).items).toEqual([]);
    expect(generation('deployments', 'opa')).toBe(1);
  });

  it('--dry-run=server surfaces what the server refuses (RBAC) as a publish failure', async () => {
    const s = await setup({
      api: { rbac: { [NS]: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'get', 'create', 'patch'] }] }, token: 'test-token' },
    });
    const r = await s.run(['--dry-run=server']);
    expect(r.exitCode).toBe(5);
    expect(r.report.published.kube.applied).toHaveLength(3);
    expect(r.report.published.kube.pending.map((p: any) => p.error)).toEqual(
      expect.arrayContaining([expect.stringContaining('cannot get resource "deployments"')]),
    );
    expect(writes(api!)).toEqual([]);
  });

  it('--dry-run (client) only reads', async () => {
    const s = await setup();
    const r = await s.run(['--dry-run', '--detailed-exitcode']);
    expect(r.exitCode).toBe(10);
    expect(new Set(api!.requests.map((q) => q.verb))).toEqual(new Set(['list']));
    expect(r.report.plan.configMaps.map((c: any) => c.action)).toEqual(['create', 'create', 'create']);
  });

  it('no cluster configuration and no --kube-out: a run fails with exit 2 naming what was tried; a client dry run plans and warns', async () => {
    const dir = await tempDir();
    const payload = await writePayload(dir, FILES);
    const config = await writeConfig(dir, CONFIG);
    const base = ['run', '--config', config, '--source', `dir:${payload}`, '--output', 'json'];
    const env = { HOME: dir };
    const r = await runCli(base, { env });
    expect(r.exitCode).toBe(2);
    const report = JSON.parse(r.stdout);
    expect(report.error.message).toBe(
      `no Kubernetes API configuration found; tried KUBECONFIG (not set), ${dir}/.kube/config (absent), in-cluster (KUBERNETES_SERVICE_HOST/PORT not set)`,
    );
    expect(report.error.hint).toContain('--kube-out');
    expect(r.stdout + r.stderr).not.toContain('localhost:8080');
    const dry = await runCli([...base, '--dry-run'], { env });
    expect(dry.exitCode).toBe(0);
    expect(JSON.parse(dry.stdout).warnings.join('\n')).toContain('the dry run plans as if none of the 3 API object(s) existed');
  });
});
