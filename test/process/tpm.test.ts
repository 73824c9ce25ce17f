/**
 * The TPM trust set. On the real gematik-test TrustedTpm.cab the store must hold exactly the distinct
 * certificates an independent computation finds: cabextract, then `openssl x509` on every file (PEM
 * first, then DER) — without any extension filter, so the 113 `.CER` files gematik drops count too.
 * The store is then read back by openssl and keytool.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { buildTpmTrustSet, tpmTrustStoreFiles, type TpmTrustSet } from '../../src/process/tpm.js';
import { readCabinet } from '../../src/cab/index.js';
import { buildCab } from '../cab/build.js';
import { makePki, openssl } from '../support/openssl.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(import.meta.dirname, '../../../shared/realworld');
const realCab = path.join(realworld, 'gematik-test/TrustedTpm.cab');
const sha = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');
const PASSWORD = 'no_secret_for_trust_only';

/** Certificates in PEM text (what `openssl pkcs12 -nokeys` prints) → their DER SHA-256s. */
function pemHashes(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) =>
    sha(Buffer.from(p.replace(/-----[^-]+-----|\s/g, ''), 'base64')),
  );
}

/**
 * The independent computation, with one openssl process per set (2,200 processes take minutes on a
 * busy CI machine): every extracted file becomes a PEM block — PEM files as they are, anything else
 * base64-wrapped as if it were DER, like gematik's grep does — and `openssl storeutl -certs` reads the
 * bundle, skipping blocks OpenSSL cannot decode. Returns the SHA-256 of every certificate it printed.
 */
async function opensslCertificates(root: string, files: string[]): Promise<string[]> {
  const blocks: string[] = [];
  for (const f of files) {
    const data = await readFile(path.join(root, f));
    if (data.includes('BEGIN CERTIFICATE')) blocks.push(data.toString('latin1'));
    else blocks.push(`-----BEGIN CERTIFICATE-----\n${data.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`);
  }
  const bundle = path.join(root, '..', `bundle-${crypto.randomUUID()}.pem`);
  await writeFile(bundle, blocks.join('\n'));
  const r = await openssl(['storeutl', '-certs', bundle]);
  return pemHashes(r.stdout);
}

async function extracted(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

beforeAll(async () => {
  await requireProgram('openssl', 'openssl');
  await requireProgram('cabextract', 'cabextract');
  await requireProgram('keytool', 'default-jre-headless');
});

describe.skipIf(!existsSync(realCab))('TPM trust set from the real gematik-test TrustedTpm.cab', () => {
  let set: TpmTrustSet;
  let files: string[];
  let all: string[];
  let fromCer: string[];
  let notFromCer: Set<string>;
  let storeFile: string;

  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    // Shared by the tests of this block, so not a per-test temp dir.
    dir = await mkdtemp(path.join(os.tmpdir(), 'zp-tpm-'));
    const root = path.join(dir, 'x');
    const x = await execa('cabextract', ['-q', '-d', root, realCab], { reject: false });
    expect(x.exitCode, x.stderr).toBe(0);
    files = await extracted(root);
    all = await opensslCertificates(root, files);
    fromCer = await opensslCertificates(
      root,
      files.filter((f) => f.endsWith('.CER')),
    );
    notFromCer = new Set(
      await opensslCertificates(
        root,
        files.filter((f) => !f.endsWith('.CER')),
      ),
    );
    set = buildTpmTrustSet(await readFile(realCab));
    storeFile = path.join(dir, 'tpm-trust-roots.p12');
    await writeFile(storeFile, tpmTrustStoreFiles(set, { password: PASSWORD })[0]!.bytes);
  }, 300_000);

  it('holds exactly the distinct certificates openssl finds in the cabinet, .CER files included', () => {
    // The counts PROVENANCE.md records, recomputed here by cabextract and openssl.
    expect(files).toHaveLength(2209);
    expect(all).toHaveLength(2199);
    const distinct = new Set(all);
    expect(distinct.size).toBe(2198);
    expect(set.entries.map((e) => e.sha256).sort()).toEqual([...distinct].sort());

    // Every certificate of the 113 .CER files is in the store; most of them exist only there, so a
    // case-sensitive extension filter (gematik's) loses them.
    expect(fromCer).toHaveLength(113);
    const store = new Set(set.entries.map((e) => e.sha256));
    for (const h of fromCer) expect(store.has(h)).toBe(true);
    expect(fromCer.filter((h) => !notFromCer.has(h)).length).toBeGreaterThan(100);
  });

  it('reports files, certificates, unique, ignored and the six BER STMicro intermediates with their twins', () => {
    const r = set.report;
    expect({ files: r.files, certificateFiles: r.certificateFiles, certificates: r.certificates, unique: r.unique }).toEqual({
      files: 2209,
      certificateFiles: 2205,
      certificates: 2199,
      unique: 2198,
    });
    expect(r.certificateFilesByExtension).toEqual({ '.cer': 1820, '.crt': 253, '.CER': 113, '.der': 19 });
    expect(r.ignored).toEqual(['AMD/IntermediateCA/readme.txt', 'setup.cmd', 'setup.ps1', 'version.txt']);
    const stm = [
      'STM TPM ECC Intermediate CA 01',
      'STM TPM EK Intermediate CA 01',
      'STM TPM EK Intermediate CA 02',
      'STM TPM EK Intermediate CA 03',
      'STM TPM EK Intermediate CA 04',
      'STM TPM EK Intermediate CA 05',
    ];
    expect(r.rejected.map((x) => x.file)).toEqual(stm.map((n) => `STMicro/IntermediateCA/${n}.crt`));
    for (const [i, x] of r.rejected.entries()) {
      expect(all).not.toContain(x.sha256);
      expect(x.reason).toMatch(
        /^BER, not DER \(OpenSSL: .+\); not stored, .+; signature by "STM TPM (ECC Root CA 01|EK Root CA)" verifies; superseded by the DER certificate with the same key$/,
      );
      expect(x.supersededBy?.file).toBe(`STMicro/IntermediateCA/${stm[i]}_2.crt`);
      expect(x.supersededBy?.friendlyName).toMatch(new RegExp(`^${stm[i]} \\[[0-9a-f]{16}\\]$`));
    }
  });

  it('writes a store openssl pkcs12 and keytool list completely, under stable aliases', async () => {
    const o = await openssl(['pkcs12', '-nokeys', '-in', storeFile, '-passin', `pass:${PASSWORD}`]);
    expect(o.exitCode, o.stderr).toBe(0);
    expect(pemHashes(o.stdout).sort()).toEqual(set.entries.map((e) => e.sha256).sort());
    const names = [...o.stdout.matchAll(/friendlyName: (.*)/g)].map((m) => m[1]);
    expect(names).toEqual(set.entries.map((e) => e.friendlyName));

    const k = await execa('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', storeFile, '-storepass', PASSWORD], {
      reject: false,
      env: { LC_ALL: 'C.UTF-8' },
    });
    expect(k.exitCode, k.stderr).toBe(0);
    expect(k.stdout).toMatch(/Your keystore contains 2,?198 entries/); // Java formats the count by locale
    expect(k.stdout.match(/trustedCertEntry/g)).toHaveLength(2198);

    // Aliases are unique for Java too, which compares them case-insensitively.
    expect(new Set(names.map((n) => n!.toLowerCase())).size).toBe(2198);
  });

  it('writes the optional PEM bundle with the same certificates', async () => {
    const outputs = tpmTrustStoreFiles(set, { password: PASSWORD, pemName: 'tpm-trust-roots.pem' });
    expect(outputs.map((o) => o.name)).toEqual(['tpm-trust-roots.p12', 'tpm-trust-roots.pem']);
    const pem = path.join(dir, 'bundle.pem');
    await writeFile(pem, outputs[1]!.bytes);
    const r = await openssl(['storeutl', '-certs', pem]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(pemHashes(r.stdout)).toEqual(set.entries.map((e) => e.sha256));
  });

  it('is deterministic: the same cabinet gives the same store bytes', async () => {
    const again = tpmTrustStoreFiles(buildTpmTrustSet(await readFile(realCab)), { password: PASSWORD })[0]!.bytes;
    expect(sha(again)).toBe(sha(await readFile(storeFile)));
  });
});

describe('TPM trust set from constructed cabinets', () => {
  it('finds certificates by content (PEM with CRLF, DER, any extension), dedupes, ignores and rejects', async () => {
    const dir = await tempDir();
    const pki = await makePki(path.join(dir, 'pki'), 'TPM', 'p256');
    const rootPem = await readFile(pki.rootPem, 'utf8');
    const rootDer = Buffer.from(rootPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const intDer = Buffer.from((await readFile(pki.intPem, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const cab = buildCab(
      [
        { name: 'Vendor\\RootCA\\root.CRT', data: Buffer.from(rootPem.replace(/\n/g, '\r\n')) },
        { name: 'Vendor\\RootCA\\root copy.Der', data: rootDer },
        { name: 'Vendor\\IntermediateCA\\int', data: intDer },
        { name: 'setup.cmd', data: Buffer.from('@echo off\r\n') },
        { name: 'Vendor\\readme.txt', data: Buffer.from('-----BEGIN nothing-----') },
        { name: 'Vendor\\broken.cer', data: Buffer.from('-----BEGIN CERTIFICATE-----\r\n*** not base64 ***\r\n-----END CERTIFICATE-----\r\n') },
        { name: 'Vendor\\junk.cer', data: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05]) },
      ],
      { compression: 1 },
    );
    const set = buildTpmTrustSet(cab);
    const expected: [string, string, string[]][] = [
      [sha(rootDer), `Test Root TPM [${sha(rootDer).slice(0, 16)}]`, ['Vendor/RootCA/root copy.Der', 'Vendor/RootCA/root.CRT']],
      [sha(intDer), `Test Intermediate TPM [${sha(intDer).slice(0, 16)}]`, ['Vendor/IntermediateCA/int']],
    ];
    expected.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(set.entries.map((e) => [e.sha256, e.friendlyName, e.files])).toEqual(expected);
    expect(set.entries.map((e) => sha(e.certificate))).toEqual(expected.map((e) => e[0]));
    expect(set.report).toMatchObject({ files: 7, certificateFiles: 5, certificates: 3, unique: 2, ignored: ['Vendor/readme.txt', 'setup.cmd'] });
    expect(set.report.certificateFilesByExtension).toEqual({ '.CRT': 1, '.Der': 1, '': 1, '.cer': 2 });
    expect(set.report.rejected.map((r) => [r.file, r.reason.replace(/\(error:.*\)$/, '(…)')])).toEqual([
      ['Vendor/broken.cer', 'PEM block is not valid base64'],
      ['Vendor/junk.cer', 'not a certificate OpenSSL or a lenient parser can read (…)'],
    ]);
  });

  it('refuses a cabinet without any certificate, and passes on cabinet errors', () => {
    expect(() => buildTpmTrustSet(buildCab([{ name: 'setup.cmd', data: Buffer.from('x') }]), 'T.cab')).toThrow(
      new VerifyError('T.cab: holds no certificate OpenSSL can read', 'T.cab'),
    );
    expect(() => buildTpmTrustSet(buildCab([{ name: '..\\x.cer', data: Buffer.from('x') }]), 'T.cab')).toThrow(
      /T\.cab: file record 0 "\.\.\\\\x\.cer": refused/,
    );
  });

  it.skipIf(!existsSync(realCab))('reports a BER certificate without a DER twin as lost trust, and whether its signature verifies', async () => {
    const members = new Map<string, Buffer>();
    for (const { file, data } of readCabinet(await readFile(realCab))) if (file.name.startsWith('STMicro/')) members.set(file.name, data);
    const ber = members.get('STMicro/IntermediateCA/STM TPM EK Intermediate CA 02.crt')!;
    const root = ['', members.get('STMicro/RootCA/ST TPM Root Certificate.crt')!] as const; // subject CN=STM TPM EK Root CA
    const other = [...members].find(([n]) => n.endsWith('STM TPM EK Intermediate CA 06.CER'))!;
    const alone = buildTpmTrustSet(
      buildCab([
        { name: 'ber.crt', data: ber },
        { name: 'other.cer', data: other[1] },
      ]),
    );
    expect(alone.report.rejected).toHaveLength(1);
    expect(alone.report.rejected[0]!.reason).toMatch(
      /; its issuer is not in the cabinet; no DER certificate with the same key is in the cabinet: its trust is lost$/,
    );
    const withRoot = buildTpmTrustSet(
      buildCab([
        { name: 'ber.crt', data: ber },
        { name: 'root.cer', data: root[1] },
      ]),
    );
    expect(withRoot.report.rejected[0]!.reason).toMatch(/; signature by "STM TPM EK Root CA" verifies; no DER certificate with the same key/);
    expect(withRoot.entries).toHaveLength(1);
  });
});

/**
 * The exact bytes, pinned: outputs hashed on 2026-12-03 before the TPM processor's performance work
 * (issue 17). A change here means consumers that reload on a byte change would reload without any
 * change in trust — so an optimisation must reproduce them bit for bit.
 */
describe('TPM store bytes are pinned', () => {
  const PINNED: [cab: string, certificates: number, p12: string, pem: string][] = [
    [
      'gematik-test/TrustedTpm.cab',
      2198,
      '21389cd3b66d31fdb90105ea4ae5e153c68fe1440589c34f5cb7a0d609521d7e',
      '5b35d0f9486cdd85df274c69e59ee14bd50f446c488cf1776476e4d7a9cc8536',
    ],
    [
      'gematik-test/trusted-tpm/TrustedTpm.cab',
      2186,
      'a6962a7a8abac1ff50eb65cf29b0ae0e7cb3bdac00c8f7d25677d40008d3b6f7',
      '8bcc66c5611535a4106a0714782555b62e9adc63b6cec64c9d085f93acee015b',
    ],
    [
      'tpm-cab/TrustedTpm-10232021.cab',
      1600,
      'b1be8d11b17e4a351d48f700e1b118ca79b77184c48a75a2bddb9c9994693e31',
      'bdb82be82564c9596c109e77cc9c98dad216ab496be72ccefac75ea5bc6653c3',
    ],
  ];
  for (const [cab, certificates, p12, pem] of PINNED) {
    it.skipIf(!existsSync(path.join(realworld, cab)))(`${cab}: ${certificates} certificates, PKCS#12 and PEM bytes as pinned`, async () => {
      const set = buildTpmTrustSet(await readFile(path.join(realworld, cab)));
      expect(set.entries).toHaveLength(certificates);
      const [store, bundle] = tpmTrustStoreFiles(set, { password: PASSWORD, pemName: 'tpm-trust-roots.pem' });
      expect(sha(store!.bytes)).toBe(p12);
      expect(sha(bundle!.bytes)).toBe(pem);
    });
  }
});
