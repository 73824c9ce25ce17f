/**
 * Cosign signatures in gematik's key-based mode: signature manifests built per KNOWLEDGE.md (payload
 * signed with node:crypto, test PKI made with openssl), then the real gematik signing chains as pinned
 * anchors.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates, subjectAltEmails } from '../../src/pki/certs.js';
import { validateChain } from '../../src/pki/chain.js';
import { signatureTag, verifyCosignSignature, type CosignPolicy, type CosignSignatureInput } from '../../src/verify/cosign.js';
import { REPO_ROOT } from '../support/cli.js';
import {
  GEMATIK_IDENTITY,
  addCosignLeaves,
  cosignPayload,
  randomDigest,
  signBytes,
  signatureManifest,
  type CosignLeaves,
  type LayerSpec,
} from '../support/cosign.js';
import { issue, issueExpiredLeaf, makePki, openssl, opensslOk, type Pki } from '../support/openssl.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const SIGNING = path.join(REALWORLD, 'gematik-signing');

let tmp: string;
let pki: Pki;
let other: Pki;
let rsa: Pki;
let leaves: CosignLeaves;
let otherLeaves: CosignLeaves;
let rsaLeaves: CosignLeaves;
let expiredLeaf: string;
let chainPem: string;
let anchors: CosignPolicy['anchors'];
const digest = randomDigest();
const pem = (f: string): Promise<string> => readFile(f, 'utf8');

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-cosign-'));
  [pki, rsa] = await Promise.all([makePki(path.join(tmp, 'p256'), 'Cosign', 'p256'), makePki(path.join(tmp, 'rsa'), 'Cosign RSA', 'rsa')]);
  // Another CA with the same keys: only the certificates differ, so only the chain can tell them apart.
  other = await makePki(path.join(tmp, 'other'), 'Other', 'p256', { keysFrom: pki });
  [leaves, otherLeaves, rsaLeaves] = await Promise.all([addCosignLeaves(pki, 'P-256'), addCosignLeaves(other, 'Other'), addCosignLeaves(rsa, 'RSA')]);
  expiredLeaf = path.join(pki.dir, 'expired.pem');
  await issueExpiredLeaf(pki, '/C=DE/O=Example Org/CN=Expired Cosign Signer', expiredLeaf);
  chainPem = (await pem(pki.intPem)) + (await pem(pki.rootPem));
  anchors = await loadCertificates([pki.rootPem]);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** One good layer for `digest` signed by `leaf` (P-256 PKI by default); `patch` changes any part. */
async function layer(patch: Partial<LayerSpec> & { leaf?: string; key?: string; chain?: string | null } = {}): Promise<LayerSpec> {
  const payload = patch.payload ?? cosignPayload(digest, { optional: { timestamp: '1767225600' } });
  const spec: LayerSpec = {
    payload,
    signature: await signBytes(payload, patch.key ?? pki.leafKey),
    certPem: await pem(patch.leaf ?? leaves.good),
    ...(patch.chain === null ? {} : { chainPem: patch.chain ?? chainPem }),
  };
  return { ...spec, ...Object.fromEntries(Object.entries(patch).filter(([k]) => !['leaf', 'key', 'chain'].includes(k))) };
}

function verify(input: CosignSignatureInput, policy: Partial<CosignPolicy> = {}) {
  return verifyCosignSignature(input, { imageDigest: digest, anchors, identity: GEMATIK_IDENTITY, ...policy });
}

function reason(input: CosignSignatureInput, policy: Partial<CosignPolicy> = {}): string {
  try {
    verify(input, policy);
  } catch (err) {
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).file).toBe('image signature');
    expect((err as VerifyError).message).not.toMatch(/\n/);
    return (err as VerifyError).message;
  }
  throw new Error('verification unexpectedly succeeded');
}

describe('cosign signatures (gematik mode)', () => {
  it('accepts an ECDSA P-256 leaf with the intermediate in the chain annotation', async () => {
    const r = verify(signatureManifest([await layer()]));
    expect(r.identity).toBe(GEMATIK_IDENTITY);
    expect(r.signer.subject).toBe('CN=Cosign Signer P-256, O=Example Org, C=DE');
    expect(r.signer.anchor).toBe('CN=Test Root Cosign, O=Example Org, C=DE');
    expect(Date.parse(r.signer.earliestExpiry)).toBeGreaterThan(Date.now());
    expect(r.signedAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('accepts the pinned chain file as anchors without a chain annotation; without either it fails', async () => {
    const input = signatureManifest([await layer({ chain: null })]);
    expect(verify(input, { anchors: await loadCertificates([pki.intPem, pki.rootPem]) }).signer.anchor).toContain('Test Intermediate Cosign');
    expect(reason(input)).toMatch(/^image signature: no trusted anchor .*issuer "CN=Test Intermediate Cosign, O=Example Org, C=DE" not found/);
  });

  it('accepts RSA leaves with PKCS#1 v1.5 and PSS signatures', async () => {
    const rsaAnchors = await loadCertificates([rsa.rootPem]);
    const chain = (await pem(rsa.intPem)) + (await pem(rsa.rootPem));
    const payload = cosignPayload(digest);
    const key = crypto.createPrivateKey(await readFile(rsa.leafKey));
    const pss = (saltLength: number): string =>
      crypto.sign('sha256', payload, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength }).toString('base64');
    for (const signature of [await signBytes(payload, rsa.leafKey), pss(32), pss(crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN)]) {
      const input = signatureManifest([{ payload, signature, certPem: await pem(rsaLeaves.good), chainPem: chain }]);
      expect(verify(input, { anchors: rsaAnchors }).signer.subject).toContain('Cosign Signer RSA');
    }
    const bad = signatureManifest([{ payload, signature: pss(20), certPem: await pem(rsaLeaves.good), chainPem: chain }]);
    expect(reason(bad, { anchors: rsaAnchors })).toMatch(/signature does not verify/);
  });

  it('rejects a leaf with another identity (no prefix or suffix matches); the domain is case-insensitive', async () => {
    const input = signatureManifest([await layer({ leaf: leaves.otherIdentity })]);
    expect(reason(input)).toBe(
      'image signature: leaf identity "someone@example.org", "software-development@gematik.de.example.org" is not the required "software-development@gematik.de"',
    );
    expect(reason(input, { identity: 'someone@example' })).toMatch(/is not the required "someone@example"/);
    expect(verify(input, { identity: 'someone@EXAMPLE.org' }).identity).toBe('someone@example.org');
    expect(reason(signatureManifest([await layer()]), { identity: 'Software-Development@gematik.de' })).toMatch(/leaf identity/);
    // No identity required: the first SAN email is reported.
    expect(verify(input, { identity: undefined }).identity).toBe('someone@example.org');
  });

  it('rejects a leaf from another CA even with the right identity and key', async () => {
    const otherChain = (await pem(other.intPem)) + (await pem(other.rootPem));
    const input = signatureManifest([await layer({ leaf: otherLeaves.good, chain: otherChain })]);
    expect(reason(input)).toMatch(/^image signature: no trusted anchor for "CN=Cosign Signer Other.*chain ends at untrusted root "CN=Test Root Other/);
  });

  it('rejects a payload that names another digest, another type, or is not JSON', async () => {
    const elsewhere = randomDigest();
    expect(reason(signatureManifest([await layer({ payload: cosignPayload(elsewhere) })]))).toBe(
      `image signature: payload names ${elsewhere} but ${digest} was pulled`,
    );
    // Same digest spelled in upper case: exact match only.
    expect(reason(signatureManifest([await layer({ payload: cosignPayload(digest.toUpperCase()) })]))).toMatch(/payload names "SHA256:/);
    expect(reason(signatureManifest([await layer({ payload: cosignPayload(digest, { type: 'attestation' }) })]))).toMatch(/payload type is "attestation"/);
    expect(reason(signatureManifest([await layer({ payload: Buffer.from('not json') })]))).toMatch(/signed payload is not valid JSON/);
  });

  it('rejects a signature over different bytes and a damaged signature', async () => {
    const good = await layer();
    const otherBytes = Buffer.from(`${Buffer.from(good.payload).toString()} `);
    const input = signatureManifest([{ ...good, signature: await signBytes(otherBytes, pki.leafKey) }]);
    expect(reason(input)).toMatch(/^image signature: signature does not verify with the key of "CN=Cosign Signer P-256/);
    expect(reason(signatureManifest([{ ...good, signature: `${good.signature!.slice(0, -4)}!!!!` }]))).toMatch(/not valid base64/);
  });

  it('rejects blob bytes that do not match the layer digest or size (even if the caller mixed them up)', async () => {
    const good = await layer();
    const input = signatureManifest([good]);
    const [key, bytes] = [...input.blobs][0]!;
    const swapped = Buffer.from(bytes);
    swapped[swapped.length - 2]! ^= 1;
    expect(reason({ ...input, blobs: new Map([[key, swapped]]) })).toMatch(/payload blob hashes to sha256:[0-9a-f]{64}, not sha256:/);
    expect(reason(signatureManifest([{ ...good, size: good.payload.byteLength + 1 }]))).toMatch(/declares \d+/);
    expect(reason({ ...input, blobs: new Map() })).toMatch(/payload blob sha256:[0-9a-f]{64} was not provided/);
  });

  it('rejects a layer without the certificate annotation or without a signature', async () => {
    const { certPem: _c, ...noCert } = await layer();
    expect(reason(signatureManifest([noCert]))).toMatch(/no dev\.sigstore\.cosign\/certificate annotation/);
    const { signature: _s, ...noSig } = await layer();
    expect(reason(signatureManifest([noSig]))).toMatch(/no dev\.cosignproject\.cosign\/signature annotation/);
  });

  it('rejects an expired leaf, and a leaf whose EKU is not codeSigning', async () => {
    expect(reason(signatureManifest([await layer({ leaf: expiredLeaf })]))).toMatch(/certificate "CN=Expired Cosign Signer.*" expired on 2021-01-01/);
    expect(reason(signatureManifest([await layer({ leaf: leaves.tls })]))).toMatch(/extendedKeyUsage lacks codeSigning/);
    // After the good leaf's own expiry (3650 days) it fails too: the time is policy.at.
    expect(reason(signatureManifest([await layer()]), { at: new Date(Date.now() + 4000 * 86_400_000) })).toMatch(/expired on/);
  });

  it('passes when one of several signature layers verifies, and names every failure when none does', async () => {
    const bad = await layer({ leaf: otherLeaves.good, chain: (await pem(other.intPem)) + (await pem(other.rootPem)) });
    const good = await layer({ payload: cosignPayload(digest, { optional: { creator: 'second' } }) });
    expect(verify(signatureManifest([bad, good])).identity).toBe(GEMATIK_IDENTITY);
    const wrongDigest = await layer({ payload: cosignPayload(randomDigest()) });
    const msg = reason(signatureManifest([bad, wrongDigest]));
    expect(msg).toMatch(
      /^image signature: none of 2 signatures verifies: #1 sha256:[0-9a-f]{12}…: no trusted anchor.*; #2 sha256:[0-9a-f]{12}…: payload names/,
    );
  });

  it('rejects what is not a cosign signature manifest', async () => {
    const good = signatureManifest([await layer()]);
    expect(reason({ ...good, manifest: Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}') })).toMatch(
      /not an OCI\/Docker image manifest/,
    );
    expect(reason({ ...good, manifest: Buffer.from([0xff, 0xfe]) })).toMatch(/signature manifest is not valid JSON/);
    expect(reason(signatureManifest([{ ...(await layer()), mediaType: 'application/octet-stream' }]))).toMatch(/no cosign signature layer/);
    expect(reason(good, { imageDigest: 'latest' })).toMatch(/"latest" is not a sha256 manifest digest/);
  });

  it('names the signature tag', () => {
    expect(signatureTag(`sha256:${'ab'.repeat(32)}`)).toBe(`sha256-${'ab'.repeat(32)}.sig`);
    expect(() => signatureTag('sha256:xyz')).toThrow(VerifyError);
  });
});

describe.skipIf(!existsSync(SIGNING))(`real gematik signing chains (${SIGNING})`, () => {
  it.each(['test', 'prod'])('the %s ca-chain as pinned anchors refuses a leaf it did not issue', async (which) => {
    const gematik = await loadCertificates([path.join(SIGNING, which, 'ca-chain.pem')]);
    expect(gematik.length).toBe(2);
    expect(reason(signatureManifest([await layer()]), { anchors: gematik })).toMatch(/^image signature: no trusted anchor for "CN=Cosign Signer P-256/);
  });

  it('refuses a leaf from a forged CA that copies the gematik CA names', async () => {
    const caPath = path.join(SIGNING, 'test', 'ca-chain.pem');
    const gematik = await loadCertificates([caPath]);
    // Fake "GEM.KOMP-CA61 TEST-ONLY" under a fake "GEM.RCA7 TEST-ONLY": names match, keys do not.
    const fake = await makePki(path.join(tmp, 'forged'), 'Forged', 'p256', { keysFrom: pki });
    const ou = (o: string): string => `/C=DE/O=gematik GmbH NOT-VALID/OU=${o}`;
    const rootSubj = `${ou('Zentrale Root-CA der Telematikinfrastruktur')}/CN=GEM.RCA7 TEST-ONLY`;
    const caSubj = `${ou('Komponenten-CA der Telematikinfrastruktur')}/CN=GEM.KOMP-CA61 TEST-ONLY`;
    await opensslOk([
      'req',
      '-x509',
      '-new',
      '-config',
      fake.cnf,
      '-extensions',
      'v3_ca',
      '-key',
      fake.rootKey,
      '-sha256',
      '-subj',
      rootSubj,
      '-days',
      '3650',
      '-set_serial',
      '1',
      '-out',
      fake.rootPem,
    ]);
    await issue(fake, fake.intKey, caSubj, fake.rootPem, fake.rootKey, 'v3_ca', fake.intPem, [], 2);
    const forged = await addCosignLeaves(fake, 'Forged');
    const chain = (await pem(fake.intPem)) + (await pem(fake.rootPem));
    const msg = reason(signatureManifest([await layer({ leaf: forged.good, chain })]), { anchors: gematik });
    // AKI/SKI differ from the real CAs', so the path runs through the forged copies to the forged root.
    expect(msg).toMatch(/^image signature: no trusted anchor for "CN=Cosign Signer Forged.*chain ends at untrusted root "CN=GEM\.RCA7 TEST-ONLY, /);
  });

  it("the real test leaf chains to its ca-chain and carries gematik's SAN email", async () => {
    const [leaf] = await loadCertificates([path.join(SIGNING, 'test', 'zeta-oci-mit-emailadresse-komp61.pem')]);
    const chain = await loadCertificates([path.join(SIGNING, 'test', 'ca-chain.pem')]);
    expect(subjectAltEmails(leaf!)).toEqual([GEMATIK_IDENTITY]);
    // A time inside the leaf's validity (2026-03-13 … 2031-03-13), so the test does not age.
    const at = new Date(leaf!.notBefore.getTime() + 86_400_000);
    const r = validateChain({ leaf: leaf!, intermediates: [], anchors: chain, at });
    expect(r.anchor.subject.attributes.at(-1)?.text).toBe('GEM.KOMP-CA61 TEST-ONLY');
  });

  it('the real prod leaf is issued by GEM.KOMP-CA8, which the prod ca-chain (KOMP-CA10) does not contain (openssl agrees)', async () => {
    const [leaf] = await loadCertificates([path.join(SIGNING, 'prod', 'OCIcontainerimage2.pem')]);
    const chain = await loadCertificates([path.join(SIGNING, 'prod', 'ca-chain.pem')]);
    expect(subjectAltEmails(leaf!)).toEqual([GEMATIK_IDENTITY]);
    const at = new Date(leaf!.notBefore.getTime() + 86_400_000);
    expect(() => validateChain({ leaf: leaf!, intermediates: [], anchors: chain, at })).toThrow(/issuer "CN=GEM\.KOMP-CA8, [^"]*" not found/);
    const peer = await openssl([
      'verify',
      '-partial_chain',
      '-CAfile',
      path.join(SIGNING, 'prod', 'ca-chain.pem'),
      path.join(SIGNING, 'prod', 'OCIcontainerimage2.pem'),
    ]);
    expect(peer.exitCode).not.toBe(0);
  });
});
