/** `zeta-provision run` pulling the example image from a real registry with gematik's credential variables. */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { pushSignedLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const creds = { username: 'robot', password: 'registry-pw-31337' };

describe('zeta-provision run from a registry', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: creds });
    await pushSignedLayout(path.join(REPO_ROOT, 'fixtures', 'example', 'oci'), 'latest', `${registry.host}/zeta/provisioning`, '1.0', creds);
  });
  afterAll(() => registry?.stop());

  async function setup(password: string): Promise<{ args: string[]; env: Record<string, string> }> {
    const dir = await tempDir();
    await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
    return {
      args: [
        'run',
        '--config',
        path.join(dir, 'example', 'zeta-provision.yaml'),
        '--volume',
        path.join(dir, 'vol'),
        '--kube-out',
        path.join(dir, 'out'),
        '--insecure-registry',
        registry.host,
      ],
      env: {
        PROVISIONING_CONTAINER_NAME: `${registry.host}/zeta/provisioning:1.0`,
        PROVISIONING_CONTAINER_REGISTRY_USERNAME: creds.username,
        PROVISIONING_CONTAINER_REGISTRY_TOKEN: password,
      },
    };
  }

  it('applies the image, then reports it up to date', async () => {
    const { args, env } = await setup(creds.password);
    const first = await runCli([...args, '--output', 'json'], { env });
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.outcome).toBe('applied');
    expect(report.source.revision).toBe('demo-1');
    expect(report.verification.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    // The cosign signature was found under the .sig tag in the same repository and verified first.
    expect(report.image).toMatchObject({ checked: true, identity: 'provisioning@example.org' });
    expect(report.image.location).toMatch(/\/zeta\/provisioning:sha256-[0-9a-f]{64}\.sig$/);
    const second = await runCli(args, { env });
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toContain('up to date');
  });

  it('takes credentials from a mounted pull Secret when no explicit ones are set', async () => {
    const { args } = await setup(creds.password);
    const secretDir = path.join(await tempDir(), 'pull-secret');
    await mkdir(secretDir);
    const auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    await writeFile(path.join(secretDir, '.dockerconfigjson'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
    const r = await runCli([...args, '--registry-auth-file', secretDir], { env: { PROVISIONING_CONTAINER_NAME: `${registry.host}/zeta/provisioning:1.0` } });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(creds.password);
  });

  it('a wrong password exits 4 and is never printed', async () => {
    const { args, env } = await setup('wrong-password-xyz');
    const r = await runCli(args, { env });
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toMatch(/denied as user 'robot'/);
    expect(r.stdout + r.stderr).not.toContain('wrong-password-xyz');
  });
});
