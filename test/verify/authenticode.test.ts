/**
 * Authenticode cabinets made in the test (gcab + osslsigncode, signed by a throwaway openssl CA): our
 * verdict must equal `osslsigncode verify`'s for each vector; where we are deliberately stricter, the
 * test says so. Real Microsoft cabinets are in authenticode-real.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates } from '../../src/pki/certs.js';
import { verifyAuthenticodeCab } from '../../src/verify/authenticode.js';
import type { TrustAnchors } from '../../src/verify/cms.js';
import { addTsaAndTls, bundle, makeCab, osslsigncodeVerify, requireCabPeers, signCab, type SignOptions } from '../support/authenticode.js';
import { makePki, type Pki } from '../support/openssl.js';

let tmp: string;
let unsigned: string;
let pki: Pki;
let other: Pki;
let trust: TrustAnchors;
let certs: string;
let tsaCerts: string;
let otherTsaCerts: string;
let tlsCerts: string;
/** TSA time: after the test certificates' notBefore (they are made "now"), so the chain is valid then. */
let tsaTime: Date;

beforeAll(async () => {
  await requireCabPeers();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-authenticode-'));
  const content = path.join(tmp, 'content');
  await mkdir(path.join(content, 'sub'), { recursive: true });
  await writeFile(path.join(content, 'setup.cmd'), 'echo hello\r\n');
  // Incompressible data spread over several CFDATA blocks (32 KiB each), so the tail is not trivial.
  await writeFile(path.join(content, 'sub', 'blob.bin'), randomBytes(300_000));
  unsigned = await makeCab(path.join(tmp, 'unsigned.cab'), content, ['setup.cmd', 'sub/blob.bin']);
  [pki, other] = await Promise.all([makePki(path.join(tmp, 'pki'), 'CAB', 'rsa'), makePki(path.join(tmp, 'other'), 'Other', 'rsa')]);
  const [{ tsaPem, tlsPem }, { tsaPem: otherTsa }] = await Promise.all([addTsaAndTls(pki, 'CAB'), addTsaAndTls(other, 'Other')]);
  certs = await bundle(path.join(tmp, 'certs.pem'), [pki.leafPem, pki.intPem]);
  tsaCerts = await bundle(path.join(tmp, 'tsa.pem'), [tsaPem, pki.intPem]);
  otherTsaCerts = await bundle(path.join(tmp, 'other-tsa.pem'), [otherTsa, other.intPem]);
  tlsCerts = await bundle(path.join(tmp, 'tls.pem'), [tlsPem, pki.intPem]);
  trust = { anchors: await loadCertificates([pki.rootPem]), intermediates: [] };
  tsaTime = new Date(Math.floor(Date.now() / 1000) * 1000 + 5_000);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function signed(opts: Partial<SignOptions> & { tsaFrom?: 'own' | 'other' } = {}): Promise<string> {
  const tsa = opts.tsaFrom
    ? { certs: opts.tsaFrom === 'own' ? tsaCerts : otherTsaCerts, key: opts.tsaFrom === 'own' ? pki.leafKey : other.leafKey, time: tsaTime }
    : undefined;
  return signCab(unsigned, path.join(tmp, `signed-${++counter}.cab`), { certs, key: pki.leafKey, ...opts, ...(tsa ? { tsa } : {}) });
}

async function ours(cab: string, anchors = trust, now?: Date): Promise<{ ok: true; timestamp?: string; subject: string } | { ok: false; reason: string }> {
  try {
    const r = await verifyAuthenticodeCab(cab, anchors, 'TrustedTpm.cab', now);
    return { ok: true, subject: r.signers[0]!.subject, ...(r.timestamp ? { timestamp: r.timestamp } : {}) };
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return { ok: false, reason: err.message };
  }
}

async function flip(src: string, offset: number, xor = 0xff): Promise<string> {
  const bytes = await readFile(src);
  bytes[offset] = bytes[offset]! ^ xor;
  const out = path.join(tmp, `flipped-${++counter}.cab`);
  await writeFile(out, bytes);
  return out;
}

describe('Authenticode cabinets against osslsigncode verify', () => {
  it.each([
    { name: 'SHA-256, no timestamp', opts: { hash: 'sha256' as const } },
    { name: 'SHA-256 with an RFC 3161 timestamp', opts: { hash: 'sha256' as const, tsaFrom: 'own' as const } },
    { name: 'SHA-384 with an RFC 3161 timestamp', opts: { hash: 'sha384' as const, tsaFrom: 'own' as const } },
    { name: 'SHA-512, no timestamp', opts: { hash: 'sha512' as const } },
  ])('good: $name', async ({ opts }) => {
    const cab = await signed(opts);
    const oracle = await osslsigncodeVerify(cab, pki.rootPem);
    expect(oracle.ok, oracle.output).toBe(true);
    const r = await ours(cab);
    expect(r).toMatchObject({ ok: true, subject: 'CN=Test Signer CAB, O=Example Org, C=DE' });
    if (opts.tsaFrom) expect(r).toMatchObject({ timestamp: tsaTime.toISOString() });
    else expect(r).not.toHaveProperty('timestamp');
  });

  it('wrong CA: both refuse', async () => {
    const cab = await signed({ tsaFrom: 'own' });
    const oracle = await osslsigncodeVerify(cab, other.rootPem);
    expect(oracle.ok).toBe(false);
    const r = await ours(cab, { anchors: await loadCertificates([other.rootPem]), intermediates: [] });
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ reason: expect.stringMatching(/no trusted anchor/) });
  });

  it('tampered cabinet data: both refuse, ours names the digest', async () => {
    const good = await signed({ tsaFrom: 'own' });
    // Inside the CFDATA area of the random blob (well past the header and file table).
    const cab = await flip(good, 100_000, 0x01);
    const oracle = await osslsigncodeVerify(cab, pki.rootPem);
    expect(oracle.ok).toBe(false);
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/cabinet digest does not match/) });
  });

  it('tampered file name in the CFFILE table: both refuse', async () => {
    const good = await signed({ tsaFrom: 'own' });
    const at = (await readFile(good)).indexOf('setup.cmd');
    expect(at).toBeGreaterThan(36);
    const cab = await flip(good, at, 0x20); // "Setup.cmd": an extractor would write another name
    expect((await osslsigncodeVerify(cab, pki.rootPem)).ok).toBe(false);
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/cabinet digest does not match/) });
  });

  it('leaf only in the signature: both refuse without the intermediate, both accept with it configured', async () => {
    const leafOnly = await signCab(unsigned, path.join(tmp, 'leaf-only.cab'), { certs: pki.leafPem, key: pki.leafKey, hash: 'sha256' });
    expect((await osslsigncodeVerify(leafOnly, pki.rootPem)).ok).toBe(false);
    expect(await ours(leafOnly)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/issuer "CN=Test Intermediate CAB, O=Example Org, C=DE" not found/),
    });
    // osslsigncode has no separate untrusted set: the intermediate goes into its CA file.
    const rootAndInt = await bundle(path.join(tmp, 'root-int.pem'), [pki.rootPem, pki.intPem]);
    expect((await osslsigncodeVerify(leafOnly, rootAndInt)).ok).toBe(true);
    const withInt = { anchors: trust.anchors, intermediates: await loadCertificates([pki.intPem]) };
    expect(await ours(leafOnly, withInt)).toMatchObject({ ok: true, subject: 'CN=Test Signer CAB, O=Example Org, C=DE' });
  });

  it('a rule EKU policy adds to codeSigning, it cannot replace it', async () => {
    const cab = await signed();
    const emailProtection = { oid: '1.3.6.1.5.5.7.3.4', name: 'emailProtection' };
    await expect(verifyAuthenticodeCab(cab, trust, 'TrustedTpm.cab', undefined, { requiredEkus: [emailProtection] })).rejects.toThrow(
      /signer certificate extendedKeyUsage lacks emailProtection \(signer "CN=Test Signer CAB/,
    );
    const tls = await signCab(unsigned, path.join(tmp, 'tls-rule.cab'), { certs: tlsCerts, key: pki.leafKey });
    const serverAuth = { oid: '1.3.6.1.5.5.7.3.1', name: 'serverAuth' };
    await expect(verifyAuthenticodeCab(tls, trust, 'TrustedTpm.cab', undefined, { requiredEkus: [serverAuth] })).rejects.toThrow(
      /extendedKeyUsage lacks codeSigning/,
    );
  });

  it('SHA-384 without a timestamp: both accept', async () => {
    const cab = await signed({ hash: 'sha384' });
    expect((await osslsigncodeVerify(cab, pki.rootPem)).ok).toBe(true);
    expect(await ours(cab)).toMatchObject({ ok: true });
  });

  it('a timestamp from an untrusted TSA: osslsigncode says "failed" (exit 0), we refuse', async () => {
    const cab = await signed({ tsaFrom: 'other' });
    const oracle = await osslsigncodeVerify(cab, pki.rootPem);
    expect(oracle.output).toMatch(/Timestamp Server Signature verification: failed/);
    expect(oracle.ok).toBe(false);
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/timestamp: no trusted anchor for "CN=Test TSA Other/) });
  });

  it('a signer certificate for TLS (EKU serverAuth only) cannot sign code', async () => {
    const cab = await signCab(unsigned, path.join(tmp, 'tls-signed.cab'), { certs: tlsCerts, key: pki.leafKey });
    const oracle = await osslsigncodeVerify(cab, pki.rootPem);
    const r = await ours(cab);
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/extendedKeyUsage lacks codeSigning/) });
    // Same verdict as the oracle, which checks the code-signing purpose too.
    expect(oracle.ok).toBe(false);
  });

  it('malformed digest algorithm parameters (NULL turned into a zero-length BOOLEAN): both refuse', async () => {
    // Found by the fuzz test: pkijs tolerated it and we ignored the unsigned parameters, OpenSSL's
    // decoder refuses the whole PKCS#7. Each sha256 AlgorithmIdentifier (SignedData digestAlgorithms,
    // the cabinet DigestInfo, the SignerInfo) is tried.
    const good = await signed();
    const bytes = await readFile(good);
    const sha256WithNull = Buffer.from('0609608648016503040201 0500'.replace(' ', ''), 'hex');
    const sites: number[] = [];
    for (let at = bytes.indexOf(sha256WithNull); at >= 0; at = bytes.indexOf(sha256WithNull, at + 1)) sites.push(at + sha256WithNull.length - 2);
    expect(sites.length).toBe(3);
    for (const at of sites) {
      const cab = await flip(good, at, 0x05 ^ 0x01);
      expect((await osslsigncodeVerify(cab, pki.rootPem)).ok).toBe(false);
      expect(await ours(cab)).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/digest algorithm 2\.16\.840\.1\.101\.3\.4\.2\.1 has parameters other than NULL/),
      });
    }
  });

  it('SHA-1 is refused deliberately (osslsigncode accepts it)', async () => {
    const cab = await signed({ hash: 'sha1' });
    expect((await osslsigncodeVerify(cab, pki.rootPem)).ok).toBe(true);
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/SHA-1.*refused/) });
  });
});

describe('Authenticode time rules', () => {
  const later = new Date('2045-01-01T00:00:00Z');

  it('an expired signer without a timestamp fails', async () => {
    const cab = await signed();
    expect(await ours(cab, trust, later)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired on/) });
  });

  it('an expired signer verifies at the time a trusted timestamp proves', async () => {
    const cab = await signed({ tsaFrom: 'own' });
    expect(await ours(cab, trust, later)).toMatchObject({ ok: true, timestamp: tsaTime.toISOString() });
  });

  it('a damaged timestamp fails closed instead of being ignored', async () => {
    const cab = await signed({ tsaFrom: 'own' });
    const bytes = await readFile(cab);
    // The last bytes of the PKCS#7 are the TSA's signature value (the token is the last unsigned
    // attribute); the signature area ends with at most 7 bytes of zero padding.
    let end = bytes.byteLength - 1;
    while (bytes[end] === 0) end--;
    const damaged = await flip(cab, end - 4);
    expect(await ours(damaged)).toMatchObject({ ok: false, reason: expect.stringMatching(/timestamp: /) });
  });

  it('a timestamp from the future is refused', async () => {
    const cab = await signCab(unsigned, path.join(tmp, 'future.cab'), {
      certs,
      key: pki.leafKey,
      tsa: { certs: tsaCerts, key: pki.leafKey, time: new Date(Date.now() + 86_400_000) },
    });
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/timestamp: time .* is in the future/) });
  });
});

describe('Authenticode header checks on a signed cabinet', () => {
  let good: string;
  beforeAll(async () => {
    good = await signed({ tsaFrom: 'own' });
  });

  it('iCabinet (byte 34) is not covered by the signature, as in Windows', async () => {
    expect(await ours(await flip(good, 34))).toMatchObject({ ok: true });
    expect((await osslsigncodeVerify(await flip(good, 34), pki.rootPem)).ok).toBe(true);
  });

  it.each([8, 16, 24, 28, 32, 56])('a covered header byte (%i) changes the digest', async (offset) => {
    const cab = await flip(good, offset, 0x01);
    expect((await ours(cab)).ok).toBe(false);
    expect((await osslsigncodeVerify(cab, pki.rootPem)).ok).toBe(false);
  });

  it('a data reserve (cbCFData, byte 39, not covered by the digest) is refused', async () => {
    expect(await ours(await flip(good, 39, 0x04))).toMatchObject({ ok: false, reason: expect.stringMatching(/reserves/) });
  });

  it('a signature offset outside the file is a VerifyError, not a crash', async () => {
    const bytes = await readFile(good);
    for (const offset of [bytes.byteLength + 100, 0xffffffff]) {
      bytes.writeUInt32LE(offset, 44);
      const out = path.join(tmp, `offset-${offset}.cab`);
      await writeFile(out, bytes);
      await expect(verifyAuthenticodeCab(out, trust, 'TrustedTpm.cab')).rejects.toThrow(VerifyError);
      expect(await ours(out)).toMatchObject({ ok: false, reason: expect.stringMatching(/outside the file/) });
    }
  });

  it('bytes appended after the signature are refused', async () => {
    const out = path.join(tmp, 'appended.cab');
    await copyFile(good, out);
    await writeFile(out, Buffer.concat([await readFile(good), Buffer.from('extra')]));
    expect(await ours(out)).toMatchObject({ ok: false, reason: expect.stringMatching(/unsigned bytes follow the signature/) });
  });

  it('an unsigned cabinet and a non-cabinet are refused', async () => {
    expect(await ours(unsigned)).toMatchObject({ ok: false, reason: expect.stringMatching(/no Authenticode signature/) });
    const notCab = path.join(tmp, 'not.cab');
    await writeFile(notCab, 'PK\x03\x04 this is a zip file, not a cabinet');
    expect(await ours(notCab)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a cabinet/) });
    expect(await ours(path.join(tmp, 'missing.cab'))).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot read cabinet/) });
  });
});
