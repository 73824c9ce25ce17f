/**
 * Downgrade protection end to end: payloads whose cabinet carries RFC 3161 timestamps of different
 * times (made with gcab + osslsigncode under a throwaway CA), applied in turn through the built CLI.
 * The status record keeps the proven time; an older payload is refused (exit 3, nothing written)
 * unless --allow-downgrade (or its env twin) says the rollback is intended.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTsaAndTls, bundle, makeCab, requireCabPeers, signCab } from '../support/authenticode.js';
import { runCli } from '../support/cli.js';
import { makePki, type Pki } from '../support/openssl.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

let dir: string;
let pki: Pki;
let unsignedCab: string;
let certs: string;
let tsaCerts: string;
let older: Date;
let newer: Date;

beforeAll(async () => {
  await requireCabPeers();
  dir = await mkdtemp(path.join(os.tmpdir(), 'zp-downgrade-'));
  pki = await makePki(path.join(dir, 'pki'), 'Downgrade', 'rsa');
  const { tsaPem } = await addTsaAndTls(pki, 'Downgrade');
  certs = await bundle(path.join(dir, 'certs.pem'), [pki.leafPem, pki.intPem]);
  tsaCerts = await bundle(path.join(dir, 'tsa.pem'), [tsaPem, pki.intPem]);
  await mkdir(path.join(dir, 'content'));
  await writeFile(path.join(dir, 'content', 'tpm.cer'), randomBytes(5000));
  unsignedCab = await makeCab(path.join(dir, 'unsigned.cab'), path.join(dir, 'content'), ['tpm.cer']);
  // Both after the certificates' notBefore (made just now) and within the allowed clock skew.
  const base = Math.floor(Date.now() / 1000) * 1000;
  older = new Date(base + 1000);
  newer = new Date(base + 3000);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A dir: payload whose TrustedTpm.cab is timestamped at `time` (or not at all). */
async function payload(root: string, name: string, time: Date | undefined): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'version.txt'), `${name}\n`);
  await signCab(unsignedCab, path.join(dir, 'TrustedTpm.cab'), {
    certs,
    key: pki.leafKey,
    ...(time ? { tsa: { certs: tsaCerts, key: pki.leafKey, time } } : {}),
  });
  return `dir:${dir}`;
}

async function setup(): Promise<{
  root: string;
  volume: string;
  run: (source: string, extra?: string[], env?: Record<string, string>) => ReturnType<typeof runCli>;
}> {
  const root = await tempDir();
  const config = path.join(root, 'config.yaml');
  await writeFile(
    config,
    [
      'trust:',
      `  test: [${JSON.stringify(pki.rootPem)}]`,
      'verify:',
      '  - files: TrustedTpm.cab',
      '    kind: authenticode',
      '    trust: [test]',
      'volume:',
      '  files: ["**"]',
      // The test chain is valid for 3650 days: every untimestamped check is within the warning window.
      'expiryWarningDays: 3650',
      '',
    ].join('\n'),
  );
  const volume = path.join(root, 'volume');
  const run = (source: string, extra: string[] = [], env: Record<string, string> = {}) =>
    runCli(['run', '--config', config, '--volume', volume, '--source', source, '--output', 'json', ...extra], { env });
  return { root, volume, run };
}

/** The applied record of the generation ..data points to. */
const status = async (volume: string) => {
  const r = JSON.parse(await readFile(path.join(volume, '..zeta-provision.json'), 'utf8'));
  return r.generations[r.generation];
};
const version = async (volume: string) => readFile(path.join(volume, 'version.txt'), 'utf8');

describe('downgrade protection', () => {
  it('records the proven time, refuses an older payload, applies it with --allow-downgrade', async () => {
    const { root, volume, run } = await setup();
    const newPayload = await payload(root, 'new', newer);
    const oldPayload = await payload(root, 'old', older);

    const first = await run(newPayload);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    // A timestamped check is never warned about: its chain was validated at the token's time.
    expect(JSON.parse(first.stdout).warnings.filter((w: string) => w.includes('expires on'))).toEqual([]);
    expect(JSON.parse(first.stdout).verification.proven).toEqual({ time: newer.toISOString(), basis: 'RFC 3161 timestamp of TrustedTpm.cab' });
    expect(await status(volume)).toMatchObject({ proven: { time: newer.toISOString(), basis: 'RFC 3161 timestamp of TrustedTpm.cab' } });

    const refused = await run(oldPayload);
    expect(refused.exitCode).toBe(3);
    const report = JSON.parse(refused.stdout);
    expect(report.error.message).toBe(
      `downgrade refused: payload was proven at ${older.toISOString()} (RFC 3161 timestamp of TrustedTpm.cab), older than the last applied payload's ${newer.toISOString()} (RFC 3161 timestamp of TrustedTpm.cab)`,
    );
    expect(report.error.hint).toContain('--allow-downgrade');
    // verify judges it as run does when given the volume (its record is only read), and writes nothing.
    const config = path.join(root, 'config.yaml');
    const verified = await runCli(['verify', '--config', config, '--volume', volume, '--source', oldPayload, '-o', 'json']);
    expect(verified.exitCode, verified.stdout).toBe(3);
    expect(JSON.parse(verified.stdout).error.message).toBe(report.error.message);
    expect((await runCli(['verify', '--config', config, '--volume', volume, '--source', oldPayload, '--allow-downgrade'])).exitCode).toBe(0);
    expect(await version(volume)).toBe('new\n');
    expect(await version(volume)).toBe('new\n');
    // A dry run (CI) sees the same refusal.
    expect((await run(oldPayload, ['--dry-run'])).exitCode).toBe(3);

    const allowed = await run(oldPayload, [], { ZETA_PROVISION_ALLOW_DOWNGRADE: 'true' });
    expect(allowed.exitCode, allowed.stdout).toBe(0);
    expect(JSON.parse(allowed.stdout).warnings.join('\n')).toMatch(/^downgrade allowed by --allow-downgrade: payload was proven at /m);
    expect(await version(volume)).toBe('old\n');
    expect(await status(volume)).toMatchObject({ proven: { time: older.toISOString() } });

    // Forward again: no flag needed.
    const forward = await run(newPayload);
    expect(forward.exitCode, forward.stdout).toBe(0);
    expect(await version(volume)).toBe('new\n');
  });

  it('a payload that proves no time after one that did is refused too (no way around by stripping the timestamp)', async () => {
    const { root, volume, run } = await setup();
    expect((await run(await payload(root, 'new', newer))).exitCode).toBe(0);
    const untimed = await payload(root, 'untimed', undefined);
    const refused = await run(untimed);
    expect(refused.exitCode).toBe(3);
    expect(JSON.parse(refused.stdout).error.message).toBe(
      `downgrade refused: payload proves no signing time, but the last applied payload was proven at ${newer.toISOString()} (RFC 3161 timestamp of TrustedTpm.cab)`,
    );
    expect(await version(volume)).toBe('new\n');
    const allowed = await run(untimed, ['--allow-downgrade']);
    expect(allowed.exitCode).toBe(0);
    // Without a timestamp the chain must stay valid: its expiry is warned about (window 3650 days).
    expect(JSON.parse(allowed.stdout).warnings.filter((w: string) => w.includes('expires on'))).toEqual([
      expect.stringMatching(
        /^TrustedTpm\.cab: the chain of "CN=Test Signer Downgrade, O=Example Org, C=DE" \(anchor "CN=Test Root Downgrade, O=Example Org, C=DE"\) expires on \d{4}-\d\d-\d\dT[\d:.]+Z \(in 364[89] days\)$/,
      ),
    ]);
    expect(await version(volume)).toBe('untimed\n');
    expect(await status(volume)).not.toHaveProperty('proven');
  });
});
