/**
 * `zeta-provision run --profile gematik` on gematik's real test payload, through the built binary:
 * the files Keycloak, OPA and the PEP read, checked with their real readers (openssl, keytool), then
 * determinism (a fresh volume gets the same bytes) and idempotence (a second run writes nothing).
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../support/cli.js';
import { openssl } from '../support/openssl.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');
const REAL = path.join(REALWORLD, 'gematik-test');
const tempDir = useTempDirs();
const VOLUME_FILES = ['ocsp-signers-meta.json', 'ocsp-signers.p12', 'smcb-trust-roots-meta.json', 'smcb-trust-roots.p12', 'tpm-trust-roots.p12'];

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await stat(path.join(dir, name)).catch(() => undefined);
    out[name] = st ? `${st.size}:${st.mtimeMs}` : 'dangling';
  }
  return out;
}

async function run(extra: string[] = [], env: Record<string, string> = {}) {
  const dir = await tempDir();
  const volume = path.join(dir, 'volume');
  const kubeOut = path.join(dir, 'kube');
  const args = ['run', '--profile', 'gematik', '--source', `dir:${REAL}`, '--volume', volume, '--kube-out', kubeOut, '--output', 'json', ...extra];
  const r = await runCli(args, { env });
  return { ...r, volume, kubeOut, args, env };
}

const pkcs12Names = async (file: string, pass: string): Promise<string[]> => {
  const r = await openssl(['pkcs12', '-info', '-nokeys', '-in', file, '-passin', `pass:${pass}`]);
  expect(r.exitCode, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/friendlyName: (.*)/g)].map((m) => m[1]!);
};

describe.skipIf(!existsSync(REAL))('zeta-provision run --profile gematik (real gematik-test payload)', () => {
  it('derives the truststores, meta, policy-signer.pub and roots.json; a fresh run gives the same bytes; a second run writes nothing', async () => {
    await requireProgram('keytool', 'default-jre-headless');
    const first = await run(['--tsl-grace-days', '3650', '--tsl-signature', 'off']);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.outcome).toBe('applied');
    expect(report.verification.checks.map((c: { file: string; ok: boolean }) => [c.file, c.ok])).toEqual([
      ['TrustedTpm.cab', true],
      ['trusted-tpm/TrustedTpm.cab', true],
    ]);
    expect(report.processed.map((p: { processor: string; input: string }) => [p.processor, p.input])).toEqual([
      ['tsl', 'ECC-RSA_TSL-test.xml'],
      ['tpm', 'TrustedTpm.cab'],
      ['policySigner', 'policy-engine-bundle-keys/signers/zeta-policy-freigeber-komp61.pem'],
      ['roots', 'roots.json'],
    ]);
    expect(report.processed[0].signatureChecked).toBe(false);
    expect(report.processed[1].detail).toMatch(
      /^2209 files, 2205 certificate files \(113 \.CER, 1820 \.cer, 253 \.crt, 19 \.der\), 2199 certificates, 2198 unique, 6 rejected \(6 BER certificate\(s\) whose DER twin is stored: /,
    );
    expect(report.warnings.filter((w: string) => w.startsWith('TrustedTpm.cab:'))).toEqual([]);
    expect(report.warnings).toContain(
      'ECC-RSA_TSL-test.xml: TSL signature not checked (turned off with --tsl-signature off or process.tsl.signature): a forged or altered list would be accepted',
    );
    expect(report.warnings).toContain('TSL: using ECC-RSA_TSL-test.xml; tsl/ECC_TU_TSL_10691.xml is also present and was not used');

    expect((await readdir(first.volume)).filter((n) => !n.startsWith('..')).sort()).toEqual(VOLUME_FILES);
    const v = (n: string) => path.join(first.volume, n);
    const smcb = await pkcs12Names(v('smcb-trust-roots.p12'), 'no_secret_for_trust_only');
    const meta = JSON.parse(await readFile(v('smcb-trust-roots-meta.json'), 'utf8')) as { friendlyName: string; tspName: string }[];
    expect(smcb).toHaveLength(36);
    expect(meta.map((m) => m.friendlyName)).toEqual(smcb);
    expect(meta[0]).toEqual({ friendlyName: expect.stringContaining('CN=ACHELOS.SMCB-CA20 TEST-ONLY'), tspName: 'achelos GmbH' });
    expect(await pkcs12Names(v('ocsp-signers.p12'), 'no_secret_for_trust_only')).toHaveLength(101);
    // Java's keytool, as Keycloak's JVM reads the store: every entry a trustedCertEntry.
    const listed = await execa('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', v('smcb-trust-roots.p12'), '-storepass', 'no_secret_for_trust_only'], {
      reject: false,
    });
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('Your keystore contains 36 entries');
    expect(listed.stdout.match(/trustedCertEntry/g)).toHaveLength(36);
    const tpmListed = await execa(
      'keytool',
      ['-list', '-storetype', 'PKCS12', '-keystore', v('tpm-trust-roots.p12'), '-storepass', 'no_secret_for_trust_only'],
      { reject: false },
    );
    expect(tpmListed.stdout.match(/trustedCertEntry/g)).toHaveLength(2198);

    const cm = async (name: string) => parse(await readFile(path.join(first.kubeOut, `configmap-${name}.yaml`), 'utf8')) as { data: Record<string, string> };
    const signerPub = (
      await openssl(['x509', '-pubkey', '-noout', '-in', path.join(REAL, 'policy-engine-bundle-keys', 'signers', 'zeta-policy-freigeber-komp61.pem')])
    ).stdout;
    expect((await cm('opa-policy-signer')).data).toEqual({ 'policy-signer.pub': signerPub });
    expect((await cm('pep-ti-roots')).data).toEqual({ 'roots.json': await readFile(path.join(REAL, 'roots.json'), 'utf8') });

    // Same inputs, fresh targets: byte-identical outputs.
    const fresh = await run(['--tsl-grace-days', '3650', '--tsl-signature', 'off']);
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    for (const name of VOLUME_FILES) expect(await readFile(path.join(fresh.volume, name)), name).toEqual(await readFile(v(name)));
    // The manifests are equal too (the .zeta-provision.json record beside them carries the time applied).
    const manifests = (await readdir(first.kubeOut)).filter((n) => n.startsWith('configmap-'));
    expect(manifests.sort()).toEqual(['configmap-opa-policy-signer.yaml', 'configmap-pep-ti-roots.yaml']);
    for (const name of manifests)
      expect(await readFile(path.join(fresh.kubeOut, name), 'utf8')).toEqual(await readFile(path.join(first.kubeOut, name), 'utf8'));

    // Second run on the same targets: up to date, nothing written.
    const before = { ...(await snapshot(first.volume)), ...(await snapshot(first.kubeOut)) };
    const second = await runCli(first.args);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).outcome).toBe('up-to-date');
    // The check being off is said on every run, as a warning log line too (JSON: no terminal).
    const warned = second.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(warned).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/^the TSL signature check is turned off/) }));
    expect({ ...(await snapshot(first.volume)), ...(await snapshot(first.kubeOut)) }).toEqual(before);
    // Even processed again (--force), the derived bytes are equal, so the plan has nothing to write.
    const forced = await runCli([...first.args, '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout).outcome).toBe('no-changes');
    expect({ ...(await snapshot(first.volume)), ...(await snapshot(first.kubeOut)) }).toEqual(before);
  }, 240_000);

  it("fails with exit 3 on the expired TSL under the profile's grace period, and writes nothing", async () => {
    const r = await run(['--tsl-signature', 'off']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const report = JSON.parse(r.stdout);
    expect(report.error.message).toMatch(
      /^ECC-RSA_TSL-test.xml: TSL expired: NextUpdate was 2026-07-13T23:00:13.000Z, \d+ day\(s\) ago, beyond the grace period of 7 day\(s\)$/,
    );
    expect(report.error.file).toBe('ECC-RSA_TSL-test.xml');
    expect(existsSync(r.volume) ? (await readdir(r.volume)).filter((n) => !n.startsWith('.')) : []).toEqual([]);
    expect(existsSync(r.kubeOut)).toBe(false);
  }, 120_000);

  it('builds the TPM store only from a cabinet whose Authenticode signature was verified (TPM_CAB_FILENAME cannot sidestep it)', async () => {
    const payload = path.join(await tempDir(), 'payload');
    await cp(REAL, payload, { recursive: true });
    await mkdir(path.join(payload, 'extra'));
    await cp(path.join(REAL, 'TrustedTpm.cab'), path.join(payload, 'extra', 'TrustedTpm.cab'));
    const dir = await tempDir();
    const r = await runCli(
      [
        'run',
        '--profile',
        'gematik',
        '--source',
        `dir:${payload}`,
        '--volume',
        path.join(dir, 'v'),
        '--kube-out',
        path.join(dir, 'k'),
        '--tsl-grace-days',
        '3650',
        '--tsl-signature',
        'off',
        '--output',
        'json',
      ],
      {
        env: { TPM_CAB_FILENAME: 'extra/TrustedTpm.cab' },
      },
    );
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    expect(JSON.parse(r.stdout).error.message).toBe(
      'extra/TrustedTpm.cab: the TPM processor needs a cabinet whose Authenticode signature was verified, and no verify rule covered this one',
    );
  }, 120_000);

  it('refuses a TSL with an external entity (exit 3, the file named) and publishes nothing', async () => {
    const payload = path.join(await tempDir(), 'payload');
    await cp(REAL, payload, { recursive: true });
    const tsl = path.join(payload, 'ECC-RSA_TSL-test.xml');
    const original = await readFile(tsl, 'utf8');
    await writeFile(
      tsl,
      original
        .replace('<TrustServiceStatusList', '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<TrustServiceStatusList')
        .replace('achelos GmbH', '&xxe;'),
    );
    const dir = await tempDir();
    const r = await runCli([
      'run',
      '--profile',
      'gematik',
      '--source',
      `dir:${payload}`,
      '--volume',
      path.join(dir, 'v'),
      '--kube-out',
      path.join(dir, 'k'),
      '--tsl-grace-days',
      '3650',
      '--tsl-signature',
      'off',
      '--output',
      'json',
    ]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const report = JSON.parse(r.stdout);
    expect(report.error).toMatchObject({ kind: 'verify', file: 'ECC-RSA_TSL-test.xml' });
    expect(report.error.message).toContain('DTDs and entities are refused');
    expect(r.stdout + r.stderr).not.toMatch(/root:x:0:0/);
    expect(existsSync(path.join(dir, 'k'))).toBe(false);
    expect(existsSync(path.join(dir, 'v')) ? (await readdir(path.join(dir, 'v'))).filter((n) => !n.startsWith('.')) : []).toEqual([]);
  }, 120_000);

  it('refuses --profile with --config, and unknown profiles (exit 2)', async () => {
    const both = await runCli(['run', '--profile', 'gematik', '--config', 'config/default.yaml', '--source', `dir:${REAL}`]);
    expect(both.exitCode).toBe(2);
    expect(both.log).toContain('--profile and --config exclude each other');
    const unknown = await runCli(['run', '--profile', 'acme', '--source', `dir:${REAL}`]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.log).toContain('unknown profile "acme" (known: gematik)');
  });

  it('uses TRUSTSTORE_PASS for the stores and never prints it', async () => {
    const pass = 'Truststore-Secret-4711';
    const r = await run(['--tsl-grace-days', '3650', '--tsl-signature', 'off', '--debug', '--output', 'text'], { TRUSTSTORE_PASS: pass });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(pass);
    expect(await pkcs12Names(path.join(r.volume, 'smcb-trust-roots.p12'), pass)).toHaveLength(36);
    expect(r.stdout).toMatch(
      /derived {3}smcb-trust-roots.p12, smcb-trust-roots-meta.json, ocsp-signers.p12, ocsp-signers-meta.json from ECC-RSA_TSL-test.xml: sequence 10691/,
    );
  }, 120_000);
});
