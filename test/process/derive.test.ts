/**
 * The process stage with the TSL, policy-signer and roots processors on synthetic payloads: layouts,
 * output names and renames, the meta JSON and truststores as consumers read them (openssl), password
 * handling, determinism.
 */
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { gematikFromEnv, parseConfigText } from '../../src/config/index.js';
import { ConfigError, VerifyError } from '../../src/errors.js';
import { deriveOutputs } from '../../src/process/index.js';
import { makePki, openssl } from '../support/openssl.js';
import { useTempDirs } from '../support/tmp.js';
import { derFromPem, SMCB_EXT, tslXml, TYPE_OCSP } from './tsl-fixture.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');
const REAL = path.join(REALWORLD, 'gematik-test');
const tempDir = useTempDirs();
const HOSTILE = `SMC-B "CA" $(touch /tmp/zp-pwned) \`id\` 'q' <x>&`;

let certs: Buffer[];
beforeAll(async () => {
  const dir = await tempDir();
  const pki = await makePki(path.join(dir, 'pki'), 'D', 'p256');
  certs = await Promise.all([pki.rootPem, pki.intPem, pki.leafPem].map(derFromPem));
}, 60_000);

const CONFIG = `
process:
  tsl:
    files: [ECC-RSA_TSL-test.xml, "tsl/*.xml"]
volume:
  outputs: [smcbTruststore, smcbMeta, ocspTruststore, ocspMeta]
`;

async function payload(layout: 'flat' | 'subdir'): Promise<string> {
  const root = await tempDir();
  const xml = tslXml([
    { tsp: 'TSP "One"', name: HOSTILE, certs: [certs[0]!], extensions: [SMCB_EXT] },
    { name: 'Revoked SMC-B', status: 'revoked', since: '2025-05-05T05:05:05Z', certs: [certs[1]!], extensions: [SMCB_EXT] },
    { name: 'OCSP Signer', type: TYPE_OCSP, certs: [certs[2]!] },
  ]);
  const file = layout === 'flat' ? path.join(root, 'ECC-RSA_TSL-test.xml') : path.join(root, 'tsl', 'ECC_TU_TSL_1.xml');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, xml);
  return root;
}

const derive = async (root: string, yaml = CONFIG, opts: Record<string, unknown> = {}) =>
  deriveOutputs(root, parseConfigText(yaml, 'test.yaml', root), undefined, { derivedDir: path.join(await tempDir(), 'derived'), ...opts });

describe('process stage (TSL outputs)', () => {
  it.each(['flat', 'subdir'] as const)('%s layout: stores and meta under gematik names; names stay plain text in JSON and PKCS#12', async (layout) => {
    const out = await derive(await payload(layout));
    expect(out.volumeFiles.map((f) => f.path)).toEqual(['smcb-trust-roots.p12', 'smcb-trust-roots-meta.json', 'ocsp-signers.p12', 'ocsp-signers-meta.json']);
    const file = (name: string) => out.volumeFiles.find((f) => f.path === name)!.source;
    expect(JSON.parse(await readFile(file('smcb-trust-roots-meta.json'), 'utf8'))).toEqual([
      { friendlyName: HOSTILE, tspName: 'TSP "One"' },
      { friendlyName: 'Revoked SMC-B', tspName: 'Test TSP GmbH', revokedSince: '2025-05-05T05:05:05Z' },
    ]);
    expect(existsSync('/tmp/zp-pwned')).toBe(false);
    const info = await openssl(['pkcs12', '-info', '-nokeys', '-in', file('smcb-trust-roots.p12'), '-passin', 'pass:no_secret_for_trust_only']);
    expect(info.exitCode, info.stderr).toBe(0);
    expect([...info.stdout.matchAll(/friendlyName: (.*)/g)].map((m) => m[1])).toEqual([HOSTILE, 'Revoked SMC-B']);
    expect(out.processed).toEqual([
      expect.objectContaining({ processor: 'tsl', input: layout === 'flat' ? 'ECC-RSA_TSL-test.xml' : 'tsl/ECC_TU_TSL_1.xml', signatureChecked: false }),
    ]);
    expect(out.processed![0]!.detail).toMatch(/2 SMC-B CA\(s\), 1 OCSP signer\(s\); signature NOT checked \(no TSL signer anchor configured\)/);
  });

  it('is deterministic: same inputs and password → same bytes; another password → other bytes', async () => {
    const root = await payload('flat');
    const read = async (o: Awaited<ReturnType<typeof derive>>) => Promise.all(o.volumeFiles.map((f) => readFile(f.source)));
    const a = await read(await derive(root));
    const b = await read(await derive(root));
    expect(b).toEqual(a);
    const c = await read(await derive(root, CONFIG, { truststorePassword: 'another-password' }));
    expect(c[0]).not.toEqual(a[0]);
    expect(c[1]).toEqual(a[1]);
  });

  it('takes the password from a file when TRUSTSTORE_PASS is absent, and hands it to the redactor first', async () => {
    const root = await payload('flat');
    const pwFile = path.join(root, '..', `pw-${path.basename(root)}`);
    await writeFile(pwFile, 's3cret-from-file\n');
    const secrets: string[] = [];
    const out = await derive(root, CONFIG, { truststorePasswordFile: pwFile, onSecret: (s: string) => secrets.push(s) });
    expect(secrets).toEqual(['s3cret-from-file']);
    const p12 = out.volumeFiles[0]!.source;
    expect((await openssl(['pkcs12', '-info', '-nokeys', '-in', p12, '-passin', 'pass:s3cret-from-file'])).exitCode).toBe(0);
    expect((await openssl(['pkcs12', '-info', '-nokeys', '-in', p12, '-passin', 'pass:no_secret_for_trust_only'])).exitCode).not.toBe(0);
    const missing = await derive(root, CONFIG, { truststorePasswordFile: '/nonexistent/pw' }).catch((e: Error) => e);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as Error).message).toBe('cannot read the truststore password file /nonexistent/pw: ENOENT');
  });

  it('renames outputs by *_RESULT_FILENAME (env) over process.names (config); refuses paths and clashes', async () => {
    const root = await payload('flat');
    const yaml = CONFIG + 'configMaps:\n  - name: meta\n    files: [{ output: ocspMeta }]\n';
    const withNames = yaml.replace('process:\n', 'process:\n  names: { smcbMeta: from-config.json, ocspMeta: ocsp-config.json }\n');
    const out = await derive(root, withNames, { resultFilenames: { SMB_META_RESULT_FILENAME: 'from-env.json' } });
    expect(out.volumeFiles.map((f) => f.path)).toEqual(['smcb-trust-roots.p12', 'from-env.json', 'ocsp-signers.p12', 'ocsp-config.json']);
    expect(Object.keys(out.configMaps[0]!.data)).toEqual(['ocsp-config.json']);
    await expect(derive(root, CONFIG, { resultFilenames: { SMB_META_RESULT_FILENAME: '../etc/passwd' } })).rejects.toThrow(
      /SMB_META_RESULT_FILENAME="..\/etc\/passwd" is not a plain file name/,
    );
    await expect(derive(root, CONFIG, { resultFilenames: { OCSP_META_RESULT_FILENAME: 'smcb-trust-roots.p12' } })).rejects.toThrow(
      /outputs smcbTruststore and ocspMeta would both be written as smcb-trust-roots.p12/,
    );
    const gematikNames = await derive(root, CONFIG, { resultFilenames: { SMB_RESULT_FILENAME: 'smb.p12', OCSP_RESULT_FILENAME: 'ocsp.p12' } });
    expect(gematikNames.volumeFiles.map((f) => f.path)).toEqual(['smb.p12', 'smcb-trust-roots-meta.json', 'ocsp.p12', 'ocsp-signers-meta.json']);
  });

  it('refuses an ambiguous glob, a symlinked input, a missing input, and outputs no processor makes', async () => {
    const root = await payload('subdir');
    await writeFile(path.join(root, 'tsl', 'ECC_TU_TSL_2.xml'), await readFile(path.join(root, 'tsl', 'ECC_TU_TSL_1.xml')));
    await expect(derive(root)).rejects.toThrow('TSL: "tsl/*.xml" matches 2 payload entries (tsl/ECC_TU_TSL_1.xml, tsl/ECC_TU_TSL_2.xml); name one');
    const linked = await tempDir();
    await symlink('/etc/hostname', path.join(linked, 'ECC-RSA_TSL-test.xml'));
    await expect(derive(linked)).rejects.toThrow(VerifyError);
    await expect(derive(linked)).rejects.toThrow('ECC-RSA_TSL-test.xml: TSL input is a symbolic link; refused');
    await expect(derive(await tempDir())).rejects.toThrow('TSL: the payload has none of ECC-RSA_TSL-test.xml, tsl/*.xml');
    expect(() => parseConfigText('volume:\n  outputs: [rootsJson]\n', 'c.yaml', '/')).toThrow(
      'c.yaml:2: volume.outputs.0: output "rootsJson" is not produced: configure its processor under process:',
    );
    expect(() => parseConfigText('process:\n  roots: { files: ../roots.json }\n', 'c.yaml', '/')).toThrow(
      /process.roots.files.0: "..\/roots.json": must not contain ".."/,
    );
  });

  it('reads the file TSL_FILENAME names instead of the configured candidates', async () => {
    const root = await payload('subdir');
    await writeFile(path.join(root, 'ECC-RSA_TSL-test.xml'), 'not xml at all');
    const out = await derive(root, CONFIG, { inputFilenames: { TSL_FILENAME: 'tsl/ECC_TU_TSL_1.xml' } });
    expect(out.processed![0]!.input).toBe('tsl/ECC_TU_TSL_1.xml');
    await expect(derive(root, CONFIG, { inputFilenames: { TSL_FILENAME: 'ECC-RSA_TSL.xml' } })).rejects.toThrow(
      'TSL (TSL_FILENAME): the payload has none of ECC-RSA_TSL.xml',
    );
    expect(gematikFromEnv({ TSL_FILENAME: 'tsl/x.xml', TPM_CAB_FILENAME: '' }).inputFilenames).toEqual({ TSL_FILENAME: 'tsl/x.xml' });
    expect(() => gematikFromEnv({ TPM_CAB_FILENAME: '../../etc/shadow' })).toThrow('TPM_CAB_FILENAME="../../etc/shadow": must not contain ".."');
  });

  it('uses the flat file when both layouts are present, and says which other file was ignored', async () => {
    const root = await payload('flat');
    await mkdir(path.join(root, 'tsl'));
    await cp(path.join(root, 'ECC-RSA_TSL-test.xml'), path.join(root, 'tsl', 'old.xml'));
    const out = await derive(root);
    expect(out.processed![0]!.input).toBe('ECC-RSA_TSL-test.xml');
    expect(out.warnings).toContain('TSL: using ECC-RSA_TSL-test.xml; tsl/old.xml is also present and was not used');
  });
});

describe.skipIf(!existsSync(REAL))('process stage on the real payload (policy signer, roots.json, TPM)', () => {
  it('TPM: reads only an Authenticode-verified cabinet; the optional PEM bundle holds the same 2,198 certificates', async () => {
    const yaml = 'process:\n  tpm: { files: [TrustedTpm.cab], pemBundle: true }\nvolume:\n  outputs: [tpmTruststore, tpmPemBundle]\n';
    await expect(derive(REAL, yaml)).rejects.toThrow('TrustedTpm.cab: the TPM processor needs a cabinet whose Authenticode signature was verified');
    const out = await derive(REAL, yaml, { authenticodeVerified: new Set(['TrustedTpm.cab']) });
    expect(out.volumeFiles.map((f) => f.path)).toEqual(['tpm-trust-roots.p12', 'tpm-trust-roots.pem']);
    const pem = await readFile(out.volumeFiles[1]!.source, 'utf8');
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2198);
    const info = await openssl(['pkcs12', '-info', '-nokeys', '-in', out.volumeFiles[0]!.source, '-passin', 'pass:no_secret_for_trust_only']);
    const p12Certs = info.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    const pemCerts = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(pemCerts.map((c) => c.replace(/\s/g, ''))).toEqual(p12Certs.map((c) => c.replace(/\s/g, '')));
  }, 120_000);

  it('publishes roots.json byte for byte and policy-signer.pub as a ConfigMap', async () => {
    const yaml = `
process:
  policySigner: { dirs: [policy-engine-bundle-keys] }
  roots: { files: [roots.json, ti-roots/roots.json] }
configMaps:
  - name: opa-policy-signer
    files: [{ output: policySignerKey }]
  - name: pep-ti-roots
    files: [{ output: rootsJson, key: roots.json }]
`;
    const out = await derive(REAL, yaml, { now: new Date('2026-11-29T00:00:00Z') });
    expect(out.configMaps.map((c) => [c.name, Object.keys(c.data)])).toEqual([
      ['opa-policy-signer', ['policy-signer.pub']],
      ['pep-ti-roots', ['roots.json']],
    ]);
    expect(out.configMaps[1]!.data['roots.json']).toBe(await readFile(path.join(REAL, 'roots.json'), 'utf8'));
    expect(out.configMaps[0]!.data['policy-signer.pub']).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(out.warnings).toContain('roots.json: using roots.json; ti-roots/roots.json is also present and was not used');
  });
});
