/**
 * `zeta-provision run` end to end on the bundled example payload, through the built binary.
 * Each test works on a copy of fixtures/example so it can tamper freely.
 */
import { cp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

async function example(): Promise<{ dir: string; config: string; volume: string; kubeOut: string; args: string[] }> {
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  const config = path.join(dir, 'example', 'zeta-provision.yaml');
  const volume = path.join(dir, 'volume');
  const kubeOut = path.join(dir, 'manifests');
  return { dir, config, volume, kubeOut, args: ['run', '--config', config, '--volume', volume, '--kube-out', kubeOut] };
}

/** Every path under DIR with its size and mtime: proves a run wrote nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    const st = await stat(path.join(dir, name)).catch(() => undefined);
    out[name] = st ? `${st.size}:${st.mtimeMs}` : 'dangling';
  }
  return out;
}

describe('zeta-provision run (example payload)', () => {
  it('applies the payload, then a second run writes nothing and says so', async () => {
    const ex = await example();
    const first = await runCli([...ex.args, '--output', 'json']);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.outcome).toBe('applied');
    expect(report.source.revision).toBe('demo-1');
    expect(report.verification.checks.map((c: { file: string; ok: boolean }) => [c.file, c.ok])).toEqual([
      ['keycloak-data/realm-zeta.json', true],
      ['keycloak-data/themes/zeta/theme.properties', true],
      ['nginx/nginx.conf', true],
      ['opa/policy.rego', true],
    ]);
    expect(report.verification.checks[0].signers[0].subject).toContain('Example Payload Signer');
    expect(report.verification.checks[0].signers[0].anchor).toContain('Example Root CA');

    expect(await readFile(path.join(ex.volume, 'keycloak-data', 'realm-zeta.json'), 'utf8')).toContain('"realm": "zeta"');
    const nginx = await readFile(path.join(ex.kubeOut, 'configmap-nginx-config.yaml'), 'utf8');
    expect(nginx).toContain('return 200 "zeta example v1\\n";');
    // The attached signature was unwrapped: the ConfigMap holds the policy text, not the CMS envelope.
    const opa = await readFile(path.join(ex.kubeOut, 'configmap-opa-policy.yaml'), 'utf8');
    expect(opa).toContain('package zeta.authz');
    expect(opa).not.toContain('binaryData');

    const before = { ...(await snapshot(ex.volume)), ...(await snapshot(ex.kubeOut)) };
    const second = await runCli(ex.args);
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toMatch(/up to date: this payload was already applied, nothing to do/);
    expect({ ...(await snapshot(ex.volume)), ...(await snapshot(ex.kubeOut)) }).toEqual(before);

    // --force re-verifies and re-plans, but identical outputs still mean no writes.
    const forced = await runCli([...ex.args, '--force']);
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toMatch(/no changes: outputs already match the payload/);
    expect({ ...(await snapshot(ex.volume)), ...(await snapshot(ex.kubeOut)) }).toEqual(before);
  });

  it('a missing source exits 4 with one line', async () => {
    const r = await runCli(['run', '--source', 'dir:/nonexistent']);
    expect(r.exitCode).toBe(4);
    expect(r.stdout.trim().split('\n')).toEqual(['zeta-provision: error: source not found: dir:/nonexistent']);
  });

  it('an altered signed file exits 3 and leaves volume and manifests untouched', async () => {
    const ex = await example();
    expect((await runCli(ex.args)).exitCode).toBe(0);
    const before = { ...(await snapshot(ex.volume)), ...(await snapshot(ex.kubeOut)) };
    const payload = path.join(ex.dir, 'example', 'payload');
    await writeFile(path.join(payload, 'nginx', 'nginx.conf'), 'events {}\nhttp { server { listen 8080; location / { return 200 "evil"; } } }\n');
    // dir: sources carry no image signature; this test is about the file signatures.
    const r = await runCli([...ex.args, '--source', `dir:${payload}`, '--image-signature', 'off']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^zeta-provision: error: .*nginx\/nginx\.conf.*/);
    expect({ ...(await snapshot(ex.volume)), ...(await snapshot(ex.kubeOut)) }).toEqual(before);
  });

  it('a signature by another CA exits 3 and writes nothing', async () => {
    const ex = await example();
    const other = path.join(ex.dir, 'other-ca.pem');
    await execa('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=Some Other CA',
      '-keyout',
      path.join(ex.dir, 'other.key'),
      '-out',
      other,
    ]);
    const config = (await readFile(ex.config, 'utf8')).replace('[trust/example-root-ca.pem]', `[${other}]`);
    await writeFile(ex.config, config);
    const r = await runCli(ex.args);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain('keycloak-data/realm-zeta.json');
    expect(await snapshot(ex.volume)).toEqual({});
    expect(await snapshot(ex.kubeOut)).toEqual({});
  });

  it('a layer blob that does not match its digest exits 4', async () => {
    const ex = await example();
    const oci = path.join(ex.dir, 'example', 'oci');
    const manifestDigest = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
    const manifest = JSON.parse(await readFile(path.join(oci, 'blobs', 'sha256', manifestDigest), 'utf8'));
    const layer = path.join(oci, 'blobs', 'sha256', manifest.layers[0].digest.slice(7));
    const bytes = await readFile(layer);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    await writeFile(layer, bytes);
    const r = await runCli(ex.args);
    expect(r.exitCode).toBe(4);
    expect(await snapshot(ex.volume)).toEqual({});
  });

  it('invalid configs exit 2 naming the key and write nothing', async () => {
    const ex = await example();
    await writeFile(ex.config, (await readFile(ex.config, 'utf8')).replace('files: ["keycloak-data/**"]', 'files: ["../keycloak-data/**"]'));
    const r = await runCli(ex.args);
    expect(r.exitCode).toBe(2);
    expect(r.log).toMatch(/zeta-provision\.yaml:\d+: volume\.files\.0: "\.\.\/keycloak-data\/\*\*": must not contain "\.\."/);
    expect(await snapshot(ex.volume)).toEqual({});
    const missing = await runCli(['run', '--config', path.join(ex.dir, 'nope.yaml')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('dry run plans without writing; --detailed-exitcode says 10 when changes are pending', async () => {
    const ex = await example();
    const r = await runCli([...ex.args, '--dry-run', '--detailed-exitcode', '--output', 'json']);
    expect(r.exitCode).toBe(10);
    const report = JSON.parse(r.stdout);
    expect(report.outcome).toBe('dry-run');
    expect(report.plan.configMaps.map((c: { action: string }) => c.action)).toEqual(['create', 'create']);
    expect(await snapshot(ex.volume)).toEqual({});
    expect(await snapshot(ex.kubeOut)).toEqual({});
    expect((await runCli(ex.args)).exitCode).toBe(0);
    expect((await runCli([...ex.args, '--dry-run', '--detailed-exitcode', '--force'])).exitCode).toBe(0);
  });

  it('no secret reaches stdout or stderr, even inside an error message', async () => {
    const secret = 'zz-registry-token-4711';
    const r = await runCli(['run', '--source', `dir:/tmp/${secret}`, '--debug'], {
      env: { PROVISIONING_CONTAINER_REGISTRY_USERNAME: 'robot', PROVISIONING_CONTAINER_REGISTRY_TOKEN: secret, TRUSTSTORE_PASS: 'truststore-pw-0815' },
    });
    expect(r.exitCode).toBe(4);
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout).toContain('dir:/tmp/***');
  });

  it('fixtures/make-example.sh regenerates a payload that verifies and applies', async () => {
    const dir = await tempDir();
    const out = path.join(dir, 'example');
    await execa('bash', [path.join(REPO_ROOT, 'fixtures', 'make-example.sh'), out]);
    await cp(path.join(REPO_ROOT, 'fixtures', 'example', 'zeta-provision.yaml'), path.join(out, 'zeta-provision.yaml'));
    const r = await runCli(['run', '--config', path.join(out, 'zeta-provision.yaml'), '--volume', path.join(dir, 'v'), '--kube-out', path.join(dir, 'k')]);
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain('4/4 signature checks passed');
  });

  it('version and help work without any configuration', async () => {
    const v = await runCli(['version', '--output', 'json']);
    expect(JSON.parse(v.stdout)).toMatchObject({ name: 'zeta-provision', node: process.version });
    const h = await runCli(['--help']);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toContain('run');
    expect((await runCli(['frobnicate'])).exitCode).toBe(2);
  });
});
