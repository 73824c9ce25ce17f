/**
 * End to end in one pod's worth of processes: a registry holding a signed image → `zeta-provision run`
 * publishes nginx's config into the volume and the ConfigMaps through the Kubernetes API (the
 * in-process API double, authorizing every request with the Role in manifests/base/rbac.yaml) → the
 * `watch` sidecar validates and reloads a real nginx. Then tampered images (re-signed by a foreign
 * key; the good signature copied onto other content) → exit 3, nothing published: the double saw no
 * ConfigMap write and no rollout, only reads and the failure record; nginx keeps serving the last good
 * config.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { DirectoryHasher } from '../../src/watch/hash.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { NS, seedWorkloads, writeKubeconfig } from '../support/kube-api/cluster.js';
import { rulesFromManifest, startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { requireProgram } from '../support/programs.js';
import { pushSignedLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';
import { freePort, httpGet, nginxConfig, publish, servesEventually, startNginx, startWatch, type Nginx, type WatchProcess } from '../watch/helpers.js';

const tempDir = useTempDirs();
const TOKEN = 't0ken-e2e';
const LABELS = { 'app.kubernetes.io/managed-by': 'zeta-provision', 'app.kubernetes.io/name': 'zeta-provision', 'app.kubernetes.io/instance': 'zeta-provision' };

/**
 * A signed example (fresh throwaway keys) whose nginx.conf serves `body` on our port: the committed
 * fixture listens on 8080, which a shared test machine cannot promise, so its script is re-run with
 * the nginx config swapped. Returns the OPA policy the script signs (the content its ConfigMap must get).
 */
async function makeSignedExample(out: string, nginxConf: string): Promise<{ policy: string }> {
  await requireProgram('openssl', 'openssl');
  const script = await readFile(path.join(REPO_ROOT, 'fixtures', 'make-example.sh'), 'utf8');
  const heredoc = /cat >"\$payload\/nginx\/nginx\.conf" <<'NGINX'\n[\s\S]*?\nNGINX\n/;
  const rego = /<<'REGO'\n([\s\S]*?\n)REGO\n/.exec(script);
  if (!heredoc.test(script) || !rego) throw new Error('fixtures/make-example.sh no longer writes nginx.conf and policy.rego from heredocs; update this test');
  const patched = script.replace(heredoc, () => `cat >"$payload/nginx/nginx.conf" <<'NGINX'\n${nginxConf}NGINX\n`);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'make-example.sh'), patched);
  await execa('bash', [path.join(out, 'make-example.sh'), out]);
  return { policy: rego[1]! };
}

/**
 * The example config for a cluster: nginx's files also go to the volume (where the sidecar watches),
 * OPA rolls out on a policy change, and the namespace is the one the Role is bound in — the layout
 * manifests/base/config.yaml and rbac.yaml describe.
 */
async function clusterConfig(file: string): Promise<void> {
  const doc = parseYaml(await readFile(path.join(REPO_ROOT, 'fixtures', 'example', 'zeta-provision.yaml'), 'utf8'));
  doc.namespace = NS;
  doc.volume.files = [...doc.volume.files, 'nginx/**'];
  const opa = doc.configMaps.find((c: { name: string }) => c.name === 'opa-policy');
  const nginx = doc.configMaps.find((c: { name: string }) => c.name === 'nginx-config');
  if (!opa || !nginx) throw new Error('fixtures/example/zeta-provision.yaml no longer has ConfigMaps nginx-config and opa-policy; update this test');
  opa.consumers = ['deployment/opa'];
  await writeFile(file, stringifyYaml(doc));
}

/** The content hash as the annotation documents it: per key (sorted) `key\0length\0bytes`, SHA-256. */
function contentHash(files: Record<string, string>): string {
  const h = createHash('sha256');
  for (const key of Object.keys(files).sort()) {
    const bytes = Buffer.from(files[key]!);
    h.update(key).update('\0').update(String(bytes.length)).update('\0').update(bytes);
  }
  return 'sha256:' + h.digest('hex');
}

describe('registry → run → volume + Kubernetes API → watch → nginx', () => {
  let registry: TestRegistry;
  let api: KubeApi;
  let nginx: Nginx | undefined;
  let watch: WatchProcess | undefined;
  beforeAll(async () => {
    registry = await startRegistry();
    api = await startKubeApi({
      rbac: { [NS]: await rulesFromManifest(path.join(REPO_ROOT, 'manifests', 'base', 'rbac.yaml'), 'zeta-provision') },
      token: TOKEN,
    });
  });
  afterAll(async () => {
    await watch?.terminate();
    await nginx?.stop();
    await api?.stop();
    await registry?.stop();
  });

  it('reloads nginx and applies the ConfigMaps with one rollout; a tampered image changes nothing anywhere', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const prefix = path.join(dir, 'nginx');
    const port = await freePort();
    const repo = `${registry.host}/zeta/provisioning`;
    const configMaps = () => api.store.list(api.type('configmaps'), NS, undefined).items as any[];
    const configMap = (name: string) => api.store.peek(api.type('configmaps'), NS, name) as any;
    const opaDeployment = () => api.store.peek(api.type('deployments'), NS, 'opa') as any;
    const statusRecord = () => JSON.parse(configMap('zeta-provision-status').data['status.json']);
    const requestsSince = (from: number) => api.requests.slice(from).map((q) => `${q.verb} ${q.resource}${q.name ? `/${q.name}` : ''} ${q.status}`);
    const eventReasons = () =>
      (api.store.list(api.type('events'), NS, undefined).items as any[])
        .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
        .map((e) => `${e.type} ${e.reason} ${e.involvedObject.name}`);

    const good = path.join(dir, 'good');
    const goodConf = nginxConfig(prefix, port, 'zeta e2e v1\n');
    const { policy } = await makeSignedExample(good, goodConf);
    await pushSignedLayout(path.join(good, 'oci'), 'latest', repo, '1.0');
    const config = path.join(good, 'zeta-provision.yaml');
    await clusterConfig(config);
    const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS, token: TOKEN });
    // The consumer as the operator's own manifests created it: never rolled out by us (generation 1).
    seedWorkloads(api, ['deployment/opa']);
    const run = () =>
      runCli([
        'run',
        '--config',
        config,
        '--source',
        `${repo}:1.0`,
        '--insecure-registry',
        registry.host,
        '--volume',
        volume,
        '--kubeconfig',
        kubeconfig,
        '--output',
        'json',
      ]);

    // The pod before the first run: nginx with a bootstrap config in the volume, the sidecar watching.
    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'bootstrap\n') });
    nginx = await startNginx(prefix, path.join(volume, 'nginx', 'nginx.conf'));
    await servesEventually(port, 'bootstrap\n');
    // never: nginx started just after the bootstrap publish, where auto would HUP it once at start.
    watch = startWatch([
      '--dir',
      volume,
      '--on-start',
      'never',
      '--validate',
      nginx.testCommand,
      '--signal',
      'HUP',
      '--pid-file',
      nginx.pidFile,
      '--debounce-ms',
      '200',
    ]);
    await watch.line('watching');

    // --- the good image --------------------------------------------------------------------------
    const first = await run();
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report).toMatchObject({ outcome: 'applied', image: { checked: true, identity: 'provisioning@example.org' } });
    const digest: string = report.source.digest;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The ConfigMaps in the cluster: the verified content, our labels, the content hash of exactly that content.
    expect(
      configMaps()
        .map((c) => c.metadata.name)
        .sort(),
    ).toEqual(['nginx-config', 'opa-policy', 'zeta-provision-status']);
    const expected = { 'nginx-config': { 'nginx.conf': goodConf }, 'opa-policy': { 'policy.rego': policy } };
    for (const [name, data] of Object.entries(expected)) {
      const cm = configMap(name);
      expect(cm.data, name).toEqual(data);
      expect(cm.binaryData, name).toBeUndefined();
      expect(cm.metadata.labels, name).toEqual(LABELS);
      expect(cm.metadata.annotations, name).toMatchObject({
        'zeta-provision/content-hash': contentHash(data),
        'zeta-provision/source': `${repo}:1.0`,
        'zeta-provision/source-digest': digest,
      });
    }
    // One LIST, both ConfigMaps created by server-side apply (each name looked up first: one that is
    // not ours would be refused), exactly one rollout of the one consumer, then the run's record.
    expect(requestsSince(0)).toEqual([
      'list configmaps 200',
      'get configmaps/nginx-config 404',
      'patch configmaps/nginx-config 201',
      'get configmaps/opa-policy 404',
      'patch configmaps/opa-policy 201',
      'get deployments/opa 200',
      'patch deployments/opa 200',
      'patch configmaps/zeta-provision-status 201',
      'create events 201',
    ]);
    const applies = api.requests.filter((q) => q.verb === 'patch' && q.resource === 'configmaps');
    expect(applies.every((q) => q.contentType === 'application/apply-patch+yaml' && q.fieldManager === 'zeta-provision')).toBe(true);
    // The rollout is stamped with the hash of what the consumer reads.
    const inputsHash =
      'sha256:' +
      createHash('sha256')
        .update(`ConfigMap/opa-policy=${contentHash(expected['opa-policy'])}`)
        .digest('hex');
    expect(opaDeployment().metadata.generation).toBe(2);
    expect(opaDeployment().spec.template.metadata.annotations).toEqual({ 'zeta-provision/inputs-hash': inputsHash });
    // The run's record: applied, this digest, the consumer's inputs; the Event says Provisioned.
    expect(statusRecord()).toMatchObject({ outcome: 'applied', applied: { digest, targets: { kube: { consumers: { 'deployment/opa': inputsHash } } } } });
    expect(eventReasons()).toEqual(['Normal Provisioned zeta-provision-status']);

    // The volume got the same nginx.conf, and the sidecar reloaded nginx with it.
    expect(await readFile(path.join(volume, 'nginx', 'nginx.conf'), 'utf8')).toBe(goodConf);
    const goodHash = await new DirectoryHasher(volume).hash();
    expect(await watch.line('reloaded')).toMatchObject({ hash: goodHash, validated: true });
    await servesEventually(port, 'zeta e2e v1\n');

    // --- tampered images -----------------------------------------------------------------------
    // 1: other content, signed with a key that does not chain to the pinned chain.
    const foreign = path.join(dir, 'foreign');
    await makeSignedExample(foreign, nginxConfig(prefix, port, 'evil\n'));
    // 2: the same other content, carrying the good image's signature.
    const swapped = path.join(dir, 'swapped');
    await cp(path.join(foreign, 'oci'), path.join(swapped, 'oci'), { recursive: true });
    await cp(path.join(good, 'oci', 'blobs'), path.join(swapped, 'oci', 'blobs'), { recursive: true });
    const index = JSON.parse(await readFile(path.join(swapped, 'oci', 'index.json'), 'utf8'));
    const goodIndex = JSON.parse(await readFile(path.join(good, 'oci', 'index.json'), 'utf8'));
    const ref = (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '';
    const evilImage = index.manifests.find((m: { annotations?: Record<string, string> }) => ref(m) === 'latest');
    const goodSig = goodIndex.manifests.find((m: { annotations?: Record<string, string> }) => ref(m).endsWith('.sig'));
    index.manifests = [evilImage, { ...goodSig, annotations: { 'org.opencontainers.image.ref.name': `sha256-${evilImage.digest.slice(7)}.sig` } }];
    await writeFile(path.join(swapped, 'oci', 'index.json'), JSON.stringify(index));

    const goodObjects = JSON.stringify([configMap('nginx-config'), configMap('opa-policy'), opaDeployment()]);
    for (const tampered of [foreign, swapped]) {
      await pushSignedLayout(path.join(tampered, 'oci'), 'latest', repo, '1.0');
      const before = api.requests.length;
      const r = await run();
      expect(r.exitCode, `${tampered}: ${r.stdout}`).toBe(3);
      const failed = JSON.parse(r.stdout);
      expect(failed.error.message).toMatch(/image signature/);
      expect(failed.source.digest).not.toBe(digest);

      // The API saw the LIST and at most the failure record (written when it says something new), nothing else.
      const seen = requestsSince(before);
      expect(seen[0], tampered).toBe('list configmaps 200');
      expect(
        seen.slice(1).every((q) => q === 'patch configmaps/zeta-provision-status 200' || q === 'create events 201'),
        seen.join(', '),
      ).toBe(true);
      expect(JSON.stringify([configMap('nginx-config'), configMap('opa-policy'), opaDeployment()])).toBe(goodObjects);
      // The record says this run failed verification and still names the good payload as applied.
      expect(statusRecord()).toMatchObject({
        outcome: 'failed',
        message: expect.stringMatching(/image signature/),
        applied: { digest, targets: { kube: { consumers: { 'deployment/opa': inputsHash } } } },
      });
      expect(statusRecord().conditions.find((c: { type: string }) => c.type === 'Verified')).toMatchObject({ status: 'False', reason: 'VerificationFailed' });

      // The volume is untouched and nginx serves the last good config.
      expect(await new DirectoryHasher(volume).hash()).toBe(goodHash);
      expect(await httpGet(port)).toBe('zeta e2e v1\n');
    }
    const reasons = eventReasons();
    expect(reasons.slice(0, 2)).toEqual(['Normal Provisioned zeta-provision-status', 'Warning VerificationFailed zeta-provision-status']);
    expect(reasons.slice(2).every((r) => r === 'Warning VerificationFailed zeta-provision-status')).toBe(true);
    // Every request the runs made was one the Role grants.
    expect(api.requests.filter((q) => q.status === 401 || q.status === 403)).toEqual([]);
    expect(watch.lines.filter((l) => l.msg === 'reloaded').map((l) => l.hash)).toEqual([goodHash]);
    expect(await watch.terminate()).toBe(0);
  });
});
