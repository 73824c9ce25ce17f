/**
 * The manifests on the Kubernetes versions the README supports: every rendered object is validated,
 * offline, against the API types of the oldest and newest release each kustomization supports
 * (schemas committed under test/manifests/schemas, see scripts/k8s-schemas.mjs); the plain-sidecar
 * overlay for clusters without native sidecars is exactly the classic overlay with its sidecars moved;
 * the CronJob's NetworkPolicy lets it reach only DNS, the API server and the registry.
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { loadSchema, validateObject } from './k8s-schema.js';
import { podSpecs, render, type K8sObject } from './rendered.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered YAML is untyped by nature */
const tempDir = useTempDirs();

/** The supported range (README "Supported Kubernetes versions"); native sidecars need NATIVE_SIDECARS. */
const OLDEST = '1.27';
const NATIVE_SIDECARS = '1.29';
const NEWEST = '1.34';
/** The base and every overlay, found, not listed: a new overlay is validated without being named here. */
const KUSTOMIZATIONS = [
  'base',
  ...readdirSync(path.join(REPO_ROOT, 'manifests', 'overlays'))
    .sort()
    .map((d) => `overlays/${d}`),
];

/** `Owner/container` of every native sidecar: an init container with restartPolicy Always. */
function nativeSidecars(objects: K8sObject[]): string[] {
  return podSpecs(objects).flatMap(({ owner, spec }) =>
    (spec.initContainers ?? []).filter((c: any) => c.restartPolicy === 'Always').map((c: any) => `${owner}/${c.name}`),
  );
}

async function readme(): Promise<string> {
  return readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
}

describe.each(KUSTOMIZATIONS)('manifests/%s', (dir) => {
  it('validates, every rendered object, against the API of the oldest and newest Kubernetes it supports', async () => {
    const { objects } = await render(dir);
    const native = nativeSidecars(objects);
    const oldest = native.length > 0 ? NATIVE_SIDECARS : OLDEST;
    for (const version of [oldest, NEWEST]) {
      expect(
        objects.flatMap((o) => validateObject(loadSchema(version), o)),
        `Kubernetes ${version}`,
      ).toEqual([]);
    }
    if (native.length > 0) {
      // Before 1.29 a container has no restartPolicy: the sidecar would be an init container that never
      // ends, and the pod would never start. That is the only thing that keeps this overlay from 1.27.
      const errors = objects.flatMap((o) => validateObject(loadSchema(OLDEST), o));
      expect(errors).toEqual(native.map(() => expect.stringMatching(/\.initContainers\[\d+\]\.restartPolicy: unknown field in Kubernetes 1\.27/)));
    }
  });

  it('gives the CronJob a NetworkPolicy: no ingress; egress only to DNS, the API server and the registry', async () => {
    const { objects } = await render(dir);
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    // An add-on kustomization without the CronJob (overlays/coco: RBAC only) brings no policy of its own.
    if (!objects.some((o) => o.kind === 'CronJob')) {
      expect(policies).toEqual([]);
      return;
    }
    expect(policies).toHaveLength(1);
    const np = policies[0].spec;
    const selects = (labels: Record<string, string> = {}) => Object.entries(np.podSelector.matchLabels).every(([k, v]) => labels[k] === v);
    for (const o of objects) {
      const template =
        o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind) ? o.spec.template : undefined;
      if (template) expect(selects(template.metadata.labels), `${o.kind}/${o.metadata.name}`).toBe(o.kind === 'CronJob');
    }
    expect([...np.policyTypes].sort()).toEqual(['Egress', 'Ingress']);
    expect(np.ingress ?? []).toEqual([]);
    // No rule without a destination or without ports (either would allow everything).
    for (const rule of np.egress) {
      expect(rule.to?.length, JSON.stringify(rule)).toBeGreaterThan(0);
      expect(rule.ports?.length, JSON.stringify(rule)).toBeGreaterThan(0);
    }
    const [dns, api, registry] = np.egress;
    expect(dns).toEqual({
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    });
    expect(api.ports).toEqual([
      { protocol: 'TCP', port: 443 },
      { protocol: 'TCP', port: 6443 },
    ]);
    expect(registry.ports).toEqual([{ protocol: 'TCP', port: 443 }]);
    // Unset, the addresses are documentation ranges (RFC 5737): nothing is reachable until the operator sets them.
    expect(api.to).toEqual([{ ipBlock: { cidr: '192.0.2.1/32' } }]);
    expect(registry.to).toEqual([{ ipBlock: { cidr: '198.51.100.0/24' } }]);
    expect(np.egress).toHaveLength(3);
  });
});

describe('Kubernetes versions', () => {
  it("the README states the range the schemas check; the newest is the API client's own release", async () => {
    const text = await readme();
    expect(text).toContain(`Kubernetes ${OLDEST} to ${NEWEST}`);
    expect(text).toContain(`native sidecars, Kubernetes ≥ ${NATIVE_SIDECARS}`);
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(loadSchema(NEWEST).source).toMatchObject({ package: '@kubernetes/client-node', version: pkg.dependencies['@kubernetes/client-node'] });
    for (const v of [OLDEST, NATIVE_SIDECARS, NEWEST]) expect(loadSchema(v).kubernetes).toBe(v);
  });

  it('the validator rejects unknown fields, wrong types, missing required fields and kinds a release does not serve', async () => {
    const { objects } = await render('base');
    const schema = loadSchema(NEWEST);
    const cronJob = objects.find((o) => o.kind === 'CronJob');
    const pod = (o: any) => o.spec.jobTemplate.spec.template.spec;
    const mutate = (f: (o: any) => void) => {
      const copy = structuredClone(cronJob);
      f(copy);
      return validateObject(schema, copy);
    };
    expect(validateObject(schema, cronJob)).toEqual([]);
    expect(mutate((o) => (o.spec.shedule = o.spec.schedule))).toEqual([
      'CronJob/zeta-provision.spec.shedule: unknown field in Kubernetes 1.34 (V1CronJobSpec)',
    ]);
    expect(mutate((o) => (o.spec.successfulJobsHistoryLimit = '3'))).toEqual([expect.stringContaining('spec.successfulJobsHistoryLimit: expected a number')]);
    expect(mutate((o) => delete pod(o).containers[0].name)).toEqual([expect.stringContaining('.containers[0].name: required (V1Container)')]);
    expect(mutate((o) => (pod(o).containers[0].env = { TMPDIR: '/tmp' }))).toEqual([expect.stringContaining('.containers[0].env: expected a list')]);
    expect(mutate((o) => (o.apiVersion = 'batch/v1beta1'))).toEqual([expect.stringContaining('batch/v1beta1 CronJob is not served')]);
  });
});

/** Every leaf of a JSON value as path → value (paths like the validator's: `.spec.x[0].y`). */
function leaves(value: unknown, at = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) leaves(v, Array.isArray(value) ? `${at}[${k}]` : `${at}.${k}`, out);
  else out.set(at, value);
  return out;
}

/**
 * kubectl of one minor release (the kubectl package ships kubectl.1.27 … beside its dispatcher). Its
 * `set env --local` decodes an object into that release's Go API types and prints it again: a field
 * the release does not have is dropped on the way. An oracle for the schema files that shares no code
 * with them.
 */
async function kubectlOf(minor: string): Promise<string> {
  await requireProgram('kubectl', 'kubectl');
  const dir = path.dirname(realpathSync((await execa('sh', ['-c', 'command -v kubectl'])).stdout.trim()));
  const binary = path.join(dir, `kubectl.${minor}`);
  if (!existsSync(binary))
    throw new Error(`${binary} is missing: the Debian package "kubectl" from Google's apt repository ships one kubectl per minor release`);
  return binary;
}

async function droppedByKubectl(kubectl: string, object: K8sObject): Promise<string[]> {
  const { stdout } = await execa(kubectl, ['set', 'env', '--local', '-f', '-', 'ZP_SCHEMA_PROBE=1', '-o', 'json'], {
    input: JSON.stringify(object),
    env: { HOME: '/nonexistent' },
  });
  const after = leaves(JSON.parse(stdout));
  return [...leaves(object)].filter(([k, v]) => after.get(k) !== v).map(([k]) => k);
}

describe("the schemas agree with kubectl's own API types", () => {
  it.each(KUSTOMIZATIONS)('manifests/%s: kubectl 1.27 drops exactly the fields the 1.27 schema calls unknown; kubectl 1.33 drops none', async (dir) => {
    const { objects } = await render(dir);
    const [old, recent] = [await kubectlOf(OLDEST), await kubectlOf('1.33')];
    for (const object of objects.filter((o) => ['CronJob', 'Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind))) {
      const name = `${object.kind}/${object.metadata.name}`;
      const unknown = validateObject(loadSchema(OLDEST), object)
        .filter((e) => e.includes(': unknown field'))
        .map((e) => e.slice(name.length, e.indexOf(': unknown field')));
      const dropped = await droppedByKubectl(old, object);
      expect(
        dropped.every((leaf) => unknown.some((u) => leaf === u || leaf.startsWith(`${u}.`) || leaf.startsWith(`${u}[`))),
        `${name}: ${dropped}`,
      ).toBe(true);
      expect(
        unknown.every((u) => dropped.some((leaf) => leaf === u || leaf.startsWith(`${u}.`) || leaf.startsWith(`${u}[`))),
        `${name}: ${unknown}`,
      ).toBe(true);
      expect(await droppedByKubectl(recent, object), name).toEqual([]);
    }
  });
});

describe('manifests/overlays/classic-plain-sidecars', () => {
  it('is the classic overlay with each native sidecar moved to the end of containers, without restartPolicy', async () => {
    const native = (await render('overlays/classic')).objects;
    const plain = (await render('overlays/classic-plain-sidecars')).objects;
    expect(nativeSidecars(native).sort()).toEqual(['Deployment/nginx/reload', 'Deployment/opa/policy-push']);
    expect(nativeSidecars(plain)).toEqual([]);
    const expected = structuredClone(native);
    for (const { spec } of podSpecs(expected)) {
      const sidecars = (spec.initContainers ?? []).filter((c: any) => c.restartPolicy === 'Always');
      if (sidecars.length === 0) continue;
      spec.initContainers = spec.initContainers.filter((c: any) => !sidecars.includes(c));
      if (spec.initContainers.length === 0) delete spec.initContainers;
      for (const c of sidecars) delete c.restartPolicy;
      spec.containers.push(...sidecars);
    }
    expect(plain).toEqual(expected);
  });
});

describe('README network policy patch', () => {
  it('sets the API server and registry addresses of the rendered NetworkPolicy', async () => {
    const text = await readme();
    const start = text.indexOf('### Network policy');
    expect(start).toBeGreaterThan(0);
    const block = /```yaml\n([\s\S]*?)```/.exec(text.slice(start))![1]!;
    const kustomization = parse(block);
    // The README's overlay, pointed at the gematik overlay in this checkout.
    const dir = await tempDir();
    await mkdir(path.join(dir, 'overlay'));
    kustomization.resources = [path.relative(path.join(dir, 'overlay'), path.join(REPO_ROOT, 'manifests', 'overlays', 'gematik'))];
    await writeFile(path.join(dir, 'overlay', 'kustomization.yaml'), JSON.stringify(kustomization));
    const { objects } = await render(path.join(dir, 'overlay'));
    const [, api, registry] = objects.find((o) => o.kind === 'NetworkPolicy').spec.egress;
    const values = (kustomization.patches[0].patch as string).match(/\d+\.\d+\.\d+\.\d+\/\d+/g);
    expect([api.to[0].ipBlock.cidr, registry.to[0].ipBlock.cidr]).toEqual(values);
    expect(values).not.toContain('192.0.2.1/32');
  });
});
