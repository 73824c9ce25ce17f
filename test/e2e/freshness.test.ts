/**
 * Freshness (issue #8): the earliest certificate expiry among the signers the run relied on (here the
 * policy signer) and the TSL's NextUpdate reach the run report (JSON and text), the volume's record,
 * the API status ConfigMap (kept by an up-to-date run), and `zeta-provision status`, which adds the
 * age of the applied payload and warns when a value is near or past its limit.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { volumeStatus } from '../../src/publish/volume/index.js';
import { freshnessOf, freshnessWarnings, processedExpiryWarnings } from '../../src/plan/freshness.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { NS, writeConfig, writeKubeconfig } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { makePki } from '../support/openssl.js';
import { useTempDirs } from '../support/tmp.js';
import { derFromPem, SMCB_EXT, tslXml } from '../process/tsl-fixture.js';

const REAL_KEYS = path.join(process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '../shared/realworld'), 'gematik-test', 'policy-engine-bundle-keys');
/** notAfter of gematik's test policy signer (openssl x509 -enddate: Mar 23 22:59:59 2031 GMT). */
const SIGNER_NOT_AFTER = '2031-03-23T22:59:59.000Z';
const DAY = 24 * 3600 * 1000;
const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

let caDer: Buffer;
beforeAll(async () => {
  const pki = await makePki(path.join(await tempDir(), 'pki'), 'F', 'p256');
  caDer = await derFromPem(pki.rootPem);
}, 60_000);

const CONFIG = `
process:
  tsl:
    files: [ECC-RSA_TSL-test.xml]
    warnDays: 7
    graceDays: 7
  policySigner:
    dirs: [policy-engine-bundle-keys]
volume:
  outputs: [smcbTruststore, smcbMeta]
configMaps:
  - name: opa-policy-signer
    files: [{ output: policySignerKey }]
`;

describe('freshness in report and status records', () => {
  it('unit: warnings near and past each limit, none well within', () => {
    const now = new Date('2027-01-10T12:00:00Z');
    expect(
      freshnessWarnings({ earliestCertificateExpiry: '2027-06-01T00:00:00Z', tslNextUpdate: '2027-02-01T00:00:00Z', appliedAt: '2027-01-09T12:00:00Z' }, now),
    ).toEqual([]);
    expect(
      freshnessWarnings({ earliestCertificateExpiry: '2027-01-20T12:00:00Z', tslNextUpdate: '2027-01-13T12:00:00Z', appliedAt: '2026-12-01T12:00:00Z' }, now),
    ).toEqual([
      'a certificate the applied payload relies on expires 2027-01-20 (in 10 day(s))',
      "the applied TSL's NextUpdate is 2027-01-13 (in 3 day(s))",
      'the applied payload is 40 days old (applied 2026-12-01T12:00:00Z); check that new payloads still arrive',
    ]);
    expect(freshnessWarnings({ earliestCertificateExpiry: '2027-01-01T00:00:00Z', tslNextUpdate: '2027-01-08T12:00:00Z' }, now)).toEqual([
      'a certificate the applied payload relies on expired on 2027-01-01T00:00:00Z',
      'the applied TSL is past its NextUpdate (2027-01-08 (2 day(s) ago)): a newer TSL should have been provisioned',
    ]);
  });

  it('unit: earliest expiry over untimestamped signer chains and the policy signer, compared as instants', () => {
    const check = (earliestExpiry: string, extra: object = {}) => ({ file: 'f', kind: 'cms', ok: true, signers: [{ earliestExpiry }], ...extra });
    const report = {
      verification: {
        checks: [
          // Timestamped: proven at signing time, its expired chain does not limit the payload.
          check('2025-09-11T00:00:00Z', { timestamp: '2024-12-11T04:39:30Z' }),
          check('2030-01-01T00:30:00+02:00'),
          // A failed check did not let the run through; it is not what the payload relies on.
          check('2026-01-01T00:00:00Z', { ok: false }),
        ],
      },
      processed: [
        { processor: 'policySigner', notAfter: '2029-12-31T23:00:00Z' },
        { processor: 'tsl', nextUpdate: '2027-02-01T00:00:00Z' },
      ],
    } as unknown as Parameters<typeof freshnessOf>[0];
    // 2030-01-01T00:30+02:00 is 2029-12-31T22:30Z: earlier than the signer, though it sorts later as text.
    expect(freshnessOf(report)).toEqual({ earliestCertificateExpiry: '2030-01-01T00:30:00+02:00', tslNextUpdate: '2027-02-01T00:00:00Z' });
    expect(freshnessOf({})).toEqual({});
  });

  it('unit: the policy signer certificate warns within expiryWarningDays and once expired', () => {
    const now = new Date('2031-03-01T00:00:00Z');
    const signer = { input: 'policy-engine-bundle-keys/signers/s.pem', notAfter: SIGNER_NOT_AFTER };
    expect(processedExpiryWarnings([signer, { input: 'roots.json' }], now, 30)).toEqual([
      'policy-engine-bundle-keys/signers/s.pem: certificate expires 2031-03-23 (in 22 day(s))',
    ]);
    expect(processedExpiryWarnings([signer], now, 20)).toEqual([]);
    expect(processedExpiryWarnings([signer], new Date('2031-04-01T00:00:00Z'), 30)).toEqual([
      'policy-engine-bundle-keys/signers/s.pem: certificate expired 2031-03-23 (8 day(s) ago)',
    ]);
  });

  it.skipIf(!existsSync(REAL_KEYS))('run report, volume record, API status and `status` carry earliest expiry, TSL next update and payload age', async () => {
    const dir = await tempDir();
    const payload = path.join(dir, 'payload');
    await cp(REAL_KEYS, path.join(payload, 'policy-engine-bundle-keys'), { recursive: true });
    // NextUpdate three days ahead: inside warnDays, so the run warns but derives.
    const nextUpdate = new Date(Math.floor((Date.now() + 3 * DAY + 3600_000) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    await writeFile(path.join(payload, 'ECC-RSA_TSL-test.xml'), tslXml([{ name: 'SMC-B CA', certs: [caDer], extensions: [SMCB_EXT] }], { nextUpdate }));
    const config = await writeConfig(dir, CONFIG);
    const volume = path.join(dir, 'volume');
    api = await startKubeApi({
      rbac: {
        [NS]: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'create', 'get', 'patch'] },
          { apiGroups: [''], resources: ['events'], verbs: ['create'] },
        ],
      },
    });
    const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS });
    const run = (extra: string[]) =>
      runCli(['run', '--config', config, '--source', `dir:${payload}`, '--volume', volume, '--kubeconfig', kubeconfig, ...extra]);
    const expected = { earliestCertificateExpiry: SIGNER_NOT_AFTER, tslNextUpdate: new Date(nextUpdate).toISOString() };

    const first = await run(['--output', 'json']);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    // Every field is present in the report; what a run does not know (applied, age) is null.
    expect(report.freshness).toEqual({ ...expected, appliedAt: null, payloadAgeSeconds: null });
    expect(report.processed.find((p: { processor: string }) => p.processor === 'tsl').nextUpdate).toBe(expected.tslNextUpdate);
    expect(report.warnings).toContain(`ECC-RSA_TSL-test.xml: TSL NextUpdate ${expected.tslNextUpdate} is less than 7 day(s) away`);

    const volumeRecord = JSON.parse(await readFile(path.join(volume, '..zeta-provision.json'), 'utf8'));
    const record = volumeRecord.generations[volumeRecord.generation];
    expect(record.freshness).toEqual(expected);
    const kubeStatus = () => JSON.parse(api!.store.peek(api!.type('configmaps'), NS, 'zeta-provision-status')!.data['status.json']);
    expect(kubeStatus()).toMatchObject({ outcome: 'applied', applied: { freshness: expected } });

    // Up to date: nothing derived; the report takes freshness and payload age from the records, the
    // API status still describes the applied payload.
    const again = await run(['--output', 'json']);
    expect(again.exitCode, again.stderr).toBe(0);
    const up = JSON.parse(again.stdout);
    expect(up.outcome).toBe('up-to-date');
    expect(up.processed).toBeNull();
    expect(up.freshness).toEqual({ ...expected, appliedAt: record.appliedAt, payloadAgeSeconds: expect.any(Number) });
    expect(up.freshness.payloadAgeSeconds).toBeLessThan(24 * 3600);
    expect(up.warnings).toContain(`the applied TSL's NextUpdate is ${nextUpdate.slice(0, 10)} (in 3 day(s))`);
    // Nothing written on an up-to-date run: the API status still describes the applied payload.
    expect(kubeStatus()).toMatchObject({ outcome: 'applied', applied: { freshness: expected } });
    const upText = await run(['--output', 'text']);
    expect(upText.stdout).toMatch(
      new RegExp(
        `\n  freshness payload applied \\d+ min ago; earliest certificate expiry 2031-03-23 \\(in \\d+ day\\(s\\)\\); TSL next update ${nextUpdate.slice(0, 10)} \\(in 3 day\\(s\\)\\)\n`,
      ),
    );

    // The text report of a run that derives shows both, with days to go.
    const forced = await run(['--output', 'text', '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    const signerDays = Math.floor((Date.parse(SIGNER_NOT_AFTER) - Date.now()) / DAY);
    expect(forced.stdout).toMatch(
      new RegExp(
        `\\n  freshness earliest certificate expiry 2031-03-23 \\(in (${signerDays}|${signerDays - 1}) day\\(s\\)\\); TSL next update ${nextUpdate.slice(0, 10)} \\(in 3 day\\(s\\)\\)\\n`,
      ),
    );

    // `status`: payload age, both dates, and the TSL warning.
    const status = await runCli(['status', '--volume', volume, '--output', 'json']);
    expect(status.exitCode, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s.freshness).toMatchObject({ appliedAt: record.appliedAt, ...expected });
    expect(s.freshness.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(s.freshness.ageSeconds).toBeLessThan(24 * 3600);
    expect(s.freshness.warnings).toEqual([`the applied TSL's NextUpdate is ${nextUpdate.slice(0, 10)} (in 3 day(s))`]);
    const text = await runCli(['status', '--volume', volume]);
    expect(text.stdout).toMatch(/\n {2}payload age \d+ min \(applied \d{4}-\d\d-\d\dT[\d:.]+Z\)\n/);
    expect(text.stdout).toContain(`  earliest certificate expiry 2031-03-23 (in `);
    expect(text.stdout).toContain(`  TSL next update ${nextUpdate.slice(0, 10)} (in 3 day(s))\n`);
    // (runCli trims the final newline)
    expect(text.stdout.endsWith(`\n  warning   the applied TSL's NextUpdate is ${nextUpdate.slice(0, 10)} (in 3 day(s))`)).toBe(true);

    // Forty days on, without a new payload: the TSL is past NextUpdate and the payload is old.
    const later = await volumeStatus(volume, new Date(Date.parse(record.appliedAt) + 40 * DAY));
    expect(later.freshness!.ageSeconds).toBe(40 * 24 * 3600);
    expect(later.freshness!.warnings).toEqual([
      expect.stringMatching(/^the applied TSL is past its NextUpdate \(\d{4}-\d\d-\d\d \((36|37) day\(s\) ago\)\): a newer TSL should have been provisioned$/),
      `the applied payload is 40 days old (applied ${record.appliedAt}); check that new payloads still arrive`,
    ]);
  });
});
