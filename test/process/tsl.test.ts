/**
 * TSL processor. Selections on the real gematik test TSL are compared with an independent computation
 * (libxml2's xmllint XPath + openssl); signatures are made and cross-checked with xmlsec1 (libxmlsec1),
 * an XMLDSig implementation that shares no code with ours (src/process/tsl/xmldsig.ts).
 */
import nodeCrypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates } from '../../src/pki/certs.js';
import { processTsl, type TslOptions } from '../../src/process/tsl/index.js';
import { genKey, makePki, opensslOk, type Pki } from '../support/openssl.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { derFromPem, SMCB_EXT, tslXml, TYPE_OCSP, type FixtureService } from './tsl-fixture.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');
const REAL_TSL = path.join(REALWORLD, 'gematik-test', 'ECC-RSA_TSL-test.xml');
const tempDir = useTempDirs();
const sha256 = (b: Buffer): string => nodeCrypto.createHash('sha256').update(b).digest('hex');
const opts = (o: Partial<TslOptions> = {}): TslOptions => ({ now: new Date('2026-06-01T00:00:00Z'), warnDays: 7, graceDays: 0, signerAnchors: [], ...o });

function failure(fn: () => unknown): VerifyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VerifyError) return err;
    throw err;
  }
  throw new Error('expected a VerifyError');
}

let suiteDir: string;
let pki: Pki;
let certA: Buffer;
let certB: Buffer;
let certC: Buffer;

beforeAll(async () => {
  await requireProgram('openssl', 'openssl');
  await requireProgram('xmllint', 'libxml2-utils');
  await requireProgram('xmlsec1', 'xmlsec1');
  // Lives for the whole file (useTempDirs removes its dirs after every test).
  suiteDir = await mkdtemp(path.join(os.tmpdir(), 'zp-tsl-'));
  pki = await makePki(path.join(suiteDir, 'pki'), 'TSL', 'bp256');
  [certA, certB, certC] = await Promise.all([derFromPem(pki.rootPem), derFromPem(pki.intPem), derFromPem(pki.leafPem)]);
}, 120_000);
afterAll(async () => {
  if (suiteDir) await rm(suiteDir, { recursive: true, force: true });
});

describe.skipIf(!existsSync(REAL_TSL))('real gematik test TSL', () => {
  /** Independent selection: XPath 1.0 in libxml2, certificates hashed after openssl parsed them. */
  async function xpathCerts(predicate: string): Promise<{ names: string[]; sha: string[] }> {
    const svc = `//*[local-name()='TSPService']/*[local-name()='ServiceInformation'][${predicate}]`;
    const certsOut = (await execa('xmllint', ['--xpath', `${svc}//*[local-name()='X509Certificate']`, REAL_TSL])).stdout;
    const namesOut = (await execa('xmllint', ['--xpath', `${svc}/*[local-name()='ServiceName']/*[local-name()='Name'][1]/text()`, REAL_TSL])).stdout;
    const dir = await tempDir();
    const b64 = [...certsOut.matchAll(/<X509Certificate>([^<]+)<\/X509Certificate>/g)].map((m) => m[1]!.replace(/\s+/g, ''));
    const sha: string[] = [];
    for (let i = 0; i < b64.length; i += 8) {
      const batch = b64.slice(i, i + 8).map(async (b, j) => {
        const der = path.join(dir, `${i + j}.der`);
        await writeFile(der, Buffer.from(b, 'base64'));
        const fp = await opensslOk(['x509', '-inform', 'DER', '-in', der, '-noout', '-fingerprint', '-sha256']);
        return fp.split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
      });
      sha.push(...(await Promise.all(batch)));
    }
    return { names: namesOut.split('\n').filter((n) => n !== ''), sha };
  }

  it('selects exactly the SMC-B CAs and OCSP signers an XPath/openssl computation finds', async () => {
    const result = processTsl(await readFile(REAL_TSL), 'ECC-RSA_TSL-test.xml', opts());
    const status = `(*[local-name()='ServiceStatus']='http://uri.etsi.org/TrstSvc/Svcstatus/inaccord' or *[local-name()='ServiceStatus']='http://uri.etsi.org/TrstSvc/Svcstatus/revoked')`;
    const smcb = await xpathCerts(
      `*[local-name()='ServiceInformationExtensions']/*[local-name()='Extension'][*[local-name()='ExtensionOID']='1.2.276.0.76.4.77' and *[local-name()='ExtensionValue']='oid_smc_b_aut'] and ${status}`,
    );
    const ocsp = await xpathCerts(
      `*[local-name()='ServiceTypeIdentifier']='http://uri.etsi.org/TrstSvc/Svctype/Certstatus/OCSP' and *[local-name()='ServiceStatus']='http://uri.etsi.org/TrstSvc/Svcstatus/inaccord'`,
    );
    expect(smcb.sha.length).toBe(36);
    expect(ocsp.sha.length).toBe(101);
    expect(result.smcb.entries.map((e) => e.sha256)).toEqual(smcb.sha);
    expect(result.ocsp.entries.map((e) => e.sha256)).toEqual(ocsp.sha);
    expect(result.smcb.entries.map((e) => e.friendlyName)).toEqual(smcb.names);
    expect(result.ocsp.entries.map((e) => e.friendlyName)).toEqual(ocsp.names);
    expect(result.smcb.entries[0]).toMatchObject({ tspName: 'achelos GmbH', friendlyName: expect.stringContaining('ACHELOS.SMCB-CA20') });
    expect(result.signature).toEqual({ checked: false, reason: 'no TSL signer anchor configured' });
    expect(result.sequenceNumber).toBe('10691');
  });

  it('is expired on its own terms: NextUpdate 2026-07-13 fails after the grace period, warns within it', async () => {
    const bytes = await readFile(REAL_TSL);
    const late = failure(() => processTsl(bytes, 'tsl.xml', opts({ now: new Date('2026-11-29T00:00:00Z'), graceDays: 30 })));
    expect(late.message).toMatch(/TSL expired: NextUpdate was 2026-07-13T23:00:13.000Z, 138 day\(s\) ago, beyond the grace period of 30 day/);
    const ok = processTsl(bytes, 'tsl.xml', opts({ now: new Date('2026-11-29T00:00:00Z'), graceDays: 200 }));
    expect(ok.warnings).toContain('tsl.xml: TSL is past its NextUpdate (2026-07-13T23:00:13.000Z), within the grace period of 200 day(s)');
  });

  it('its stored signature does not verify (the file was changed after signing); xmlsec1 agrees', async () => {
    const dir = await tempDir();
    const text = await readFile(REAL_TSL, 'utf8');
    const b64 = /<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/.exec(text)![1]!.replace(/&#xD;|\s/g, '');
    const signerPem = path.join(dir, 'signer.pem');
    await writeFile(signerPem, `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
    const anchors = await loadCertificates([signerPem]);
    const err = failure(() => processTsl(Buffer.from(text), 'tsl.xml', opts({ signerAnchors: anchors })));
    expect(err.message).toMatch(
      /^tsl\.xml: TSL signature: the TSL was altered after signing: digest of the signed document differs \(reference 1 \(URI="", Id "Reference-TSL-1781391613889"\)\)/,
    );
    const peer = await execa('xmlsec1', ['--verify', '--pubkey-cert-pem', signerPem, '--id-attr:Id', 'SignedProperties', REAL_TSL], { reject: false });
    expect(peer.exitCode).not.toBe(0);
  });
});

describe('selection rules', () => {
  const services = (): FixtureService[] => [
    { name: 'SMCB-CA in accord', certs: [certA], extensions: [['1.2.276.0.76.4.76', 'oid_smc_b_enc'], SMCB_EXT] },
    { name: 'SMCB-CA revoked', status: 'revoked', since: '2024-02-03T04:05:06Z', certs: [certB], extensions: [SMCB_EXT] },
    { name: 'SMCB-CA withdrawn', status: 'withdrawn', certs: [certC], extensions: [SMCB_EXT] },
    { name: 'HBA-CA', certs: [certC], extensions: [['1.2.276.0.76.4.77', 'oid_hba_aut']] },
    { name: 'wrong OID, right value', certs: [certC], extensions: [['1.2.276.0.76.4.78', 'oid_smc_b_aut']] },
    { name: 'was SMC-B once', certs: [certC], history: { status: 'inaccord', extensions: [SMCB_EXT] } },
    { name: 'OCSP in accord', type: TYPE_OCSP, certs: [certC, certA] },
    { name: 'OCSP revoked', type: TYPE_OCSP, status: 'revoked', certs: [certB] },
  ];

  it('takes SMC-B CAs in accord or revoked (with revokedSince), OCSP signers only in accord, and ignores history', () => {
    const r = processTsl(Buffer.from(tslXml(services())), 't.xml', opts());
    expect(r.smcb.entries.map(({ friendlyName, tspName, revokedSince, sha256: s }) => ({ friendlyName, tspName, revokedSince, s }))).toEqual([
      { friendlyName: 'SMCB-CA in accord', tspName: 'Test TSP GmbH', revokedSince: undefined, s: sha256(certA) },
      { friendlyName: 'SMCB-CA revoked', tspName: 'Test TSP GmbH', revokedSince: '2024-02-03T04:05:06Z', s: sha256(certB) },
    ]);
    expect(r.ocsp.entries.map((e) => [e.friendlyName, e.sha256])).toEqual([
      ['OCSP in accord', sha256(certC)],
      ['OCSP in accord', sha256(certA)],
    ]);
  });

  it('leaves out certificates OpenSSL cannot parse (one bad bag makes OpenSSL reject a whole PKCS#12)', () => {
    const r = processTsl(Buffer.from(tslXml([{ name: 'broken', certs: [Buffer.from('not a certificate'), certA], extensions: [SMCB_EXT] }])), 't.xml', opts());
    expect(r.smcb.entries.map((e) => e.sha256)).toEqual([sha256(certA)]);
    expect(r.warnings.some((w) => w.startsWith('SMC-B CA "broken": certificate does not parse ('))).toBe(true);
  });

  it('says so when a selection is empty', () => {
    const r = processTsl(Buffer.from(tslXml([{ name: 'only OCSP', type: TYPE_OCSP, certs: [certA] }])), 't.xml', opts());
    expect(r.smcb.entries).toEqual([]);
    expect(r.warnings).toContain('t.xml: no SMC-B CA selected; the SMC-B truststore is empty');
    expect(r.warnings.filter((w) => w.includes('OCSP truststore is empty'))).toEqual([]);
  });

  it('keeps shell syntax, quotes and markup in names as plain text; control characters become spaces', () => {
    const name = `CA "quoted" 'single' $(touch /tmp/pwned) \`id\` ; rm -rf / <b>&amp;`;
    const r = processTsl(Buffer.from(tslXml([{ tsp: 'TSP $(reboot)\nFake: log line', name, certs: [certA], extensions: [SMCB_EXT] }])), 't.xml', opts());
    expect(r.smcb.entries[0]!.friendlyName).toBe(name);
    expect(r.smcb.entries[0]!.tspName).toBe('TSP $(reboot) Fake: log line');
  });

  it('warns within warnDays of NextUpdate, not earlier', () => {
    const xml = Buffer.from(tslXml(services(), { nextUpdate: '2026-06-05T00:00:00Z' }));
    expect(processTsl(xml, 't.xml', opts({ warnDays: 7 })).warnings).toContain('t.xml: TSL NextUpdate 2026-06-05T00:00:00.000Z is less than 7 day(s) away');
    expect(processTsl(xml, 't.xml', opts({ warnDays: 3 })).warnings.filter((w) => w.includes('NextUpdate'))).toEqual([]);
    const closed = Buffer.from(tslXml(services()).replace(/<NextUpdate>.*<\/NextUpdate>/, '<NextUpdate/>'));
    expect(failure(() => processTsl(closed, 't.xml', opts())).message).toMatch(/no NextUpdate \(a closed list\)/);
  });
});

describe('hostile XML', () => {
  const body = (): string => tslXml([{ name: 'x', certs: [certA], extensions: [SMCB_EXT] }]);
  it.each([
    ['external entity', '<!DOCTYPE TrustServiceStatusList [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 'DOCTYPE'],
    [
      'billion laughs',
      `<!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('')}]>`,
      'DOCTYPE',
    ],
    ['lower-case doctype', '<!doctype x SYSTEM "http://127.0.0.1:1/x.dtd">', 'DOCTYPE'],
  ])('refuses a DTD (%s) before parsing', (_label, prolog, word) => {
    const xml = body()
      .replace('<TrustServiceStatusList', `${prolog}\n<TrustServiceStatusList`)
      .replace('<Name xml:lang="DE">x</Name>', '<Name xml:lang="DE">&xxe;&lol9;</Name>');
    const err = failure(() => processTsl(Buffer.from(xml), 'evil.xml', opts()));
    expect(err.message).toContain(`<!${word} declaration; DTDs and entities are refused`);
    expect(err.file).toBe('evil.xml');
  });

  it('refuses undefined entities, broken XML, UTF-16 and other encodings, and non-TSL roots', () => {
    expect(failure(() => processTsl(Buffer.from(body().replace('<Name xml:lang="DE">x', '<Name xml:lang="DE">&xxe;')), 'e.xml', opts())).message).toMatch(
      /not well-formed XML/,
    );
    expect(failure(() => processTsl(Buffer.from(body().replace('</TSPServices>', '')), 'e.xml', opts())).message).toMatch(/not well-formed XML/);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(body(), 'utf16le')]);
    expect(failure(() => processTsl(utf16, 'e.xml', opts())).message).toMatch(/UTF-16/);
    expect(failure(() => processTsl(Buffer.from(body().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')), 'e.xml', opts())).message).toMatch(/only UTF-8/);
    expect(failure(() => processTsl(Buffer.from('<?xml version="1.0"?><x/>'), 'e.xml', opts())).message).toMatch(/not an ETSI TSL/);
  });
});

describe('XML signature', () => {
  let signerPem: string;
  let signerKey: string;
  let otherPem: string;

  beforeAll(async () => {
    const dir = suiteDir;
    signerKey = path.join(dir, 'tsl-signer.key');
    signerPem = path.join(dir, 'tsl-signer.pem');
    await genKey(signerKey, 'bp256');
    const ext = path.join(dir, 'ext.cnf');
    await writeFile(
      ext,
      '[e]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,nonRepudiation\nextendedKeyUsage=0.4.0.2231.3.0\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    await opensslOk(['req', '-new', '-key', signerKey, '-subj', '/C=DE/O=Test/CN=TSL Signing Unit', '-out', `${signerPem}.csr`]);
    await opensslOk([
      'x509',
      '-req',
      '-in',
      `${signerPem}.csr`,
      '-CA',
      pki.intPem,
      '-CAkey',
      pki.intKey,
      '-set_serial',
      '77',
      '-days',
      '30',
      '-extfile',
      ext,
      '-extensions',
      'e',
      '-out',
      signerPem,
    ]);
    otherPem = path.join(dir, 'other.pem');
    await opensslOk(['req', '-x509', '-new', '-key', signerKey, '-subj', '/CN=Other Root', '-days', '30', '-out', otherPem]);
  }, 60_000);

  async function signed(services: FixtureService[]): Promise<{ file: string; bytes: Buffer }> {
    const dir = await tempDir();
    const tmpl = path.join(dir, 'tmpl.xml');
    const file = path.join(dir, 'signed.xml');
    await writeFile(tmpl, tslXml(services, { signatureTemplate: true }));
    // KeyInfo carries signer + intermediate, as gematik's TSLs carry the signer.
    await execa('xmlsec1', ['--sign', '--privkey-pem', `${signerKey},${signerPem},${pki.intPem}`, '--output', file, tmpl]);
    return { file, bytes: await readFile(file) };
  }
  const svc = (): FixtureService[] => [{ name: 'Signed SMC-B CA', certs: [certA], extensions: [SMCB_EXT] }];

  it('accepts a list signed by a signer under the anchor (xmlsec1 verifies it too)', async () => {
    const { file, bytes } = await signed(svc());
    const peer = await execa('xmlsec1', ['--verify', '--trusted-pem', pki.rootPem, '--untrusted-pem', pki.intPem, file], { reject: false });
    expect(peer.exitCode, peer.stderr).toBe(0);
    const r = processTsl(bytes, 'signed.xml', opts({ now: new Date(), signerAnchors: await loadCertificates([pki.rootPem]) }));
    expect(r.signature).toMatchObject({ checked: true, signer: 'CN=TSL Signing Unit, O=Test, C=DE', anchor: 'CN=Test Root TSL, O=Example Org, C=DE' });
    expect(r.smcb.entries.map((e) => e.friendlyName)).toEqual(['Signed SMC-B CA']);
    expect(r.warnings.join('\n')).not.toMatch(/signature not checked/);
  });

  it('refuses a signed list changed afterwards: a service name, an added service, a removed signature', async () => {
    const { file, bytes } = await signed(svc());
    const anchors = await loadCertificates([pki.rootPem]);
    const text = bytes.toString('utf8');
    const renamed = Buffer.from(text.replace('Signed SMC-B CA', 'Evil SMC-B CA'));
    expect(failure(() => processTsl(renamed, 's.xml', opts({ now: new Date(), signerAnchors: anchors }))).message).toMatch(/TSL signature: .*digest/);
    await writeFile(file, renamed);
    expect((await execa('xmlsec1', ['--verify', '--trusted-pem', pki.rootPem, '--untrusted-pem', pki.intPem, file], { reject: false })).exitCode).not.toBe(0);
    const added = Buffer.from(
      text.replace(
        '<TSPServices>',
        `<TSPServices><TSPService><ServiceInformation><ServiceTypeIdentifier>x</ServiceTypeIdentifier></ServiceInformation></TSPService>`,
      ),
    );
    expect(failure(() => processTsl(added, 's.xml', opts({ now: new Date(), signerAnchors: anchors }))).message).toMatch(/TSL signature/);
    const stripped = Buffer.from(text.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, ''));
    expect(failure(() => processTsl(stripped, 's.xml', opts({ now: new Date(), signerAnchors: anchors }))).message).toMatch(
      /expected exactly one ds:Signature, found 0/,
    );
  });

  it('refuses a valid signature by a signer outside the configured anchors', async () => {
    const { bytes } = await signed(svc());
    const anchors = await loadCertificates([otherPem]);
    const err = failure(() => processTsl(bytes, 's.xml', opts({ now: new Date(), signerAnchors: anchors })));
    expect(err.message).toMatch(
      /TSL signature: no path from the TSL signer "CN=TSL Signing Unit, O=Test, C=DE" to a trusted GEM root \(configured anchors\): issuer "CN=Test Root TSL, O=Example Org, C=DE" of "CN=Test Intermediate TSL, O=Example Org, C=DE" not found/,
    );
    expect((err as VerifyError).hint).toMatch(/add the issuing GEM\.TSL-CA or its GEM\.RCA root with --tsl-signer-anchor FILE/);
  });

  it('without an anchor, says the signature was not checked', async () => {
    const { bytes } = await signed(svc());
    const r = processTsl(bytes, 's.xml', opts({ now: new Date() }));
    expect(r.signature).toEqual({ checked: false, reason: 'no TSL signer anchor configured' });
    expect(r.warnings).toContain('s.xml: TSL signature not checked (no TSL signer anchor configured): a forged or altered list would be accepted');
  });
});
