/**
 * CMS verification against openssl as the oracle: every vector is made with `openssl cms -sign` and for
 * each one our verdict must equal `openssl cms -verify`'s (exit 0 or not).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates } from '../../src/pki/certs.js';
import { decodeCms, verifyCmsAttached, verifyCmsDetached, type SignerCheckOptions, type TrustAnchors } from '../../src/verify/cms.js';
import { issueExpiredLeaf, issue, makePki, openssl, opensslOk, type Pki } from '../support/openssl.js';

let tmp: string;
let content: string;
const pkis: Record<'rsa' | 'p256' | 'p384' | 'bp256' | 'pss' | 'other', Pki> = {} as never;
let expiredLeaf: string;
let secondLeaf: string;
let subLeaf: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-cms-'));
  content = path.join(tmp, 'nginx.conf');
  // Binary-ish content with CRLF and NUL: -binary must keep it byte for byte.
  await writeFile(content, Buffer.concat([Buffer.from('server {\r\n  listen 443;\r\n}\n'), Buffer.from([0, 1, 2, 255])]));
  const [rsa, p256, p384, bp256] = await Promise.all([
    makePki(path.join(tmp, 'rsa'), 'RSA', 'rsa'),
    makePki(path.join(tmp, 'p256'), 'P-256', 'p256'),
    makePki(path.join(tmp, 'p384'), 'P-384', 'p384'),
    makePki(path.join(tmp, 'bp256'), 'brainpoolP256r1', 'bp256'),
  ]);
  pkis.rsa = rsa;
  pkis.p384 = p384;
  pkis.p256 = p256;
  pkis.bp256 = bp256;
  // Same RSA keys, but every certificate signed with RSASSA-PSS.
  pkis.pss = await makePki(path.join(tmp, 'pss'), 'RSA-PSS', 'rsa', { pss: true, keysFrom: rsa });
  // A different CA whose names collide with nothing we trust.
  pkis.other = await makePki(path.join(tmp, 'other'), 'Other', 'p256', { keysFrom: p256 });
  expiredLeaf = path.join(rsa.dir, 'expired.pem');
  await issueExpiredLeaf(rsa, '/C=DE/O=Example Org/CN=Expired Signer RSA', expiredLeaf);
  secondLeaf = path.join(rsa.dir, 'leaf2.pem');
  await issue(rsa, rsa.leafKey, '/C=DE/O=Example Org/CN=Second Signer RSA', rsa.intPem, rsa.intKey, 'v3_leaf', secondLeaf, [], 7);
  // An end-entity certificate (cA=false) that issues another certificate: the classic attack that
  // basicConstraints checking stops.
  subLeaf = path.join(rsa.dir, 'subleaf.pem');
  await issue(rsa, rsa.leafKey, '/C=DE/O=Example Org/CN=Sub Signer RSA', rsa.leafPem, rsa.leafKey, 'v3_leaf', subLeaf, [], 9);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
/** `openssl cms -sign`; returns the signature path. */
async function sign(args: string[], opts: { attached?: boolean; pem?: boolean; input?: string; md?: string } = {}): Promise<string> {
  const out = path.join(tmp, `sig-${++counter}.${opts.pem ? 'pem' : 'p7s'}`);
  await opensslOk([
    'cms',
    '-sign',
    '-binary',
    '-md',
    opts.md ?? 'sha256',
    '-in',
    opts.input ?? content,
    ...(opts.attached ? ['-nodetach'] : []),
    '-outform',
    opts.pem ? 'PEM' : 'DER',
    ...args,
    '-out',
    out,
  ]);
  return out;
}

const signer = (pki: Pki, cert = pki.leafPem): string[] => ['-signer', cert, '-inkey', pki.leafKey];
const withInt = (pki: Pki): string[] => ['-certfile', pki.intPem];

async function bundle(files: string[]): Promise<string> {
  const out = path.join(tmp, `bundle-${++counter}.pem`);
  await writeFile(out, (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n'));
  return out;
}

/**
 * openssl cms -verify. It has no -untrusted: configured intermediates must go into -CAfile to be used
 * for the chain, and -certfile only helps to find the signer certificate (measured, OpenSSL 3.0).
 */
async function oracle(sig: string, anchors: string[], intermediates: string[], opts: { content?: string; pem?: boolean; purpose?: string }): Promise<boolean> {
  const ca = await bundle([...anchors, ...intermediates]);
  const certfile = intermediates.length ? ['-certfile', await bundle(intermediates)] : [];
  const r = await openssl([
    'cms',
    '-verify',
    '-binary',
    '-inform',
    opts.pem ? 'PEM' : 'DER',
    '-in',
    sig,
    ...(opts.content ? ['-content', opts.content] : []),
    '-CAfile',
    ca,
    ...certfile,
    '-purpose',
    opts.purpose ?? 'any',
    '-out',
    '/dev/null',
  ]);
  return r.exitCode === 0;
}

async function trustOf(anchors: string[], intermediates: string[] = []): Promise<TrustAnchors> {
  return {
    anchors: await loadCertificates(anchors),
    intermediates: intermediates.length ? await loadCertificates(intermediates) : [],
  };
}

interface Verdict {
  ok: boolean;
  error?: unknown;
}

async function ours(sig: string, trust: TrustAnchors, opts: { content?: string; at?: Date; eku?: SignerCheckOptions['requiredEkus'] }): Promise<Verdict> {
  const options: SignerCheckOptions = opts.eku ? { requiredEkus: opts.eku } : {};
  try {
    const bytes = await readFile(sig);
    if (opts.content) {
      const signers = await verifyCmsDetached(opts.content, bytes, trust, 'nginx/nginx.conf', opts.at, options);
      expect(signers.length).toBeGreaterThan(0);
      for (const s of signers) {
        expect(s.subject).toMatch(/^CN=.*, O=Example Org, C=DE$/);
        expect(s.anchor).toMatch(/^CN=Test Root /);
        expect(Number.isNaN(Date.parse(s.earliestExpiry))).toBe(false);
      }
    } else {
      const r = await verifyCmsAttached(bytes, trust, 'nginx/nginx.conf', opts.at, options);
      expect(Buffer.from(r.content).equals(await readFile(content))).toBe(true);
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

interface Case {
  name: string;
  make: () => Promise<string>;
  detached: boolean;
  pem?: boolean;
  anchors: () => string[];
  intermediates?: () => string[];
  /** Content path given to the verifiers (detached), default the signed file. */
  content?: () => Promise<string>;
  expectOk: boolean;
  reason?: RegExp;
  /** Our rule's EKU policy, and the openssl -purpose that expresses the same requirement. */
  eku?: SignerCheckOptions['requiredEkus'];
  purpose?: string;
}

const cases: Case[] = [];
for (const key of ['rsa', 'p256', 'p384', 'bp256'] as const) {
  cases.push(
    {
      name: `${key} detached`,
      make: () => sign([...signer(pkis[key]), ...withInt(pkis[key])]),
      detached: true,
      anchors: () => [pkis[key].rootPem],
      expectOk: true,
    },
    {
      name: `${key} attached`,
      make: () => sign([...signer(pkis[key]), ...withInt(pkis[key])], { attached: true }),
      detached: false,
      anchors: () => [pkis[key].rootPem],
      expectOk: true,
    },
  );
}
const CODE_SIGNING = [{ oid: '1.3.6.1.5.5.7.3.3', name: 'codeSigning' }];
const EMAIL_PROTECTION = [{ oid: '1.3.6.1.5.5.7.3.4', name: 'emailProtection' }];
cases.push(
  {
    name: 'RSA-2048 SHA-384 detached',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa)], { md: 'sha384' }),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'RSA-2048 SHA-384 attached, no signed attributes',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa), '-noattr'], { md: 'sha384', attached: true }),
    detached: false,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'P-384 SHA-384 PEM detached',
    make: () => sign([...signer(pkis.p384), ...withInt(pkis.p384)], { md: 'sha384', pem: true }),
    detached: true,
    pem: true,
    anchors: () => [pkis.p384.rootPem],
    expectOk: true,
  },
  // openssl -stream always attaches the content, so the detached BER vector is rewritten from DER.
  {
    name: 'BER indefinite lengths, detached',
    make: async () => indefinite(await sign([...signer(pkis.p256), ...withInt(pkis.p256)])),
    detached: true,
    anchors: () => [pkis.p256.rootPem],
    expectOk: true,
  },
  {
    name: 'BER indefinite lengths, detached, tampered content',
    make: async () => indefinite(await sign([...signer(pkis.p256), ...withInt(pkis.p256)])),
    detached: true,
    anchors: () => [pkis.p256.rootPem],
    content: tampered,
    expectOk: false,
    reason: /content digest does not match/,
  },
  // The test leaves carry extendedKeyUsage codeSigning only.
  {
    name: 'codeSigning-only leaf, rule requires codeSigning',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa)]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    eku: CODE_SIGNING,
    expectOk: true,
  },
  {
    name: 'codeSigning-only leaf, rule requires emailProtection (openssl -purpose smimesign)',
    make: () => sign([...signer(pkis.p256), ...withInt(pkis.p256)], { attached: true }),
    detached: false,
    anchors: () => [pkis.p256.rootPem],
    eku: EMAIL_PROTECTION,
    purpose: 'smimesign',
    expectOk: false,
    reason: /signer certificate extendedKeyUsage lacks emailProtection \(signer "CN=Test Signer P-256/,
  },
  {
    name: 'RSA-PSS signature and PSS-signed chain, detached',
    make: () => sign([...signer(pkis.pss), ...withInt(pkis.pss), '-keyopt', 'rsa_padding_mode:pss']),
    detached: true,
    anchors: () => [pkis.pss.rootPem],
    expectOk: true,
  },
  {
    name: 'RSA-PSS attached',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa), '-keyopt', 'rsa_padding_mode:pss'], { attached: true }),
    detached: false,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'PEM detached',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa)], { pem: true }),
    detached: true,
    pem: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'PEM attached',
    make: () => sign([...signer(pkis.p256), ...withInt(pkis.p256)], { pem: true, attached: true }),
    detached: false,
    pem: true,
    anchors: () => [pkis.p256.rootPem],
    expectOk: true,
  },
  {
    name: '-noattr detached (signature over the streamed content)',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa), '-noattr']),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: '-noattr attached, brainpool',
    make: () => sign([...signer(pkis.bp256), ...withInt(pkis.bp256), '-noattr'], { attached: true }),
    detached: false,
    anchors: () => [pkis.bp256.rootPem],
    expectOk: true,
  },
  {
    name: '-noattr detached, tampered content',
    make: () => sign([...signer(pkis.p256), ...withInt(pkis.p256), '-noattr']),
    detached: true,
    anchors: () => [pkis.p256.rootPem],
    content: tampered,
    expectOk: false,
    reason: /signature over the content does not verify/,
  },
  {
    name: '-keyid (SKI signer id)',
    make: () => sign([...signer(pkis.p256), ...withInt(pkis.p256), '-keyid']),
    detached: true,
    anchors: () => [pkis.p256.rootPem],
    expectOk: true,
  },
  {
    name: 'BER indefinite length (-stream), attached',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa), '-stream'], { attached: true }),
    detached: false,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'two signers, both trusted',
    make: async () => sign([...signer(pkis.rsa), ...signer(pkis.p256), ...(await bothIntermediates())]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem, pkis.p256.rootPem],
    expectOk: true,
  },
  {
    name: 'two signers, one untrusted',
    make: async () => sign([...signer(pkis.rsa), ...signer(pkis.p256), ...(await bothIntermediates())]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: false,
    reason: /no trusted anchor.*signer "CN=Test Signer P-256/,
  },
  {
    name: 'two signers from one CA (rotation: two anchors configured)',
    make: () => sign([...signer(pkis.rsa), ...signer(pkis.rsa, secondLeaf), ...withInt(pkis.rsa)]),
    detached: true,
    anchors: () => [pkis.other.rootPem, pkis.rsa.rootPem],
    expectOk: true,
  },
  {
    name: 'wrong CA',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa)]),
    detached: true,
    anchors: () => [pkis.p256.rootPem],
    expectOk: false,
    reason: /no trusted anchor for "CN=Test Signer RSA/,
  },
  {
    name: 'same subject names, different root key',
    make: () => sign([...signer(pkis.p256), ...withInt(pkis.p256)]),
    detached: true,
    anchors: () => [pkis.other.rootPem],
    expectOk: false,
  },
  {
    name: 'missing intermediate (not in the cert set, not configured)',
    make: () => sign(signer(pkis.rsa)),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: false,
    reason: /issuer "CN=Test Intermediate RSA, O=Example Org, C=DE" not found/,
  },
  {
    name: 'intermediate configured instead of embedded',
    make: () => sign(signer(pkis.bp256)),
    detached: true,
    anchors: () => [pkis.bp256.rootPem],
    intermediates: () => [pkis.bp256.intPem],
    expectOk: true,
  },
  {
    name: '-nocerts with leaf and intermediate configured',
    make: () => sign([...signer(pkis.rsa), '-nocerts']),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    intermediates: () => [pkis.rsa.intPem, pkis.rsa.leafPem],
    expectOk: true,
  },
  {
    name: '-nocerts, nothing configured',
    make: () => sign([...signer(pkis.rsa), '-nocerts']),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: false,
    reason: /signer certificate not found/,
  },
  {
    name: 'expired leaf',
    make: () => sign([...signer(pkis.rsa, expiredLeaf), ...withInt(pkis.rsa)]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: false,
    reason: /certificate "CN=Expired Signer RSA, O=Example Org, C=DE" expired on 2021-01-01T00:00:00.000Z/,
  },
  {
    name: 'end-entity certificate used as issuer',
    make: async () => sign([...signer(pkis.rsa, subLeaf), '-certfile', await bundle([pkis.rsa.intPem, pkis.rsa.leafPem])]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    expectOk: false,
    reason: /"CN=Test Signer RSA, O=Example Org, C=DE" issued "CN=Sub Signer RSA, O=Example Org, C=DE" but is not a CA/,
  },
  {
    name: 'tampered content, attached',
    make: async () => tamperAttached(await sign([...signer(pkis.bp256), ...withInt(pkis.bp256)], { attached: true })),
    detached: false,
    anchors: () => [pkis.bp256.rootPem],
    expectOk: false,
    reason: /content digest does not match the signature \(signer "CN=Test Signer brainpoolP256r1/,
  },
  {
    name: 'tampered content, detached',
    make: () => sign([...signer(pkis.rsa), ...withInt(pkis.rsa)]),
    detached: true,
    anchors: () => [pkis.rsa.rootPem],
    content: tampered,
    expectOk: false,
    reason: /content digest does not match the signature \(signer "CN=Test Signer RSA/,
  },
);

/** `openssl cms -sign` honours only the last -certfile: give it one file with both intermediates. */
async function bothIntermediates(): Promise<string[]> {
  return ['-certfile', await bundle([pkis.rsa.intPem, pkis.p256.intPem])];
}

/** DER header at `at`: header length and content length (definite lengths only). */
function derHeader(b: Buffer, at: number): { hl: number; len: number } {
  const first = b[at + 1]!;
  if (first < 0x80) return { hl: 2, len: first };
  const n = first & 0x7f;
  return { hl: 2 + n, len: b.readUIntBE(at + 2, n) };
}

/**
 * Rewrite a DER ContentInfo so ContentInfo, [0] and SignedData use indefinite lengths (BER, as a
 * streaming encoder writes them): 30 80 OID A0 80 30 80 … 00 00 00 00 00 00.
 */
async function indefinite(sig: string): Promise<string> {
  const der = await readFile(sig);
  const outer = derHeader(der, 0);
  const oidEnd = outer.hl + 2 + der[outer.hl + 1]!;
  const explicit = derHeader(der, oidEnd);
  const sdAt = oidEnd + explicit.hl;
  const sd = derHeader(der, sdAt);
  const body = der.subarray(sdAt + sd.hl, sdAt + sd.hl + sd.len);
  const ber = Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(outer.hl, oidEnd), Buffer.from([0xa0, 0x80, 0x30, 0x80]), body, Buffer.alloc(6)]);
  expect(ber.byteLength).toBe(der.byteLength - (outer.hl + explicit.hl + sd.hl) + 6 + 6);
  const out = `${sig}.ber`;
  await writeFile(out, ber);
  return out;
}

/** Flip one byte of the encapsulated content inside the DER signature. */
async function tamperAttached(sig: string): Promise<string> {
  const bytes = await readFile(sig);
  const at = bytes.indexOf('listen 443');
  expect(at).toBeGreaterThan(0);
  bytes[at] = bytes[at]! ^ 0x20;
  await writeFile(sig, bytes);
  return sig;
}

async function tampered(): Promise<string> {
  const f = path.join(tmp, `tampered-${++counter}.conf`);
  const bytes = await readFile(content);
  bytes[3] = bytes[3]! ^ 0x20;
  await writeFile(f, bytes);
  return f;
}

describe('CMS structure', () => {
  it('-stream output really is BER with indefinite lengths, and decodes', async () => {
    const sig = await sign([...signer(pkis.rsa), ...withInt(pkis.rsa), '-stream'], { attached: true });
    const bytes = await readFile(sig);
    expect([bytes[0], bytes[1]]).toEqual([0x30, 0x80]);
    expect(decodeCms(bytes, 'x').signerInfos).toHaveLength(1);
  });

  it('refuses a detached signature that also carries content, and an attached one without', async () => {
    const trust = await trustOf([pkis.rsa.rootPem]);
    const attached = await readFile(await sign([...signer(pkis.rsa), ...withInt(pkis.rsa)], { attached: true }));
    const detached = await readFile(await sign([...signer(pkis.rsa), ...withInt(pkis.rsa)]));
    await expect(verifyCmsDetached(content, attached, trust, 'a/b.conf')).rejects.toThrow(/^a\/b\.conf: detached signature also encapsulates content$/);
    await expect(verifyCmsAttached(detached, trust, 'a/b.conf')).rejects.toThrow(/^a\/b\.conf: attached signature carries no content$/);
  });

  it('rejects garbage, trailing bytes and non-SignedData with the file name', async () => {
    const detached = await readFile(await sign([...signer(pkis.rsa), ...withInt(pkis.rsa)]));
    expect(() => decodeCms(Buffer.from('not a signature'), 'x.p7s')).toThrow(/^x\.p7s: signature is not/);
    expect(() => decodeCms(Buffer.concat([detached, Buffer.from([0])]), 'x.p7s')).toThrow(/x\.p7s: signature has 1 trailing bytes/);
    const cert = await readFile(pkis.rsa.rootPem);
    expect(() => decodeCms(cert, 'x.p7s')).toThrow(/no CMS \/ PKCS7 block/);
    try {
      decodeCms(Buffer.from('garbage'), 'x.p7s');
    } catch (err) {
      expect(err).toBeInstanceOf(VerifyError);
      expect((err as VerifyError).file).toBe('x.p7s');
    }
  });

  it('validates at the given time: an expired leaf verifies at a time inside its validity', async () => {
    const sig = await readFile(await sign([...signer(pkis.rsa, expiredLeaf), ...withInt(pkis.rsa)]));
    const trust = await trustOf([pkis.rsa.rootPem]);
    await expect(verifyCmsDetached(content, sig, trust, 'f')).rejects.toThrow(/expired on 2021-01-01/);
    // Root and intermediate were made today, so no past instant is inside every validity period:
    // the earliest-failing certificate must be named instead.
    await expect(verifyCmsDetached(content, sig, trust, 'f', new Date('2020-06-01T00:00:00Z'))).rejects.toThrow(
      /"CN=Test Intermediate RSA, O=Example Org, C=DE" is not valid before/,
    );
  });
});

describe('CMS verification agrees with openssl cms -verify', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const sig = await c.make();
      const contentPath = c.detached ? (c.content ? await c.content() : content) : undefined;
      const anchors = c.anchors();
      const intermediates = c.intermediates?.() ?? [];
      const theirs = await oracle(sig, anchors, intermediates, { content: contentPath, pem: c.pem, purpose: c.purpose });
      const mine = await ours(sig, await trustOf(anchors, intermediates), { content: contentPath, eku: c.eku });
      expect(mine.ok, `ours: ${String(mine.error)}`).toBe(theirs);
      expect(mine.ok).toBe(c.expectOk);
      if (!mine.ok) {
        expect(mine.error).toBeInstanceOf(VerifyError);
        const err = mine.error as VerifyError;
        expect(err.file).toBe('nginx/nginx.conf');
        expect(err.message.startsWith('nginx/nginx.conf: ')).toBe(true);
        if (c.reason) expect(err.message).toMatch(c.reason);
      }
    });
  }
});
