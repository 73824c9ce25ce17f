/**
 * fixtures/coco through the built CLI against the API double: `verify` and `--dry-run` show the
 * decoded initdata with its PCR 8 value, `run` publishes it in order, a second run is up to date and
 * writes nothing, `--kube-out` writes the same objects as manifests.
 */
import { createHash } from 'node:crypto';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeInitdata } from '../../src/process/initdata/index.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { workload, writeKubeconfig, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const EXAMPLE = path.join(REPO_ROOT, 'fixtures', 'coco');
const base = ['--config', path.join(EXAMPLE, 'zeta-provision.yaml'), '--source', `dir:${path.join(EXAMPLE, 'payload')}`];

async function cluster(): Promise<string> {
  api = await startKubeApi({ rbac: 'allow-all', token: 't' });
  const cm = api.type('configmaps');
  api.store.create(
    cm,
    'trustee-operator-system',
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'rvps-reference-values' },
      data: { 'reference-values.json': '[\n  {"name": "pcr03", "expiration": "2027-01-01T00:00:00Z", "hash-value": [{"alg": "sha256", "value": "03"}]}\n]\n' },
    },
    { dryRun: false, fieldManager: 'kubectl' },
  );
  api.store.create(
    cm,
    'openshift-sandboxed-containers-operator',
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'peer-pods-cm' }, data: { CLOUD_PROVIDER: 'azure' } },
    { dryRun: false, fieldManager: 'operator' },
  );
  api.store.create(
    api.type('deployments'),
    'zeta-guard',
    { ...workload('Deployment', 'pep'), metadata: { name: 'pep', namespace: 'zeta-guard' } },
    { dryRun: false, fieldManager: 'kubectl' },
  );
  return writeKubeconfig(await tempDir(), api.url, { token: 't' });
}

/** PCR 8 as the OSC guides compute it, over the TOML the report printed. */
function pcr8(toml: string): string {
  const h = createHash('sha256').update(toml).digest();
  return createHash('sha256').update(Buffer.alloc(32)).update(h).digest('hex');
}

describe('CoCo initdata end to end (fixtures/coco)', () => {
  it('verify prints the decoded initdata and its PCR 8 value, and needs no cluster', async () => {
    const r = await runCli(['verify', ...base, '--output', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.initdata.toml).toMatch(/^algorithm = "sha256"\nversion = "0.1.0"\n\n\[data\]\n"aa.toml" = '''/);
    expect(report.initdata.toml).toContain(await readFile(path.join(EXAMPLE, 'payload', 'kbs', 'tls.crt'), 'utf8'));
    expect(report.initdata.values.pcr08).toBe(pcr8(report.initdata.toml));
    const text = await runCli(['verify', ...base]);
    expect(text.stdout).toContain(`    current     pcr08 ${report.initdata.values.pcr08}`);
    expect(text.stdout).toContain('    | [kbc]');
  });

  it('dry run shows what would change (exit 10 with --detailed-exitcode), run publishes, the next run is up to date: four GETs, no write', async () => {
    const kubeconfig = await cluster();
    const args = ['run', ...base, '--kubeconfig', kubeconfig];
    const dry = await runCli([...args, '--dry-run', '--detailed-exitcode']);
    expect(dry.exitCode, dry.stdout + dry.stderr).toBe(10);
    expect(dry.stdout).toMatch(/would update ConfigMap trustee-operator-system\/rvps-reference-values reference-values\.json: pcr08 /);
    expect(dry.stdout).toMatch(/would annotate Deployment\/zeta-guard\/pep with initdata sha256:[0-9a-f]{64} \(rollout\)/);
    expect(dry.stdout).toContain('--- initdata.toml (decoded) ---');
    expect(writes(api!)).toEqual([]);

    const run = await runCli([...args, '--output', 'json']);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.outcome).toBe('applied');
    expect(report.initdata.applied.updated).toEqual(['ConfigMap/openshift-sandboxed-containers-operator/peer-pods-cm', 'Deployment/zeta-guard/pep']);
    expect(writes(api!).map((w) => w.name)).toEqual(['rvps-reference-values', 'peer-pods-cm', 'pep', 'zeta-provision-initdata']);
    const pp = api!.store.get(api!.type('configmaps'), 'openshift-sandboxed-containers-operator', 'peer-pods-cm') as any;
    expect(decodeInitdata(pp.data.INITDATA)?.toString('utf8')).toBe(report.initdata.toml);
    const list = JSON.parse((api!.store.get(api!.type('configmaps'), 'trustee-operator-system', 'rvps-reference-values') as any).data['reference-values.json']);
    expect(list.map((e: any) => e.name)).toEqual(['pcr03', 'pcr08']);
    expect(list[1]['hash-value'][0].value).toBe(pcr8(report.initdata.toml));

    // The Deployment controller finished the rollout: the next run changes nothing anywhere.
    const dep = api!.store.get(api!.type('deployments'), 'zeta-guard', 'pep') as any;
    api!.store.mergePatch(
      api!.type('deployments'),
      'zeta-guard',
      'pep',
      { status: { observedGeneration: dep.metadata.generation, replicas: 1, updatedReplicas: 1 } },
      { dryRun: false, fieldManager: 'controller' },
    );
    const n = writes(api!).length;
    const before = api!.requests.length;
    const again = await runCli([...args, '--output', 'json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).outcome).toBe('up-to-date');
    expect(writes(api!).length).toBe(n);
    // The hourly check of this target: one GET per object, its record included.
    expect(api!.requests.slice(before).map((r) => `${r.verb} ${r.name}`)).toEqual([
      'get rvps-reference-values',
      'get peer-pods-cm',
      'get pep',
      'get zeta-provision-initdata',
    ]);
  });

  it('a changed agent policy: the text report names the current value and the old one overlapping, waiting for the rollout', async () => {
    const kubeconfig = await cluster();
    const payload = path.join(await tempDir(), 'payload');
    await cp(path.join(EXAMPLE, 'payload'), payload, { recursive: true });
    const args = ['run', '--config', path.join(EXAMPLE, 'zeta-provision.yaml'), '--source', `dir:${payload}`, '--kubeconfig', kubeconfig];
    const first = JSON.parse((await runCli([...args, '--output', 'json'])).stdout);
    const policy = path.join(payload, 'coco', 'policy.rego');
    await writeFile(policy, (await readFile(policy, 'utf8')).replace('default ExecProcessRequest := false', 'default ExecProcessRequest := true'));
    const second = await runCli(args);
    expect(second.exitCode, second.stdout + second.stderr).toBe(0);
    const old = first.initdata.values.pcr08;
    expect(second.stdout).toMatch(/\n {4}current {5}pcr08 [0-9a-f]{64}\n/);
    expect(second.stdout).toContain(`    overlapping pcr08 ${old} (${first.initdata.id}, until `);
    expect(second.stdout).toContain(
      'or until ConfigMap/openshift-sandboxed-containers-operator/peer-pods-cm, Deployment/zeta-guard/pep run the current initdata)',
    );
  });

  it('an initdata failure (INITDATA owned by another manager) writes no initdata object and no record claiming the payload applied: the next run retries', async () => {
    const kubeconfig = await cluster();
    api!.store.mergePatch(
      api!.type('configmaps'),
      'openshift-sandboxed-containers-operator',
      'peer-pods-cm',
      { data: { INITDATA: 'aGFuZA==' } },
      { dryRun: false, fieldManager: 'kubectl-edit' },
    );
    const dir = await tempDir();
    const payload = path.join(dir, 'payload');
    await cp(path.join(EXAMPLE, 'payload'), payload, { recursive: true });
    await writeFile(path.join(payload, 'nginx.conf'), 'events {}\n');
    const config = path.join(dir, 'zeta-provision.yaml');
    await writeFile(
      config,
      (await readFile(path.join(EXAMPLE, 'zeta-provision.yaml'), 'utf8')) +
        'namespace: zeta-guard\nconfigMaps:\n  - name: nginx-config\n    files: [nginx.conf]\n',
    );
    const args = ['run', '--config', config, '--source', `dir:${payload}`, '--kubeconfig', kubeconfig];
    const failed = await runCli(args);
    expect(failed.exitCode, failed.stdout + failed.stderr).toBe(5);
    expect(failed.stdout).toMatch(/conflict with "kubectl-edit"/);
    // The API target ran before it (nginx-config); no initdata object was touched.
    expect(
      writes(api!)
        .filter((w) => w.resource !== 'events' && w.name !== 'zeta-provision-status')
        .map((w) => w.name),
    ).toEqual(['nginx-config']);
    const again = await runCli([...args, '--output', 'json']);
    expect(again.exitCode).toBe(5);
    const report = JSON.parse(again.stdout);
    expect(report.outcome).toBe('failed');
    expect(report.error.message).toMatch(/conflict with "kubectl-edit"/);
    const forced = await runCli([...args, '--force-conflicts', '--output', 'json']);
    expect(forced.exitCode, forced.stdout + forced.stderr).toBe(0);
    expect(writes(api!).map((w) => w.name)).toEqual(expect.arrayContaining(['rvps-reference-values', 'peer-pods-cm', 'pep', 'nginx-config']));
  });

  it('--kube-out writes the initdata, our reference value entries and partial manifests for server-side apply', async () => {
    const out = await tempDir();
    const r = await runCli(['run', ...base, '--kube-out', out, '--output', 'json']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const files = (await readdir(path.join(out, 'coco-initdata'))).sort();
    expect(files).toEqual(['.record.json', '1-reference-values.entries.json', '2-deployment-zeta-guard-pep.yaml', '2-peer-pods-cm.yaml', 'initdata.toml']);
    const toml = await readFile(path.join(out, 'coco-initdata', 'initdata.toml'), 'utf8');
    const entries = JSON.parse(await readFile(path.join(out, 'coco-initdata', '1-reference-values.entries.json'), 'utf8'));
    expect(entries[0]).toMatchObject({ name: 'pcr08', 'hash-value': [{ alg: 'sha256', value: pcr8(toml) }] });
    const cm = await readFile(path.join(out, 'coco-initdata', '2-peer-pods-cm.yaml'), 'utf8');
    expect(cm).toMatch(/kind: ConfigMap\nmetadata:\n {2}name: peer-pods-cm\n {2}namespace: openshift-sandboxed-containers-operator/);
    expect(cm).not.toContain('CLOUD_PROVIDER');
  });
});
