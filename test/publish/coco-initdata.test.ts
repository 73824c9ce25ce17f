/**
 * The CoCo initdata target against the API double, with the RBAC of manifests/overlays/coco: write
 * order, field ownership of the shared ConfigMaps, rotation across runs, a failure between the two
 * writes, foreign reference values kept byte for byte.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/index.js';
import type { InitdataConfig } from '../../src/config/initdata.js';
import { PublishError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { entryValues } from '../../src/plan/initdata.js';
import { buildInitdata, decodeInitdata } from '../../src/process/initdata/index.js';
import { CocoInitdataTarget } from '../../src/publish/coco/index.js';
import { ROTATION_ANNOTATION } from '../../src/publish/coco/observe.js';
import { loadConnection } from '../../src/publish/kube/connection.js';
import { KubeHttp } from '../../src/publish/kube/http.js';
import { newRecord } from '../../src/publish/record.js';
import type { DesiredOutputs } from '../../src/process/types.js';
import { workload, writeKubeconfig, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi, type PolicyRule } from '../support/kube-api/index.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const TRUSTEE = 'trustee-operator-system';
const OSC = 'openshift-sandboxed-containers-operator';
const APPS = 'zeta-guard';
const HOUR = 3600_000;
const FOREIGN = `[\n  {"name": "pcr03", "expiration": "2027-06-01T00:00:00Z", "hash-value": [{"alg": "sha256", "value": "0303"}]},\n  { "name":"pcr11","expiration":"2027-06-01T00:00:00Z","hash-value":[ {"alg":"sha256","value":"1111"} ], "note": "\\u00e9t\\u00e9" }\n]\n`;

function config(extra = ''): InitdataConfig {
  return parseConfigText(
    `initdata:\n  peerPodsConfigMap: true\n  deployments: [${APPS}/pep]\n  parts:\n    policy.rego: { file: p.rego }\n${extra}`,
    't.yaml',
    '/',
  ).initdata!;
}

const desired = (policy: string): DesiredOutputs => ({
  volumeFiles: [],
  configMaps: [],
  warnings: [],
  initdata: buildInitdata({ algorithm: 'sha256', platforms: ['azure-vtpm'] }, { 'policy.rego': `package agent_policy\n${policy}\n` }),
});
const A = desired('default ExecProcessRequest := false');
const B = desired('default ExecProcessRequest := true');

async function rbacFromManifest(): Promise<Record<string, PolicyRule[]>> {
  const file = path.resolve(__dirname, '../../manifests/overlays/coco/rbac.yaml');
  const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Record<string, any>);
  return Object.fromEntries(docs.filter((d) => d.kind === 'Role').map((r) => [r.metadata.namespace, r.rules]));
}

async function setup(opts: { peerPodsInitdataOwner?: string } = {}) {
  api = await startKubeApi({ rbac: await rbacFromManifest(), token: 't0k3n' });
  const cm = api.type('configmaps');
  api.store.create(
    cm,
    TRUSTEE,
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'rvps-reference-values' }, data: { 'reference-values.json': FOREIGN } },
    { dryRun: false, fieldManager: 'kubectl-client-side-apply' },
  );
  const peerData: Record<string, string> = { CLOUD_PROVIDER: 'azure', AZURE_INSTANCE_SIZE: 'Standard_DC2as_v5' };
  api.store.create(
    cm,
    OSC,
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'peer-pods-cm' }, data: peerData },
    { dryRun: false, fieldManager: 'sandboxed-containers-operator' },
  );
  if (opts.peerPodsInitdataOwner)
    api.store.mergePatch(cm, OSC, 'peer-pods-cm', { data: { INITDATA: 'aGFuZCBtYWRl' } }, { dryRun: false, fieldManager: opts.peerPodsInitdataOwner });
  api.store.create(
    api.type('deployments'),
    APPS,
    { ...workload('Deployment', 'pep'), metadata: { name: 'pep', namespace: APPS } },
    { dryRun: false, fieldManager: 'kubectl-client-side-apply' },
  );
  const dir = await tempDir();
  const kubeconfig = await writeKubeconfig(dir, api.url, { token: 't0k3n' });
  const connection = await loadConnection({ kubeconfig, env: {} });
  let now = new Date('2026-12-01T10:00:00Z');
  const lines: string[] = [];
  const target = (cfg = config(), force = false) =>
    new CocoInitdataTarget(new KubeHttp(connection, { deadline: Date.now() + 20_000, policy: { baseMs: 1, capMs: 5, maxAttempts: 2 } }), {
      config: cfg,
      recordObject: { namespace: APPS, name: 'zeta-provision-initdata' },
      forceConflicts: force,
      log: createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) }),
      now: () => now,
    });
  const run = async (d: DesiredOutputs, o: { dryRun?: boolean; cfg?: InitdataConfig; force?: boolean } = {}) => {
    const t = target(o.cfg, o.force);
    try {
      const observed = await t.observe();
      const plan = t.plan(d, observed);
      const applied = plan.changes
        ? await t.apply(plan, newRecord({ source: 's', digest: 'sha256:0', configHash: 'c', freshness: {} }), { dryRun: o.dryRun ?? false })
        : undefined;
      return { plan, applied };
    } finally {
      t.close();
    }
  };
  const a = api;
  return {
    run,
    target,
    lines,
    advance: (ms: number) => void (now = new Date(now.getTime() + ms)),
    rvps: () => a.store.get(cm, TRUSTEE, 'rvps-reference-values') as any,
    peerPods: () => a.store.get(cm, OSC, 'peer-pods-cm') as any,
    deployment: () => a.store.get(a.type('deployments'), APPS, 'pep') as any,
    /** What the Deployment controller would report once the rollout of the current template finished. */
    finishRollout: () => {
      const d = a.store.get(a.type('deployments'), APPS, 'pep') as any;
      a.store.mergePatch(
        a.type('deployments'),
        APPS,
        'pep',
        { status: { observedGeneration: d.metadata.generation, replicas: 1, updatedReplicas: 1, availableReplicas: 1 } },
        { dryRun: false, fieldManager: 'kube-controller-manager' },
      );
    },
  };
}

const pcr08 = (s: { rvps: () => any }) => entryValues(JSON.parse(s.rvps().data['reference-values.json']).find((e: any) => e.name === 'pcr08'));

describe('CoCo initdata target', () => {
  it('writes the reference value first, then INITDATA (that key only) and the pod-template annotations; foreign entries stay byte for byte', async () => {
    const s = await setup();
    const { plan, applied } = await s.run(A);
    expect(plan.actions[0]).toMatch(
      /^update ConfigMap trustee-operator-system\/rvps-reference-values reference-values\.json: pcr08 [0-9a-f]{16}… — initdata sha256:[0-9a-f]{64} added$/,
    );
    expect(plan.actions.slice(1)).toEqual([
      `set INITDATA of ConfigMap/${OSC}/peer-pods-cm to initdata ${A.initdata!.id}`,
      `annotate Deployment/${APPS}/pep with initdata ${A.initdata!.id} (rollout)`,
    ]);
    // Order of the real writes: RVPS, then the two consumers (each after its own dry run).
    expect(writes(api!).map((w) => `${w.resource}/${w.name}`)).toEqual(['configmaps/rvps-reference-values', 'configmaps/peer-pods-cm', 'deployments/pep']);
    const text = s.rvps().data['reference-values.json'] as string;
    for (const line of FOREIGN.split('\n').slice(1, 3)) expect(text).toContain(line.replace(/,$/, ''));
    expect(text.startsWith(FOREIGN.slice(0, FOREIGN.lastIndexOf('}') + 1))).toBe(true);
    expect(pcr08(s)).toEqual([A.initdata!.values['azure-vtpm']]);
    expect(JSON.parse(s.rvps().metadata.annotations[ROTATION_ANNOTATION]).current.id).toBe(A.initdata!.id);
    // peer-pods-cm: the operator's keys untouched, INITDATA ours, no label of ours on it.
    const pp = s.peerPods();
    expect(pp.data.CLOUD_PROVIDER).toBe('azure');
    expect(decodeInitdata(pp.data.INITDATA)?.equals(A.initdata!.toml)).toBe(true);
    expect(pp.metadata.labels).toBeUndefined();
    expect(pp.metadata.managedFields.map((m: any) => m.manager).sort()).toEqual(['sandboxed-containers-operator', 'zeta-provision']);
    // Field ownership as the API server shows it: ours is an Apply of INITDATA and our annotation only.
    const ours = pp.metadata.managedFields.find((m: any) => m.manager === 'zeta-provision');
    expect(ours.operation).toBe('Apply');
    expect(Object.keys(ours.fieldsV1['f:data'])).toEqual(['f:INITDATA']);
    expect(Object.keys(ours.fieldsV1['f:metadata']['f:annotations'])).toEqual(['f:zeta-provision.io/initdata']);
    const theirs = pp.metadata.managedFields.find((m: any) => m.manager === 'sandboxed-containers-operator');
    expect(Object.keys(theirs.fieldsV1['f:data']).sort()).toEqual(['f:AZURE_INSTANCE_SIZE', 'f:CLOUD_PROVIDER']);
    const ann = s.deployment().spec.template.metadata.annotations;
    expect(ann['io.katacontainers.config.hypervisor.cc_init_data']).toBe(A.initdata!.encoded);
    expect(ann['io.katacontainers.config.runtime.cc_init_data']).toBe(A.initdata!.encoded);
    expect(applied?.report.updated).toEqual([`ConfigMap/${OSC}/peer-pods-cm`, `Deployment/${APPS}/pep`]);
  });

  it('peer-pods-cm stays shared: the operator re-applying its keys neither conflicts with nor drops INITDATA, and our next apply keeps its keys', async () => {
    const s = await setup();
    await s.run(A);
    const cm = api!.type('configmaps');
    api!.store.apply(
      cm,
      OSC,
      'peer-pods-cm',
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'peer-pods-cm', namespace: OSC },
        data: { CLOUD_PROVIDER: 'azure', AZURE_INSTANCE_SIZE: 'Standard_DC4as_v5' },
      },
      { dryRun: false, fieldManager: 'sandboxed-containers-operator' },
    );
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(A.initdata!.toml)).toBe(true);
    s.advance(HOUR);
    await s.run(B);
    expect(s.peerPods().data).toMatchObject({ CLOUD_PROVIDER: 'azure', AZURE_INSTANCE_SIZE: 'Standard_DC4as_v5' });
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(B.initdata!.toml)).toBe(true);
    // Our applies carried only our key: every apply request body names INITDATA and nothing of the operator's.
    expect(
      api!.requests
        .filter((r) => r.name === 'peer-pods-cm' && r.verb === 'patch')
        .every((r) => r.fieldManager === 'zeta-provision' && r.contentType === 'application/apply-patch+yaml' && r.force === false),
    ).toBe(true);
  });

  it('manifests/overlays/coco renders with each Role in its own namespace (kubectl kustomize)', async () => {
    const { execa } = await import('execa');
    await requireProgram('kubectl', 'kubectl');
    const out = await execa('kubectl', ['kustomize', path.resolve(__dirname, '../../manifests/overlays/coco')]);
    const roles = parseAllDocuments(out.stdout)
      .map((d) => d.toJS() as Record<string, any>)
      .filter((d) => d.kind === 'Role');
    expect(
      roles.map((r) => `${r.metadata.namespace}: ${r.rules.map((x: PolicyRule) => `${x.resources}/${x.resourceNames}:${x.verbs}`).join(' ')}`).sort(),
    ).toEqual([
      'openshift-sandboxed-containers-operator: configmaps/peer-pods-cm:get,patch',
      'trustee-operator-system: configmaps/rvps-reference-values:get,patch',
      'zeta-guard: deployments/pep:get,patch configmaps/zeta-provision-initdata:get,patch configmaps/undefined:create',
    ]);
  });

  it('an unchanged initdata writes nothing and rolls nothing out (GETs only)', async () => {
    const s = await setup();
    await s.run(A);
    s.finishRollout();
    const generation = s.deployment().metadata.generation;
    const before = api!.requests.length;
    const { plan } = await s.run(A);
    expect(plan.changes).toBe(false);
    expect(api!.requests.slice(before).map((r) => `${r.verb} ${r.name}`)).toEqual([
      'get rvps-reference-values',
      'get peer-pods-cm',
      'get pep',
      'get zeta-provision-initdata',
    ]);
    expect(s.deployment().metadata.generation).toBe(generation);
  });

  it('rotation: B is listed beside A, A leaves only after the rollout finished (peer-pods-cm: after the overlap time)', async () => {
    const s = await setup();
    await s.run(A);
    s.finishRollout();
    s.advance(HOUR);
    const r1 = await s.run(B);
    expect(pcr08(s)).toEqual([B.initdata!.values['azure-vtpm'], A.initdata!.values['azure-vtpm']]);
    expect(r1.applied?.report.overlapping.map((o) => o.id)).toEqual([A.initdata!.id]);
    s.finishRollout();
    s.advance(HOUR);
    // The Deployment runs B, but peer-pods-cm may have peer pods on A anywhere: A stays for 24 h.
    expect((await s.run(B)).plan.changes).toBe(false);
    expect(pcr08(s)).toHaveLength(2);
    s.advance(23 * HOUR);
    const r3 = await s.run(B);
    expect(r3.plan.actions[0]).toMatch(/removed sha256:[0-9a-f]+ \(overlap time over\)/);
    expect(pcr08(s)).toEqual([B.initdata!.values['azure-vtpm']]);
    // Without peer-pods-cm the finished rollout is enough.
    const depOnly = config().deployments;
    const cfg = { ...config(), peerPodsConfigMap: undefined, deployments: depOnly };
    s.advance(HOUR);
    await s.run(A, { cfg });
    expect(pcr08(s)).toHaveLength(2);
    s.finishRollout();
    s.advance(HOUR);
    await s.run(A, { cfg });
    expect(pcr08(s)).toEqual([A.initdata!.values['azure-vtpm']]);
  });

  it('a failure between the two writes leaves old and new reference values and the old INITDATA; the next run finishes', async () => {
    const s = await setup();
    await s.run(A);
    s.finishRollout();
    s.advance(HOUR);
    // The write of peer-pods-cm fails after its dry run passed (the API drops the connection).
    let armed = true;
    api!.options.onRequest = (rec) => {
      if (armed && rec.name === 'peer-pods-cm' && rec.verb === 'patch' && !rec.dryRun) {
        armed = false;
        api!.inject({ match: { method: 'PATCH', name: 'peer-pods-cm' }, fault: { kind: 'drop' }, times: 2 });
      }
    };
    const err = await s.run(B).catch((e: unknown) => e);
    api!.options.onRequest = undefined;
    api!.clearFaults();
    expect(err).toBeInstanceOf(PublishError);
    expect((err as Error).message).toMatch(
      /set INITDATA of ConfigMap openshift-sandboxed-containers-operator\/peer-pods-cm: .*the reference values already list the new initdata beside the old one, so pods keep attesting; 0 of 2 initdata write\(s\) done/,
    );
    expect(pcr08(s)).toEqual([B.initdata!.values['azure-vtpm'], A.initdata!.values['azure-vtpm']]);
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(A.initdata!.toml)).toBe(true);
    const retry = await s.run(B);
    expect(retry.plan.actions.some((a) => a.startsWith('update ConfigMap trustee'))).toBe(false);
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(B.initdata!.toml)).toBe(true);
  });

  it('INITDATA owned by another field manager is a conflict found before anything is written; --force-conflicts takes the key', async () => {
    const s = await setup({ peerPodsInitdataOwner: 'kubectl-edit' });
    const before = s.rvps().metadata.resourceVersion;
    const err = await s.run(A).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /preflight set INITDATA of ConfigMap openshift-sandboxed-containers-operator\/peer-pods-cm: .*conflict with "kubectl-edit"/,
    );
    expect((err as PublishError).hint).toMatch(/--force-conflicts/);
    expect(s.rvps().metadata.resourceVersion).toBe(before);
    expect(writes(api!)).toEqual([]);
    await s.run(A, { force: true });
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(A.initdata!.toml)).toBe(true);
  });

  it('our entry edited by someone else: exit-5 error naming it, nothing written; a dry run writes nothing either', async () => {
    const s = await setup();
    await s.run(A);
    const cm = api!.type('configmaps');
    const text = (s.rvps().data['reference-values.json'] as string).replace(A.initdata!.values['azure-vtpm']!, 'f'.repeat(64));
    api!.store.mergePatch(cm, TRUSTEE, 'rvps-reference-values', { data: { 'reference-values.json': text } }, { dryRun: false, fieldManager: 'kubectl-edit' });
    const n = writes(api!).length;
    const err = await s.run(B).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/rvps-reference-values: entry pcr08 was changed by someone else \(it lists f{64}\); nothing was written/);
    expect(writes(api!).length).toBe(n);
    // A server-side dry run of a clean change validates every write and stores nothing.
    api!.store.mergePatch(
      cm,
      TRUSTEE,
      'rvps-reference-values',
      { data: { 'reference-values.json': text.replace('f'.repeat(64), A.initdata!.values['azure-vtpm']!) } },
      { dryRun: false, fieldManager: 'kubectl-edit' },
    );
    const m = writes(api!).length;
    const dry = await s.run(B, { dryRun: true });
    expect(dry.applied?.report.referenceValues).toEqual({ written: false, why: [`initdata ${B.initdata!.id} replaces ${A.initdata!.id}`] });
    expect(writes(api!).length).toBe(m);
  });

  it("a concurrent writer of the RVPS list between observe and write: re-read, decide again, keep the other writer's entry", async () => {
    const s = await setup();
    let injected = false;
    api!.options.onRequest = (rec, store) => {
      if (!injected && rec.name === 'rvps-reference-values' && rec.verb === 'patch' && !rec.dryRun) {
        injected = true;
        const live = store.get(api!.type('configmaps'), TRUSTEE, 'rvps-reference-values') as any;
        const text = (live.data['reference-values.json'] as string).replace(/\n\]\n$/, ',\n  {"name": "pcr12", "value": ["1212"]}\n]\n');
        store.mergePatch(
          api!.type('configmaps'),
          TRUSTEE,
          'rvps-reference-values',
          { data: { 'reference-values.json': text } },
          { dryRun: false, fieldManager: 'trustee-admin' },
        );
      }
    };
    await s.run(A);
    expect(injected).toBe(true);
    // Two real patches of the list: the one refused by the precondition (409), then the retry.
    expect(api!.requests.filter((r) => r.name === 'rvps-reference-values' && r.verb === 'patch').map((r) => r.status)).toEqual([409, 200]);
    const list = JSON.parse(s.rvps().data['reference-values.json']);
    expect(list.map((e: any) => e.name)).toEqual(['pcr03', 'pcr11', 'pcr12', 'pcr08']);
  });

  it('refuses an RVPS list that is not a list, and missing objects, before any write', async () => {
    const s = await setup();
    api!.store.mergePatch(
      api!.type('configmaps'),
      TRUSTEE,
      'rvps-reference-values',
      { data: { 'reference-values.json': '{"pcr08": []}' } },
      { dryRun: false, fieldManager: 'x' },
    );
    await expect(s.run(A)).rejects.toThrow(/reference-values\.json is not a JSON list of reference values: it is an object/);
    api!.store.delete(api!.type('configmaps'), OSC, 'peer-pods-cm', false);
    await expect(s.run(A)).rejects.toThrow(/ConfigMap openshift-sandboxed-containers-operator\/peer-pods-cm does not exist; zeta-provision does not create it/);
    expect(writes(api!)).toEqual([]);
  });

  it('an RBAC denial (a Deployment not in the Role) is found by the dry run before the reference values change', async () => {
    const s = await setup();
    api!.store.create(
      api!.type('deployments'),
      APPS,
      { ...workload('Deployment', 'opa'), metadata: { name: 'opa', namespace: APPS } },
      { dryRun: false, fieldManager: 'kubectl' },
    );
    const cfg = parseConfigText(`initdata:\n  deployments: [${APPS}/pep, ${APPS}/opa]\n  parts:\n    policy.rego: { file: p.rego }\n`, 't.yaml', '/').initdata!;
    const err = await s.run(A, { cfg }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/get Deployment zeta-guard\/opa: .*forbidden/);
    expect((err as PublishError).hint).toMatch(/manifests\/overlays\/coco\/rbac\.yaml/);
    expect(writes(api!)).toEqual([]);
  });
});

describe('CoCo initdata: record and check (the up-to-date run)', () => {
  it('keeps its record in its own ConfigMap, unlabelled; check() names what is due on an unchanged payload; a converged record() writes nothing', async () => {
    const s = await setup();
    const cfg = parseConfigText(
      `initdata:\n  peerPodsConfigMap: true\n  deployments: [${APPS}/pep]\n  parts:\n    policy.rego: { file: p.rego }\n  referenceValues: { validDays: 40, refreshDays: 30 }\n`,
      't.yaml',
      '/',
    ).initdata!;
    const status = { outcome: 'applied' as const, conditions: [], message: '', drift: [] };
    const record = newRecord({ source: 's', digest: 'sha256:1', configHash: 'c', freshness: {} });
    const t = s.target(cfg);
    const observed = await t.observe();
    expect(observed.record).toBeUndefined();
    const applied = await t.apply(t.plan(A, observed), record, { dryRun: false });
    record.targets[t.id] = applied.details;
    expect(await t.record(record, status, observed)).toBe(true);
    const stored = api!.store.get(api!.type('configmaps'), APPS, 'zeta-provision-initdata') as any;
    expect(stored.metadata.labels).toEqual({ 'app.kubernetes.io/part-of': 'zeta-provision' });
    expect(JSON.parse(stored.data['record.json']).targets['coco-initdata']).toEqual({
      id: A.initdata!.id,
      values: { pcr08: A.initdata!.values['azure-vtpm'] },
      overlapping: [],
      encoded: A.initdata!.encoded,
    });
    s.finishRollout();
    const again = await t.observe();
    expect(again.record?.digest).toBe('sha256:1');
    expect(t.check(again.record!, again.live)).toEqual([]);
    const n = writes(api!).length;
    expect(await t.record(record, status, again)).toBe(false);
    expect(writes(api!).length).toBe(n);
    // 31 days later fewer than refreshDays remain: due, although nothing else changed.
    s.advance(31 * 24 * HOUR);
    expect(t.check(again.record!, (await t.observe()).live)).toEqual([
      { target: 'coco-initdata', object: 'ConfigMap/trustee-operator-system/rvps-reference-values', what: expect.stringMatching(/^expiration \S+ refreshed$/) },
    ]);
    // Someone put another initdata into peer-pods-cm: drift, named.
    api!.store.mergePatch(
      api!.type('configmaps'),
      OSC,
      'peer-pods-cm',
      { data: { INITDATA: B.initdata!.encoded } },
      { dryRun: false, fieldManager: 'kubectl-edit' },
    );
    expect(t.check(again.record!, (await t.observe()).live)).toContainEqual({
      target: 'coco-initdata',
      object: `ConfigMap/${OSC}/peer-pods-cm`,
      what: 'initdata differs from the applied one',
    });
    t.close();
  });

  it('rollback goes back to the earlier initdata through the same rotation; a record without the document is refused', async () => {
    const s = await setup();
    const t = s.target();
    const recA = newRecord({ source: 's', digest: 'sha256:a', configHash: 'c', freshness: {} });
    recA.targets[t.id] = (await t.apply(t.plan(A, await t.observe()), recA, { dryRun: false })).details;
    s.finishRollout();
    s.advance(HOUR);
    await t.apply(t.plan(B, await t.observe()), recA, { dryRun: false });
    s.advance(HOUR);
    const source = { record: recA, configMaps: [], ref: 'gen-a' };
    const observed = await t.observe();
    expect(t.rollbackProblem(source)).toBeUndefined();
    await t.rollback(source, observed);
    expect(pcr08(s)).toEqual([A.initdata!.values['azure-vtpm'], B.initdata!.values['azure-vtpm']]);
    expect(decodeInitdata(s.peerPods().data.INITDATA)?.equals(A.initdata!.toml)).toBe(true);
    const old = { record: { ...recA, targets: { 'coco-initdata': { id: 'x', values: {}, overlapping: [] } } }, configMaps: [], ref: 'gen-0' };
    expect(t.rollbackProblem(old)).toMatch(/holds no initdata document/);
    t.close();
  });
});
