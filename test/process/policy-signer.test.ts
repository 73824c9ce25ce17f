/** Policy signer: chosen deterministically, chained to ca/, key checked; output equals openssl's -pubkey. */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, VerifyError } from '../../src/errors.js';
import { chooseSigner, derivePolicySigner } from '../../src/process/policy-signer.js';
import { issueExpiredLeaf, makePki, opensslOk } from '../support/openssl.js';
import { useTempDirs } from '../support/tmp.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');
const REAL_KEYS = path.join(REALWORLD, 'gematik-test', 'policy-engine-bundle-keys');
const tempDir = useTempDirs();
const NOW = new Date('2026-11-29T00:00:00Z');

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!existsSync(REAL_KEYS))('real gematik policy-engine-bundle-keys', () => {
  it('outputs the signer public key exactly as `openssl x509 -pubkey -noout` prints it', async () => {
    const r = await derivePolicySigner(REAL_KEYS, 'policy-engine-bundle-keys', { now: NOW });
    const expected = await opensslOk(['x509', '-pubkey', '-noout', '-in', path.join(REAL_KEYS, 'signers', 'zeta-policy-freigeber-komp61.pem')]);
    expect(r.publicKeyPem).toBe(expected);
    expect(r).toMatchObject({
      signerFile: 'policy-engine-bundle-keys/signers/zeta-policy-freigeber-komp61.pem',
      subject: 'CN=gematik-zeta-policy-freigeber, O=gematik TEST-ONLY - NOT-VALID, C=DE',
      keyType: 'ec prime256v1',
      anchor: expect.stringContaining('CN=GEM.RCA7 TEST-ONLY'),
      notAfter: '2031-03-23T22:59:59.000Z',
    });
  });

  it('fails when the signer is not yet valid or ca/ lacks its issuer', async () => {
    const early = await rejects(derivePolicySigner(REAL_KEYS, 'keys', { now: new Date('2026-01-01T00:00:00Z') }));
    expect(early).toBeInstanceOf(VerifyError);
    expect(early.message).toMatch(/does not chain to keys\/ca: certificate "CN=gematik-zeta-policy-freigeber.*not valid before 2026-03-23/);
    const dir = await tempDir();
    await cp(REAL_KEYS, dir, { recursive: true });
    await writeFile(path.join(dir, 'ca', 'GEM.KOMP-CA61-TEST-ONLY.pem'), await readFile(path.join(dir, 'ca', 'GEM.RCA7-TEST-ONLY.pem')));
    const orphan = await rejects(derivePolicySigner(dir, 'keys', { now: NOW }));
    expect(orphan.message).toMatch(/does not chain to keys\/ca: .*issuer .*GEM.KOMP-CA61 TEST-ONLY.* not found/);
  });
});

describe('signer choice and key policy', () => {
  it('chooses the configured name, or the only file; several without a choice is a config error', () => {
    expect(chooseSigner(['a.pem'], undefined, 'k/signers')).toBe('a.pem');
    expect(chooseSigner(['a.pem', 'b.pem'], 'b.pem', 'k/signers')).toBe('b.pem');
    expect(() => chooseSigner(['a.pem', 'b.pem'], undefined, 'k/signers')).toThrow(ConfigError);
    expect(() => chooseSigner(['a.pem', 'b.pem'], undefined, 'k/signers')).toThrow('k/signers holds 2 signer certificates (a.pem, b.pem); choose one');
    expect(() => chooseSigner(['a.pem'], 'c.pem', 'k/signers')).toThrow(/no signer file "c.pem" \(present: a.pem\)/);
    expect(() => chooseSigner(['a.pem'], '../a.pem', 'k/signers')).toThrow(ConfigError);
    expect(() => chooseSigner([], undefined, 'k/signers')).toThrow(/no signer certificate/);
  });

  async function layout(alg: 'rsa' | 'p256' | 'bp256'): Promise<string> {
    const dir = await tempDir();
    const pki = await makePki(path.join(dir, 'pki'), alg, alg);
    await mkdir(path.join(dir, 'keys', 'signers'), { recursive: true });
    await mkdir(path.join(dir, 'keys', 'ca'), { recursive: true });
    await cp(pki.leafPem, path.join(dir, 'keys', 'signers', 'signer.pem'));
    await cp(pki.intPem, path.join(dir, 'keys', 'ca', 'int.pem'));
    await cp(pki.rootPem, path.join(dir, 'keys', 'ca', 'root.pem'));
    return path.join(dir, 'keys');
  }

  it('accepts RSA and P-256 signers, refuses brainpool (OPA cannot verify with it)', async () => {
    const rsa = await derivePolicySigner(await layout('rsa'), 'keys', { now: new Date() });
    expect(rsa.keyType).toBe('rsa 2048');
    const bpDir = await layout('bp256');
    const bp = await rejects(derivePolicySigner(bpDir, 'keys', { now: new Date() }));
    expect(bp.message).toBe('keys/signers/signer.pem: EC key on brainpoolP256r1; OPA verifies bundles only with P-256, P-384 or P-521');
  }, 60_000);

  it('refuses an expired signer and a signer file with two certificates', async () => {
    const dir = await layout('p256');
    const pkiDir = path.join(path.dirname(dir), 'pki');
    await issueExpiredLeaf(
      {
        dir: pkiDir,
        rootPem: '',
        rootKey: '',
        intPem: path.join(pkiDir, 'int.pem'),
        intKey: path.join(pkiDir, 'int.key'),
        leafPem: '',
        leafKey: path.join(pkiDir, 'leaf.key'),
        cnf: path.join(pkiDir, 'openssl.cnf'),
      },
      '/CN=Old Signer',
      path.join(pkiDir, 'old.pem'),
    );
    await cp(path.join(pkiDir, 'old.pem'), path.join(dir, 'signers', 'signer.pem'));
    expect((await rejects(derivePolicySigner(dir, 'keys', { now: new Date() }))).message).toMatch(/certificate "CN=Old Signer" expired on 2021-01-01/);
    const two = (await readFile(path.join(dir, 'ca', 'int.pem'), 'utf8')) + (await readFile(path.join(dir, 'ca', 'root.pem'), 'utf8'));
    await writeFile(path.join(dir, 'signers', 'signer.pem'), two);
    expect((await rejects(derivePolicySigner(dir, 'keys', { now: new Date() }))).message).toBe(
      'keys/signers/signer.pem: holds 2 certificates; a signer file must hold exactly one',
    );
  }, 60_000);
});
