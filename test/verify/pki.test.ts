/** Certificate loading, naming and signature checks on node:crypto (the pieces under CMS verification). */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, VerifyError } from '../../src/errors.js';
import { certSha256, loadCertificates, parseCertificate, subjectString } from '../../src/pki/certs.js';
import { signedBy, validateChain } from '../../src/pki/chain.js';
import { makePki, opensslOk, type Pki } from '../support/openssl.js';

let tmp: string;
let bp: Pki;
let pss: Pki;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-pki-'));
  bp = await makePki(path.join(tmp, 'bp'), 'brainpoolP256r1', 'bp256');
  pss = await makePki(path.join(tmp, 'pss'), 'PSS', 'rsa', { pss: true });
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('loadCertificates', () => {
  it('reads a multi-certificate PEM with CRLF line ends, a DER file and a directory', async () => {
    const pem = (await Promise.all([bp.rootPem, bp.intPem, bp.leafPem].map((f) => readFile(f, 'utf8')))).join('');
    const crlf = path.join(tmp, 'bundle-crlf.pem');
    await writeFile(crlf, `leading text\r\n${pem.replace(/\n/g, '\r\n')}`);
    const der = path.join(tmp, 'root.der');
    await opensslOk(['x509', '-in', pss.rootPem, '-outform', 'DER', '-out', der]);

    const certs = await loadCertificates([crlf, der]);
    expect(certs.map(subjectString)).toEqual([
      'CN=Test Root brainpoolP256r1, O=Example Org, C=DE',
      'CN=Test Intermediate brainpoolP256r1, O=Example Org, C=DE',
      'CN=Test Signer brainpoolP256r1, O=Example Org, C=DE',
      'CN=Test Root PSS, O=Example Org, C=DE',
    ]);

    // A directory: regular files (and symlinks to them) only; subdirectories are not descended into.
    const dir = path.join(tmp, 'anchors');
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'sub', 'ignored.pem'), 'not read');
    await symlink(der, path.join(dir, 'a.der'));
    await writeFile(path.join(dir, 'b.pem'), await readFile(bp.rootPem));
    const fromDir = await loadCertificates([dir, der]); // the duplicate DER is returned once
    expect(fromDir.map(subjectString)).toEqual(['CN=Test Root PSS, O=Example Org, C=DE', 'CN=Test Root brainpoolP256r1, O=Example Org, C=DE']);
  });

  it('names the path that holds no certificate', async () => {
    const empty = path.join(tmp, 'empty.pem');
    await writeFile(empty, '');
    await expect(loadCertificates([empty])).rejects.toThrow(new ConfigError(`${empty}: contains no certificate`));
    const key = path.join(tmp, 'only-key.pem');
    await writeFile(key, await readFile(bp.leafKey));
    await expect(loadCertificates([key])).rejects.toThrow(`${key}: contains no certificate`);
    const garbage = path.join(tmp, 'garbage.der');
    await writeFile(garbage, Buffer.from([1, 2, 3, 4]));
    await expect(loadCertificates([garbage])).rejects.toBeInstanceOf(ConfigError);
    await expect(loadCertificates([path.join(tmp, 'missing.pem')])).rejects.toThrow(/missing\.pem: cannot read certificates/);
  });

  it('parseCertificate throws VerifyError on garbage', () => {
    expect(() => parseCertificate(Buffer.from('garbage'))).toThrow(VerifyError);
  });
});

describe('naming and fingerprints', () => {
  it("certSha256 equals openssl's SHA-256 fingerprint", async () => {
    const [cert] = await loadCertificates([bp.leafPem]);
    const out = await opensslOk(['x509', '-in', bp.leafPem, '-noout', '-fingerprint', '-sha256']);
    expect(certSha256(cert!)).toBe(out.split('=')[1]!.trim().replace(/:/g, '').toLowerCase());
  });

  it('subjectString covers the common attributes and escapes specials', async () => {
    const key = path.join(tmp, 'k.pem');
    await opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    const cert = path.join(tmp, 'names.pem');
    await opensslOk([
      'req',
      '-x509',
      '-new',
      '-config',
      bp.cnf,
      '-key',
      key,
      '-days',
      '1',
      '-out',
      cert,
      '-subj',
      '/C=DE/ST=Berlin/L=Berlin/O=Example, Org/OU=Unit/CN=Signer\\+1/serialNumber=42/emailAddress=a@example.org',
    ]);
    const [c] = await loadCertificates([cert]);
    expect(subjectString(c!)).toBe('emailAddress=a@example.org, serialNumber=42, CN=Signer\\+1, OU=Unit, O=Example\\, Org, L=Berlin, ST=Berlin, C=DE');
  });
});

describe('node:crypto engine and chain', () => {
  it('certificate signatures verify for brainpool and RSA-PSS issuers, and only by the issuer', async () => {
    for (const pki of [bp, pss]) {
      const [root, int, leaf] = await loadCertificates([pki.rootPem, pki.intPem, pki.leafPem]);
      expect(signedBy(int!, root!)).toBe(true);
      expect(signedBy(leaf!, int!)).toBe(true);
      expect(signedBy(leaf!, root!)).toBe(false);
    }
  });

  it('validateChain: any of several anchors, earliest expiry, and a precise reason without anchor', async () => {
    const [root, int, leaf] = await loadCertificates([pss.rootPem, pss.intPem, pss.leafPem]);
    const [otherRoot] = await loadCertificates([bp.rootPem]);
    const r = validateChain({ leaf: leaf!, intermediates: [int!], anchors: [otherRoot!, root!], at: new Date() });
    expect(r.path.map(subjectString)).toEqual([subjectString(leaf!), subjectString(int!), subjectString(root!)]);
    expect(r.anchor).toBe(root);
    const minAfter = Math.min(...[root!, int!, leaf!].map((c) => c.notAfter.getTime()));
    expect(r.earliestExpiry.getTime()).toBe(minAfter);
    expect(() => validateChain({ leaf: leaf!, intermediates: [int!], anchors: [otherRoot!], at: new Date() })).toThrow(
      /no trusted anchor for "CN=Test Signer PSS, O=Example Org, C=DE": issuer "CN=Test Root PSS, O=Example Org, C=DE" of "CN=Test Intermediate PSS/,
    );
    expect(() => validateChain({ leaf: leaf!, intermediates: [int!], anchors: [root!], at: new Date('2100-01-01') })).toThrow(/expired on/);
  });
});
