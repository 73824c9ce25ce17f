/**
 * The Role in manifests/base/rbac.yaml against what the code does: the code runs with exactly that
 * Role in the API double (every request authorized or denied by it), and the permissions the runs
 * needed must equal the permissions the Role grants — no more, no less.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { ANNOTATION, MANAGER } from '../../src/publish/manifest.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { NS, seedWorkloads, writeConfig, writeKubeconfig, writePayload } from '../support/kube-api/cluster.js';
import { rulesFromManifest, startKubeApi, type KubeApi, type PolicyRule, type RecordedRequest } from '../support/kube-api/index.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const RBAC = path.join(REPO_ROOT, 'manifests', 'base', 'rbac.yaml');
const REAL = path.join(process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '../shared/realworld'), 'gematik-test');

/** The config a kustomization's CronJob mounts, minus verification and volume (not API concerns; need real payload signatures). */
async function manifestsConfig(dir: string, configFile: string): Promise<{ config: string; consumers: string[]; names: string[] }> {
  const doc = parse(await readFile(path.join(REPO_ROOT, 'manifests', configFile), 'utf8'));
  // Not API concerns here: where the payload comes from and how it is verified, the volume, and the
  // namespace (the kubeconfig's, where the double's RoleBinding is).
  for (const key of ['source', 'image', 'verify', 'volume', 'namespace']) delete doc[key];
  const consumers = doc.configMaps.flatMap((c: { consumers?: string[] }) => c.consumers ?? []);
  return { config: await writeConfig(dir, stringify(doc)), consumers, names: doc.configMaps.map((c: { name: string }) => c.name) };
}

/** A Role as the set of single permissions it grants: `group/resource verb name` (`*` = any name). */
function grants(rules: PolicyRule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules)
    for (const g of r.apiGroups)
      for (const res of r.resources)
        for (const v of r.verbs) for (const n of r.resourceNames?.length ? r.resourceNames : ['*']) out.add(`${g}/${res} ${v} ${n}`);
  return out;
}

/** The permissions a set of requests needed, in the same form, matched to the rule that allowed each. */
function needed(requests: RecordedRequest[], rules: PolicyRule[]): Set<string> {
  const out = new Set<string>();
  for (const q of requests) {
    for (const a of q.authz) {
      const named = rules.some(
        (r) =>
          r.resourceNames?.length &&
          r.apiGroups.includes(a.group) &&
          r.resources.includes(a.resource) &&
          r.verbs.includes(a.verb) &&
          a.name &&
          r.resourceNames.includes(a.name),
      );
      out.add(`${a.group}/${a.resource} ${a.verb} ${named ? a.name : '*'}`);
    }
  }
  return out;
}

/** The Role as a kustomization renders it (an overlay's patch applied to the base's Role). */
async function renderedRole(kustomization: string): Promise<PolicyRule[]> {
  await requireProgram('kubectl', 'kubectl');
  const file = path.join(await tempDir(), 'rendered.yaml');
  await writeFile(file, (await execa('kubectl', ['kustomize', path.join(REPO_ROOT, 'manifests', kustomization)])).stdout);
  return rulesFromManifest(file, 'zeta-provision');
}

async function scenario(rules: PolicyRule[], configFile = 'base/config.yaml') {
  api = await startKubeApi({ rbac: { [NS]: rules }, token: 't0ken-rbac' });
  const dir = await tempDir();
  const { config, consumers, names } = await manifestsConfig(dir, configFile);
  seedWorkloads(api, consumers);
  const payload = await writePayload(dir, { 'nginx/nginx.conf': 'events {}\n', 'opa/policy.rego': 'package a\n' });
  const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS, token: 't0ken-rbac' });
  const run = (extra: string[] = []) =>
    runCli(['run', '--config', config, '--source', `dir:${payload}`, '--kubeconfig', kubeconfig, '--output', 'json', ...extra]);
  return { run, payload, names, consumers };
}

// The base's Role serves its own config (consumer deployment/opa); the classic overlay's config has no
// consumers (its nginx and OPA reload through the watch sidecar), so its Role must not grant rollouts.
describe.each([
  { kustomization: 'base', configFile: 'base/config.yaml' },
  { kustomization: 'overlays/classic', configFile: 'overlays/classic/config.yaml' },
])('RBAC of manifests/$kustomization', ({ kustomization, configFile }) => {
  it('is exactly what fresh apply, a change racing a concurrent writer (409), and a no-change run need', async () => {
    const rules = await renderedRole(kustomization);
    const s = await scenario(rules, configFile);
    expect((await s.run()).exitCode).toBe(0);
    const firstRun = api!.requests.length;

    // A concurrent writer (kubectl label) changes each target between our LIST and our apply.
    const raced = new Set<string>();
    api!.options.onRequest = (rec, store) => {
      if (rec.verb === 'patch' && s.names.includes(rec.name!) && !raced.has(rec.name!)) {
        raced.add(rec.name!);
        store.mergePatch(
          api!.type('configmaps'),
          NS,
          rec.name!,
          { metadata: { labels: { team: 'policy' } } },
          { dryRun: false, fieldManager: 'kubectl-label' },
        );
      }
    };
    await writeFile(path.join(s.payload, 'opa/policy.rego'), 'package b\n');
    await writeFile(path.join(s.payload, 'nginx/nginx.conf'), 'events { worker_connections 64; }\n');
    const changed = await s.run();
    expect(changed.exitCode, changed.stdout).toBe(0);
    for (const name of s.names) {
      expect(
        api!.requests
          .slice(firstRun)
          .filter((q) => q.name === name)
          .map((q) => `${q.verb}:${q.status}`),
      ).toEqual(['patch:409', 'get:200', 'patch:200']);
    }
    expect(api!.store.peek(api!.type('configmaps'), NS, 'opa-policy')!.data['policy.rego']).toBe('package b\n');
    expect((await s.run()).exitCode).toBe(0);

    api!.options.onRequest = undefined;
    expect(api!.requests.filter((q) => q.status === 403)).toEqual([]);
    expect([...needed(api!.requests, rules)].sort()).toEqual([...grants(rules)].sort());
  });
});

describe('RBAC denial', () => {
  it('a denied request fails the run with exit 5 and names the verb and resource', async () => {
    const rules = (await rulesFromManifest(RBAC, 'zeta-provision')).filter((r) => !r.resources.includes('deployments'));
    const s = await scenario(rules);
    const r = await s.run();
    expect(r.exitCode, r.stdout).toBe(5);
    const report = JSON.parse(r.stdout);
    expect(report.published.kube.applied.map((a: { name: string }) => a.name)).toEqual(['nginx-config', 'opa-policy']);
    expect(report.published.kube.pending).toEqual([
      {
        kind: 'Deployment',
        name: 'opa',
        step: 'restart',
        error: expect.stringContaining('cannot get resource "deployments" in API group "apps" in the namespace "zeta"'),
      },
    ]);
    expect(report.error.message).toContain('cannot get resource "deployments"');
    expect(report.error.hint).toContain('rbac.yaml');
    // The run's failure is on record for `kubectl describe cm zeta-provision-status`.
    const events = api!.store.list(api!.type('events'), NS, undefined).items.map((e: { reason: string; type: string }) => `${e.type} ${e.reason}`);
    expect(events).toEqual(['Warning PublishFailed']);
  });
});

/** The gematik profile's API part: its processors' ConfigMaps and consumers (verification, TSL, TPM and the volume need the whole real payload and are not API concerns). */
async function gematikConfig(dir: string): Promise<{ config: string; names: string[]; consumers: string[] }> {
  const doc = parse(await readFile(path.join(REPO_ROOT, 'config', 'gematik.yaml'), 'utf8'));
  delete doc.verify;
  delete doc.volume;
  delete doc.process.tsl;
  delete doc.process.tpm;
  const consumers = doc.configMaps.flatMap((c: { consumers?: string[] }) => c.consumers ?? []);
  return { config: await writeConfig(dir, stringify(doc)), consumers, names: doc.configMaps.map((c: { name: string }) => c.name) };
}

describe.skipIf(!existsSync(REAL))('RBAC of manifests/overlays/gematik with the gematik profile', () => {
  it('is exactly what fresh apply (with both rollouts), an update racing a concurrent writer (409) and a no-change run need', async () => {
    // The Role as the overlay renders it (the base's Role with the overlay's patch applied).
    await requireProgram('kubectl', 'kubectl');
    const dir = await tempDir();
    const rendered = path.join(dir, 'gematik.yaml');
    await writeFile(rendered, (await execa('kubectl', ['kustomize', path.join(REPO_ROOT, 'manifests', 'overlays', 'gematik')])).stdout);
    const rules = await rulesFromManifest(rendered, 'zeta-provision');

    api = await startKubeApi({ rbac: { [NS]: rules }, token: 't0ken-gematik' });
    const { config, names, consumers } = await gematikConfig(dir);
    expect(names).toEqual(['opa-policy-signer', 'pep-ti-roots']);
    expect(consumers).toEqual(['deployment/opa', 'deployment/pep']);
    seedWorkloads(api, consumers);
    const payload = path.join(dir, 'payload');
    await cp(path.join(REAL, 'policy-engine-bundle-keys'), path.join(payload, 'policy-engine-bundle-keys'), { recursive: true });
    await cp(path.join(REAL, 'roots.json'), path.join(payload, 'roots.json'));
    const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS, token: 't0ken-gematik' });
    const run = () => runCli(['run', '--config', config, '--source', `dir:${payload}`, '--kubeconfig', kubeconfig, '--output', 'json', '--force']);

    const first = await run();
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const restarted = api.requests.filter((q) => q.resource === 'deployments' && q.verb === 'patch' && q.status === 200).map((q) => q.name);
    expect(restarted.sort()).toEqual(['opa', 'pep']);
    const firstRun = api.requests.length;

    // Both ConfigMaps hold other content than the payload gives (as after a payload change; written
    // under our own field manager, as an earlier run would have), and a concurrent writer changes each
    // between our LIST and our apply.
    for (const name of names) {
      const data = Object.fromEntries(Object.keys(api.store.peek(api.type('configmaps'), NS, name)!.data ?? {}).map((k) => [k, 'older content\n']));
      api.store.mergePatch(
        api.type('configmaps'),
        NS,
        name,
        { data, metadata: { annotations: { [ANNOTATION.contentHash]: 'older-content' } } },
        { dryRun: false, fieldManager: MANAGER },
      );
    }
    const raced = new Set<string>();
    api.options.onRequest = (rec, store) => {
      if (rec.verb === 'patch' && names.includes(rec.name!) && !raced.has(rec.name!)) {
        raced.add(rec.name!);
        store.mergePatch(api!.type('configmaps'), NS, rec.name!, { metadata: { labels: { team: 'trust' } } }, { dryRun: false, fieldManager: 'kubectl-label' });
      }
    };
    const repaired = await run();
    expect(repaired.exitCode, repaired.stdout).toBe(0);
    for (const name of names) {
      expect(
        api.requests
          .slice(firstRun)
          .filter((q) => q.name === name)
          .map((q) => `${q.verb}:${q.status}`),
      ).toEqual(['patch:409', 'get:200', 'patch:200']);
    }
    api.options.onRequest = undefined;
    expect((await run()).exitCode).toBe(0);

    expect(api.requests.filter((q) => q.status === 403)).toEqual([]);
    expect([...needed(api.requests, rules)].sort()).toEqual([...grants(rules)].sort());
  });
});
