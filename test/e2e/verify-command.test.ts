/**
 * `zeta-provision verify` through the built binary: source + verification only, the report on stdout,
 * exit 0/3/4/2, nothing written. On the bundled example (cosign-signed OCI layout), tampered copies of
 * it, and gematik's real popp payload with its `.manifest`.
 */
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const POPP = path.join(REALWORLD, 'gematik-popp');
const hasPopp = await readdir(POPP).then(
  () => true,
  () => false,
);

async function example(): Promise<{ dir: string; config: string; payload: string; oci: string }> {
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  const root = path.join(dir, 'example');
  return { dir, config: path.join(root, 'zeta-provision.yaml'), payload: path.join(root, 'payload'), oci: path.join(root, 'oci') };
}

describe('zeta-provision verify', () => {
  it('--help explains the command with examples and exit codes', async () => {
    const r = await runCli(['verify', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('zeta-provision verify --config zeta-provision.yaml --source oci-layout:build/payload:latest');
    expect(r.stdout).toMatch(/3 verification failed/);
    expect(r.stdout).toContain('--image-trust-chain');
    // verify writes nothing, so it has no target options (--volume is only read, for the downgrade check).
    expect(r.stdout).toContain('--volume <dir>');
    expect(r.stdout).not.toContain('--kube-out');
    expect(r.stdout).not.toMatch(/^ +--dry-run/m);
  });

  it('verifies the example image and payload, prints the report and writes nothing', async () => {
    const ex = await example();
    const volume = path.join(ex.dir, 'volume');
    // A RESULT_DIR in the environment (as in gematik's pod) must not make verify write anything.
    const r = await runCli(['verify', '--config', ex.config, '--output', 'json'], { env: { RESULT_DIR: volume } });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ command: 'verify', outcome: 'verified', exitCode: 0 });
    expect(report.image).toMatchObject({ checked: true, identity: 'provisioning@example.org' });
    expect(report.verification.checks.map((c: { file: string; kind: string; ok: boolean }) => `${c.file} ${c.kind} ${c.ok}`)).toEqual([
      'keycloak-data/realm-zeta.json cms-detached true',
      'keycloak-data/themes/zeta/theme.properties cms-detached true',
      'nginx/nginx.conf cms-detached true',
      'opa/policy.rego cms-attached true',
    ]);
    expect(report.verification.checks[0].signers[0]).toMatchObject({
      subject: 'CN=Example Payload Signer (throwaway), O=zeta-provision example, C=DE',
      anchor: 'CN=Example Root CA (throwaway), O=zeta-provision example, C=DE',
    });
    expect(report.plan).toBeUndefined();
    expect(await readdir(volume).catch(() => 'absent')).toBe('absent');

    const text = await runCli(['verify', '--config', ex.config]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^zeta-provision verify: verified: every required check passed/);
    expect(text.stdout).toMatch(/\n {2}image {5}signed by provisioning@example\.org → CN=Example Image Signing Root .*, chain expires \d{4}-\d\d-\d\d\)\n/);
    expect(text.stdout).toMatch(
      /ok {3}nginx\/nginx\.conf \[cms-detached\] CN=Example Payload Signer .* → CN=Example Root CA .* \(chain expires \d{4}-\d\d-\d\d\)/,
    );
  });

  it('a tampered copy of the payload exits 3 and names the file and the reason', async () => {
    const ex = await example();
    const conf = path.join(ex.payload, 'nginx', 'nginx.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('zeta example v1', 'zeta example v2'));
    const r = await runCli(['verify', '--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^zeta-provision: error: nginx\/nginx\.conf: content digest does not match the signature \(signer "CN=Example Payload Signer/);
    const json = JSON.parse(
      (await runCli(['verify', '--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off', '--output', 'json'])).stdout,
    );
    expect(json).toMatchObject({ command: 'verify', outcome: 'failed', exitCode: 3, error: { kind: 'verify', file: 'nginx/nginx.conf' } });
    expect(json.verification.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { file: string }) => c.file)).toEqual(['nginx/nginx.conf']);
  });

  it("a layout whose signature was replaced by another image's exits 3; a missing layout exits 4; a bad config exits 2", async () => {
    const ex = await example();
    const index = JSON.parse(await readFile(path.join(ex.oci, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    // Rename the signature tag so it claims to sign another digest: the image is now unsigned.
    for (const m of index.manifests) {
      const name = m.annotations?.['org.opencontainers.image.ref.name'];
      if (name?.endsWith('.sig')) m.annotations!['org.opencontainers.image.ref.name'] = `sha256-${'0'.repeat(64)}.sig`;
    }
    await writeFile(path.join(ex.oci, 'index.json'), JSON.stringify(index));
    const unsigned = await runCli(['verify', '--config', ex.config]);
    expect(unsigned.exitCode).toBe(3);
    expect(unsigned.stdout).toMatch(/image signature: no signature sha256-[0-9a-f]{64}\.sig found beside the image/);

    const missing = await runCli(['verify', '--config', ex.config, '--source', `oci-layout:${path.join(ex.dir, 'nowhere')}:latest`]);
    expect(missing.exitCode).toBe(4);

    const bad = path.join(ex.dir, 'bad.yaml');
    await writeFile(bad, 'manifest:\n  check: sometimes\n');
    const badConfig = await runCli(['verify', '--config', bad, '--source', `dir:${ex.payload}`]);
    expect(badConfig.exitCode).toBe(2);
    expect(badConfig.log + badConfig.stdout).toMatch(/manifest\.check: expected "required", "optional" or "off", got "sometimes"/);
  });
});

describe('the payload .manifest in run and verify', () => {
  it('hashes the files as shipped (the attached CMS envelope, before it is unwrapped) and reports the revision', async () => {
    const ex = await example();
    // gematik's way of making it: sha256sum over every file, the manifest's own line included.
    await writeFile(path.join(ex.payload, '.manifest'), '');
    // The list is written outside the payload first: find would race with a temp file created inside it.
    await execa('sh', ['-c', 'find . -type f | sort | xargs sha256sum > ../manifest.tmp && mv ../manifest.tmp .manifest'], { cwd: ex.payload });
    const config = path.join(ex.dir, 'example', 'with-manifest.yaml');
    await writeFile(config, (await readFile(ex.config, 'utf8')) + '\nmanifest:\n  check: required\n  unlisted: error\n');
    const args = ['--config', config, '--source', `dir:${ex.payload}`, '--image-signature', 'off', '--output', 'json'];
    const r = await runCli(['verify', ...args]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // .revision, 4 signed files, 3 .p7s signatures; the line for .manifest itself is skipped.
    expect(report.verification.manifest).toEqual({ checked: true, listed: 8, unlisted: [], revision: 'demo-1', revisionListed: true, reason: null });
    expect(
      report.verification.checks.filter((c: { kind: string; ok: boolean }) => c.kind === 'manifest' && c.ok).map((c: { file: string }) => c.file),
    ).toContain('opa/policy.rego');

    const dry = await runCli(['run', ...args, '--dry-run']);
    expect(dry.exitCode, dry.stdout).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      outcome: 'dry-run',
      source: { revision: 'demo-1' },
      verification: { manifest: { checked: true, listed: 8 } },
    });

    // An added file is unlisted: with unlisted: error that fails, naming it.
    await writeFile(path.join(ex.payload, 'nginx', 'extra.conf'), 'server {}\n');
    const extra = await runCli(['run', ...args.slice(0, -2), '--dry-run']);
    expect(extra.exitCode).toBe(3);
    expect(extra.stdout).toMatch(/^zeta-provision: error: nginx\/extra\.conf: not listed in \.manifest/);
  });
});

describe.skipIf(!hasPopp)(`gematik's popp payload and its .manifest (${POPP})`, () => {
  async function config(unlisted: 'warn' | 'error'): Promise<string> {
    const file = path.join(await tempDir(), 'popp.yaml');
    await writeFile(
      file,
      `manifest:\n  check: required\n  unlisted: ${unlisted}\nverify:\n  - files: TrustedTpm.cab\n    kind: authenticode\n    trust: [microsoft]\n`,
    );
    return file;
  }

  it('verifies with the self line ignored, reports the unlisted TSL and the revision', async () => {
    const r = await runCli(['verify', '--config', await config('warn'), '--source', `dir:${POPP}`, '--output', 'json']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.verification.manifest).toEqual({
      checked: true,
      listed: 9,
      unlisted: ['TSL-valid-ECC-rise-cvc.xml'],
      revision: '4601178f7bf867d0f5d2e5a67dacf98bc2d2ad88',
      revisionListed: true,
      reason: null,
    });
    expect(report.source.revision).toBe('4601178f7bf867d0f5d2e5a67dacf98bc2d2ad88');
    const manifestChecks = report.verification.checks.filter((c: { kind: string }) => c.kind === 'manifest');
    expect(manifestChecks).toHaveLength(9);
    expect(manifestChecks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect(manifestChecks.map((c: { file: string }) => c.file)).not.toContain('.manifest');
    expect(report.warnings).toContain('1 file is not listed in .manifest: TSL-valid-ECC-rise-cvc.xml');
    // The cabinet's RFC 3161 timestamp is what this payload proves (no image signature on a dir: source).
    expect(report.verification.proven).toEqual({ time: '2025-08-29T18:25:09.788Z', basis: 'RFC 3161 timestamp of TrustedTpm.cab' });

    const text = await runCli(['verify', '--config', await config('warn'), '--source', `dir:${POPP}`]);
    expect(text.stdout).toContain('  manifest  .manifest: 9/9 listed files match; 1 unlisted: TSL-valid-ECC-rise-cvc.xml');
  });

  it('with unlisted: error the same payload exits 3 naming the unlisted file', async () => {
    const r = await runCli(['verify', '--config', await config('error'), '--source', `dir:${POPP}`]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^zeta-provision: error: TSL-valid-ECC-rise-cvc\.xml: not listed in \.manifest/);
  });

  it('a copy with an altered listed file exits 3 naming it', async () => {
    const dir = path.join(await tempDir(), 'popp');
    await cp(POPP, dir, { recursive: true });
    // The copy keeps the read-only modes of the original; make it writable (and removable afterwards).
    await execa('chmod', ['-R', 'u+w', dir]);
    await writeFile(path.join(dir, 'federation-master.yaml'), 'altered: true\n');
    const r = await runCli(['verify', '--config', await config('warn'), '--source', `dir:${dir}`]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/federation-master\.yaml: sha256 [0-9a-f]{64} does not match d9d58360f/);
  });
});
