/**
 * End to end in one pod's worth of processes: a registry holding a signed image → `zeta-provision run`
 * (ConfigMaps to --kube-out) publishes nginx's config into the volume → the `watch` sidecar validates
 * and reloads a real nginx. Then tampered images (re-signed by a foreign key; the good signature
 * copied onto other content) → exit 3, nothing published, nginx keeps serving the last good config.
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryHasher } from '../../src/watch/hash.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { pushSignedLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';
import { freePort, httpGet, nginxConfig, publish, servesEventually, startNginx, startWatch, type Nginx, type WatchProcess } from '../watch/helpers.js';

const tempDir = useTempDirs();

/**
 * A signed example (fresh throwaway keys) whose nginx.conf serves `body` on our port: the committed
 * fixture listens on 8080, which a shared test machine cannot promise, so its script is re-run with
 * the nginx config swapped.
 */
async function makeSignedExample(out: string, nginxConf: string): Promise<void> {
  await requireProgram('openssl', 'openssl');
  const script = await readFile(path.join(REPO_ROOT, 'fixtures', 'make-example.sh'), 'utf8');
  const heredoc = /cat >"\$payload\/nginx\/nginx\.conf" <<'NGINX'\n[\s\S]*?\nNGINX\n/;
  if (!heredoc.test(script)) throw new Error('fixtures/make-example.sh no longer writes nginx.conf from a heredoc; update this test');
  const patched = script.replace(heredoc, () => `cat >"$payload/nginx/nginx.conf" <<'NGINX'\n${nginxConf}NGINX\n`);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'make-example.sh'), patched);
  await execa('bash', [path.join(out, 'make-example.sh'), out]);
}

describe('registry → run → volume → watch → nginx', () => {
  let registry: TestRegistry;
  let nginx: Nginx | undefined;
  let watch: WatchProcess | undefined;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await watch?.terminate();
    await nginx?.stop();
    await registry?.stop();
  });

  it('reloads nginx with the verified payload, and keeps it serving that when a tampered image arrives', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const prefix = path.join(dir, 'nginx');
    const port = await freePort();
    const repo = `${registry.host}/zeta/provisioning`;

    const good = path.join(dir, 'good');
    await makeSignedExample(good, nginxConfig(prefix, port, 'zeta e2e v1\n'));
    await pushSignedLayout(path.join(good, 'oci'), 'latest', repo, '1.0');
    // The example config, with nginx's files also going to the volume (where the sidecar watches).
    const exampleConfig = await readFile(path.join(REPO_ROOT, 'fixtures', 'example', 'zeta-provision.yaml'), 'utf8');
    const config = exampleConfig.replace('files: ["keycloak-data/**"]', 'files: ["keycloak-data/**", "nginx/**"]');
    expect(config).not.toBe(exampleConfig);
    await writeFile(path.join(good, 'zeta-provision.yaml'), config);
    const run = () =>
      runCli(['run', '--config', path.join(good, 'zeta-provision.yaml'), '--source', `${repo}:1.0`, '--insecure-registry', registry.host, '--volume', volume, '--kube-out', path.join(dir, 'kube'), '--output', 'json']);

    // The pod before the first run: nginx with a bootstrap config in the volume, the sidecar watching.
    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'bootstrap\n') });
    nginx = await startNginx(prefix, path.join(volume, 'nginx', 'nginx.conf'));
    await servesEventually(port, 'bootstrap\n');
    watch = startWatch(['--dir', volume, '--validate', nginx.testCommand, '--signal', 'HUP', '--pid-file', nginx.pidFile, '--debounce-ms', '200']);
    await watch.line('watching');

    const first = await run();
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ outcome: 'applied', image: { checked: true, identity: 'provisioning@example.org' } });
    const goodHash = await new DirectoryHasher(volume).hash();
    expect(await watch.line('reloaded')).toMatchObject({ hash: goodHash, validated: true });
    await servesEventually(port, 'zeta e2e v1\n');
    // The ConfigMaps went to --kube-out, the API double's place in this test.
    expect((await readdir(path.join(dir, 'kube'))).sort().join(' ')).toMatch(/nginx-config.*opa-policy/);

    // Tampered image 1: other content, signed with a key that does not chain to the pinned chain.
    const foreign = path.join(dir, 'foreign');
    await makeSignedExample(foreign, nginxConfig(prefix, port, 'evil\n'));
    // Tampered image 2: the same other content, carrying the good image's signature.
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

    for (const tampered of [foreign, swapped]) {
      await pushSignedLayout(path.join(tampered, 'oci'), 'latest', repo, '1.0');
      const r = await run();
      expect(r.exitCode, `${tampered}: ${r.stdout}`).toBe(3);
      expect(JSON.parse(r.stdout).error.message).toMatch(/image signature/);
      expect(await new DirectoryHasher(volume).hash()).toBe(goodHash);
      expect(await httpGet(port)).toBe('zeta e2e v1\n');
    }
    expect(watch.lines.filter((l) => l.msg === 'reloaded').map((l) => l.hash)).toEqual([goodHash]);
    expect(await watch.terminate()).toBe(0);
  });
});
