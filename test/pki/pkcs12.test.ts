/**
 * PKCS#12 trust stores, read back by the real consumers: `openssl pkcs12` (OpenSSL 3) and Java's keytool
 * (the JDK PKCS12 keystore Keycloak's JVM uses). Deterministic output is checked byte for byte.
 */
import nodeCrypto from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { encodePkcs12TrustStore, pkcs12Kdf, type TrustStoreEntry } from '../../src/pki/pkcs12.js';
import { makePki, openssl, opensslOk } from '../support/openssl.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let entries: TrustStoreEntry[];

async function derOf(pemFile: string): Promise<Buffer> {
  const pem = await readFile(pemFile, 'utf8');
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

/** keytool prints fingerprints as colon-separated upper-case hex. */
const sha256Colons = (der: Buffer): string => nodeCrypto.createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');

beforeAll(async () => {
  await requireProgram('openssl', 'openssl');
  await requireProgram('keytool', 'default-jre-headless');
  const dir = await tempDir();
  const ec = await makePki(path.join(dir, 'ec'), 'P256', 'p256');
  const rsa = await makePki(path.join(dir, 'rsa'), 'RSA', 'rsa');
  entries = [
    { certificate: await derOf(ec.rootPem), friendlyName: 'EC Root' },
    // Shell and quoting characters must come back as plain text.
    { certificate: await derOf(rsa.rootPem), friendlyName: `RSA "Root" $(id) 'x'` },
    { certificate: await derOf(ec.intPem), friendlyName: 'ec intermediate' },
  ];
}, 120_000);

describe('encodePkcs12TrustStore', () => {
  it('is read by openssl pkcs12: PBES2/PBKDF2-SHA256/AES-256-CBC, SHA-256 MAC, every bag with its friendlyName', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'store.p12');
    await writeFile(file, encodePkcs12TrustStore(entries, 'no_secret_for_trust_only'));
    // openssl prints the structure on stderr with -info; the certificates on stdout.
    const r = await openssl(['pkcs12', '-info', '-nokeys', '-in', file, '-passin', 'pass:no_secret_for_trust_only']);
    expect(r.exitCode, r.stderr).toBe(0);
    const info = r.stdout;
    expect(r.stderr).toContain('MAC: sha256, Iteration 2048');
    expect(r.stderr).toContain('PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256');
    expect(r.stderr.match(/Certificate bag/g)).toHaveLength(3);
    expect([...info.matchAll(/friendlyName: (.*)/g)].map((m) => m[1])).toEqual(entries.map((e) => e.friendlyName));
    // The certificates come back byte for byte, in order.
    const pems = info.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(pems.map((p) => Buffer.from(p.replace(/-----[^-]+-----|\s/g, ''), 'base64'))).toEqual(entries.map((e) => e.certificate));
  });

  it('is listed by Java keytool as trustedCertEntry under each alias', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'store.p12');
    await writeFile(file, encodePkcs12TrustStore(entries, 's3cret pass'));
    const r = await execa('keytool', ['-list', '-v', '-storetype', 'PKCS12', '-keystore', file, '-storepass', 's3cret pass'], {
      reject: false,
      env: { LC_ALL: 'C.UTF-8' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Your keystore contains 3 entries');
    // Java lower-cases PKCS#12 aliases.
    const aliases = [...r.stdout.matchAll(/^Alias name: (.*)$/gm)].map((m) => m[1]).sort();
    expect(aliases).toEqual(entries.map((e) => e.friendlyName.toLowerCase()).sort());
    expect(r.stdout.match(/^Entry type: trustedCertEntry$/gm)).toHaveLength(3);
    for (const e of entries) expect(r.stdout).toContain(`SHA256: ${sha256Colons(e.certificate)}`);
  });

  it('refuses a wrong password in both consumers', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'store.p12');
    await writeFile(file, encodePkcs12TrustStore(entries, 'right'));
    const o = await openssl(['pkcs12', '-info', '-nokeys', '-in', file, '-passin', 'pass:wrong']);
    expect(o.exitCode).not.toBe(0);
    expect(o.stderr).toMatch(/Mac verify error/i);
    const k = await execa('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', file, '-storepass', 'wrong'], { reject: false });
    expect(k.exitCode).not.toBe(0);
    expect(k.stdout + k.stderr).toMatch(/password was incorrect/i);
  });

  it('is deterministic: same inputs give the same bytes, any change gives different bytes', () => {
    const a = encodePkcs12TrustStore(entries, 'pw');
    expect(
      encodePkcs12TrustStore(
        entries.map((e) => ({ ...e, certificate: Buffer.from(e.certificate) })),
        'pw',
      ).equals(a),
    ).toBe(true);
    const others = [
      encodePkcs12TrustStore(entries, 'pw2'),
      encodePkcs12TrustStore([...entries].reverse(), 'pw'),
      encodePkcs12TrustStore(entries.slice(1), 'pw'),
      encodePkcs12TrustStore([{ ...entries[0]!, friendlyName: 'renamed' }, ...entries.slice(1)], 'pw'),
    ];
    for (const o of others) expect(o.equals(a)).toBe(false);
    // The PBKDF2 salt and the IV are not a function of the password (public salts derived from it would
    // be a cheap password oracle): a store under another password has the same ones but a different
    // ciphertext; other content gets other ones.
    const hex = (b: Buffer): string => b.toString('hex');
    const saltAndIv = (b: Buffer): string[] => {
      const m = hex(b).match(/0410([0-9a-f]{32})02020800.*?060960864801650304012a0410([0-9a-f]{32})/)!;
      return [m[1]!, m[2]!];
    };
    expect(saltAndIv(others[0]!)).toEqual(saltAndIv(a));
    expect(saltAndIv(others[2]!)[0]).not.toEqual(saltAndIv(a)[0]);
    expect(saltAndIv(others[2]!)[1]).not.toEqual(saltAndIv(a)[1]);
  });

  it('refuses aliases that collide case-insensitively, empty certificates and non-DER bytes', () => {
    expect(() => encodePkcs12TrustStore([entries[0]!, { ...entries[1]!, friendlyName: 'ec root' }], 'pw')).toThrow(
      new VerifyError('friendlyName "ec root" collides with "EC Root" (aliases are case-insensitive)'),
    );
    expect(() => encodePkcs12TrustStore([{ certificate: Buffer.alloc(0), friendlyName: 'x' }], 'pw')).toThrow(/empty/);
    // Trailing bytes or a non-SEQUENCE would be written into the bag as they are: refuse them.
    expect(() => encodePkcs12TrustStore([{ certificate: Buffer.concat([entries[0]!.certificate, Buffer.from([0])]), friendlyName: 'x' }], 'pw')).toThrow(
      'certificate "x" is not one DER element',
    );
    expect(() => encodePkcs12TrustStore([{ certificate: Buffer.from([0x04, 0x01, 0x00]), friendlyName: 'x' }], 'pw')).toThrow(
      'certificate "x" is not one DER element',
    );
  });

  it('derives the MAC key like RFC 7292 appendix B (known answer from an OpenSSL store)', async () => {
    // Recompute the MAC of a store openssl made and compare with the MAC it wrote.
    const dir = await tempDir();
    const cert = path.join(dir, 'c.der');
    await writeFile(cert, entries[0]!.certificate);
    await opensslOk(['x509', '-inform', 'DER', '-in', cert, '-out', path.join(dir, 'c.pem')]);
    await opensslOk(['pkcs12', '-export', '-nokeys', '-in', path.join(dir, 'c.pem'), '-passout', 'pass:päss', '-out', path.join(dir, 'o.p12')]);
    const parsed = await opensslOk(['asn1parse', '-inform', 'DER', '-in', path.join(dir, 'o.p12')]);
    const p12 = await readFile(path.join(dir, 'o.p12'));
    // Offsets from asn1parse: the authSafe OCTET STRING, the MAC value and the MAC salt.
    const octets = [...parsed.matchAll(/^\s*(\d+):d=\d+\s+hl=(\d+)\s+l=\s*(\d+) prim:\s+OCTET STRING/gm)].map((m) => ({
      off: +m[1]!,
      hl: +m[2]!,
      len: +m[3]!,
    }));
    const slice = (o: { off: number; hl: number; len: number }): Buffer => p12.subarray(o.off + o.hl, o.off + o.hl + o.len);
    const [authSafe, macValue, macSalt] = [slice(octets[0]!), slice(octets[1]!), slice(octets[2]!)];
    const key = pkcs12Kdf('päss', macSalt, 3, 2048, 32);
    expect(nodeCrypto.createHmac('sha256', key).update(authSafe).digest().toString('hex')).toBe(macValue.toString('hex'));
  });
});
