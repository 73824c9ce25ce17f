/**
 * Property/fuzz test: hostile signatures must end in a typed VerifyError, never in a TypeError,
 * RangeError, crash or hang, and a mutated input may only verify when it is equivalent to the original
 * (same verdict from the peer oracle, same signer report, same signed bytes).
 *
 * Seeded PRNG (ZETA_FUZZ_SEED, ZETA_FUZZ_ITERATIONS override), so a failure is reproducible.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates } from '../../src/pki/certs.js';
import { verifyAuthenticodeCab } from '../../src/verify/authenticode.js';
import { verifyCmsDetached, type TrustAnchors } from '../../src/verify/cms.js';
import { verifyCosignSignature, type CosignPolicy, type CosignResult } from '../../src/verify/cosign.js';
import { bundle, makeCab, osslsigncodeVerify, requireCabPeers, signCab } from '../support/authenticode.js';
import { REPO_ROOT } from '../support/cli.js';
import { GEMATIK_IDENTITY, addCosignLeaves, cosignPayload, randomDigest, signBytes, signatureManifest, type LayerSpec } from '../support/cosign.js';
import { makePki, openssl } from '../support/openssl.js';

const ITERATIONS = Number(process.env.ZETA_FUZZ_ITERATIONS ?? 10_000);
const SEED = Number(process.env.ZETA_FUZZ_SEED ?? 0x5eed);
/**
 * A single call slower than this counts as a hang. Calls take well under 0.5 s even with the machine
 * loaded (load average 13 on 2 cores, measured); the bound is generous so only a real blow-up (an
 * exponential path, a runaway allocation) trips it, never a busy CI machine.
 */
const MAX_CALL_MS = 10_000;
/** Accepted mutations are re-checked with the peer program; bounded so the test stays fast. */
const MAX_ORACLE_CHECKS = 25;

/** mulberry32: tiny, fast, good enough to spread mutations; seeded for reproducibility. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const TAGS = new Set([0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x17, 0x18, 0x30, 0x31, 0xa0, 0xa1, 0xa2, 0xa3]);
const HUGE_LENGTHS = [[0x80], [0x84, 0xff, 0xff, 0xff, 0xff], [0x84, 0x7f, 0xff, 0xff, 0xff], [0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0x00], [0x7f], [0x81, 0x01]];
const NESTING = 100_000;

/** 100k nested SEQUENCE headers, indefinite (`30 80`…) or definite (lengths computed inside out). */
function nestingBomb(rand: (n: number) => number): Buffer {
  if (rand(2) === 0) return Buffer.concat([Buffer.alloc(NESTING * 2).fill(Buffer.from([0x30, 0x80])), Buffer.alloc(NESTING * 2)]);
  const out = Buffer.alloc(NESTING * 6);
  for (let i = NESTING - 1, len = 0; i >= 0; i--, len += 6) {
    out.set([0x30, 0x84, (len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255], i * 6);
  }
  return out;
}

/** 1–3 random structural mutations; a nesting bomb about once in 250 inputs. */
function mutate(input: Uint8Array, rand: (n: number) => number): Buffer {
  let b = Buffer.from(input);
  const ops = 1 + rand(3);
  for (let k = 0; k < ops; k++) {
    const at = rand(Math.max(b.length, 1));
    switch (rand(8)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + rand(4); i < n && b.length > 0; i++) {
          const j = rand(b.length);
          b[j] = b[j]! ^ (1 << rand(8));
        }
        break;
      case 1: // random byte
        if (b.length > 0) b[at] = rand(256);
        break;
      case 2: // insertion
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rand(8) }, () => rand(256))), b.subarray(at)]);
        break;
      case 3: // deletion
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(16))]);
        break;
      case 4: // truncation
        b = b.subarray(0, rand(b.length + 1));
        break;
      case 5: {
        // length-field corruption right after something that looks like a tag
        const tags = [];
        for (let i = 0; i + 1 < b.length && tags.length < 64; i = i + 1 + rand(32)) if (TAGS.has(b[i]!)) tags.push(i);
        const t = tags[rand(tags.length)];
        if (t === undefined) break;
        const lenBytes = b[t + 1]! & 0x80 ? 1 + (b[t + 1]! & 0x7f) : 1;
        b = Buffer.concat([b.subarray(0, t + 1), Buffer.from(HUGE_LENGTHS[rand(HUGE_LENGTHS.length)]!), b.subarray(t + 1 + lenBytes)]);
        break;
      }
      case 6: {
        // duplicate a slice elsewhere (repeated structures, overlapping lengths)
        const len = 1 + rand(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(rand(b.length), rand(b.length) + len), b.subarray(at)]);
        break;
      }
      default:
        if (rand(32) === 0) b = Buffer.concat([b.subarray(0, at), nestingBomb(rand), b.subarray(at)]);
        else if (b.length > 0) b[at] = [0x00, 0xff, 0x80, 0x30][rand(4)]!;
    }
  }
  return b;
}

interface Outcome {
  iterations: number;
  rejected: number;
  accepted: Buffer[];
  escaped: string[];
  maxMs: number;
  totalMs: number;
}

/** Run `call` on ITERATIONS mutations; classify each result. */
async function fuzz(
  original: Uint8Array,
  seed: number,
  call: (input: Buffer, rand: (n: number) => number) => Promise<unknown>,
  same: (r: unknown) => boolean,
): Promise<Outcome> {
  const rand = prng(seed);
  const out: Outcome = { iterations: 0, rejected: 0, accepted: [], escaped: [], maxMs: 0, totalMs: 0 };
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(original, rand);
    const t0 = performance.now();
    try {
      const r = await call(input, rand);
      // Success on changed bytes must still mean "the same signed thing": same signer report.
      if (!same(r)) out.escaped.push(`#${i}: accepted a mutation with a different result ${JSON.stringify(r)}`);
      else if (!input.equals(original)) out.accepted.push(input);
    } catch (err) {
      if (err instanceof VerifyError && !/\n/.test(err.message)) out.rejected++;
      else if (out.escaped.length < 10) out.escaped.push(`#${i}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      else out.escaped.push(`#${i}`);
    }
    out.maxMs = Math.max(out.maxMs, performance.now() - t0);
    out.iterations++;
  }
  out.totalMs = performance.now() - start;
  return out;
}

function expectTyped(name: string, o: Outcome): void {
  console.log(
    `fuzz ${name}: ${o.iterations} inputs, ${o.rejected} VerifyErrors, ${o.accepted.length} accepted as equivalent (signed bytes and report unchanged), ` +
      `${o.escaped.length} escaped, ${(o.totalMs / 1000).toFixed(1)} s total, slowest call ${o.maxMs.toFixed(0)} ms`,
  );
  expect(o.escaped.slice(0, 5)).toEqual([]);
  expect(o.iterations).toBe(ITERATIONS);
  expect(o.maxMs).toBeLessThan(MAX_CALL_MS);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-fuzz-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe(`fuzz (${ITERATIONS} seeded mutations per format)`, () => {
  it('CMS detached: the example payload nginx.conf.p7s', async () => {
    const dir = path.join(REPO_ROOT, 'fixtures', 'example');
    const content = path.join(dir, 'payload', 'nginx', 'nginx.conf');
    const sig = await readFile(`${content}.p7s`);
    const trust: TrustAnchors = { anchors: await loadCertificates([path.join(dir, 'trust', 'example-root-ca.pem')]), intermediates: [] };
    const baseline = JSON.stringify(await verifyCmsDetached(content, sig, trust, 'nginx/nginx.conf'));
    const o = await fuzz(
      sig,
      SEED,
      (input) => verifyCmsDetached(content, input, trust, 'nginx/nginx.conf'),
      (r) => JSON.stringify(r) === baseline,
    );
    expectTyped('cms', o);
    // Whatever we accepted, openssl must accept too (e.g. a flipped bit in an unsigned certificate copy).
    for (const [i, input] of o.accepted.slice(0, MAX_ORACLE_CHECKS).entries()) {
      const f = path.join(tmp, `cms-accepted-${i}.p7s`);
      await writeFile(f, input);
      const peer = await openssl([
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        f,
        '-content',
        content,
        '-CAfile',
        path.join(dir, 'trust', 'example-root-ca.pem'),
        '-purpose',
        'any',
        '-out',
        '/dev/null',
      ]);
      const diff = [...input.keys()].filter((k) => input[k] !== sig[k]).slice(0, 4);
      expect({ i, exit: peer.exitCode, diff, lengths: [input.length, sig.length], peer: peer.stderr }).toMatchObject({ i, exit: 0 });
    }
  }, 120_000);

  it('Authenticode: a small signed cabinet (gcab + osslsigncode)', async () => {
    await requireCabPeers();
    const content = path.join(tmp, 'cab-content');
    await mkdir(content);
    await writeFile(path.join(content, 'setup.cmd'), 'echo hello\r\n');
    await writeFile(path.join(content, 'version.txt'), '1.0\n');
    const pki = await makePki(path.join(tmp, 'cab-pki'), 'Fuzz CAB', 'p256');
    const unsigned = await makeCab(path.join(tmp, 'unsigned.cab'), content, ['setup.cmd', 'version.txt']);
    const signed = await signCab(unsigned, path.join(tmp, 'signed.cab'), {
      certs: await bundle(path.join(tmp, 'certs.pem'), [pki.leafPem, pki.intPem]),
      key: pki.leafKey,
    });
    const trust: TrustAnchors = { anchors: await loadCertificates([pki.rootPem]), intermediates: [] };
    const original = await readFile(signed);
    const baseline = JSON.stringify(await verifyAuthenticodeCab(signed, trust, 'TrustedTpm.cab'));
    const target = path.join(tmp, 'mutated.cab');
    const o = await fuzz(
      original,
      SEED + 1,
      async (input) => {
        await writeFile(target, input);
        return verifyAuthenticodeCab(target, trust, 'TrustedTpm.cab');
      },
      (r) => JSON.stringify(r) === baseline,
    );
    expectTyped('authenticode', o);
    // Accepted changes must be ones osslsigncode accepts too (e.g. header bytes Authenticode excludes).
    for (const [i, input] of o.accepted.slice(0, MAX_ORACLE_CHECKS).entries()) {
      const f = path.join(tmp, `cab-accepted-${i}.cab`);
      await writeFile(f, input);
      const peer = await osslsigncodeVerify(f, pki.rootPem);
      const diff = [...input.keys()].filter((k) => input[k] !== original[k]).slice(0, 4);
      expect({ i, ok: peer.ok, diff, lengths: [input.length, original.length], peer: peer.ok ? '' : peer.output }).toMatchObject({ i, ok: true });
    }
  }, 120_000);

  it('cosign: signature manifest, payload blob and annotations', async () => {
    const pki = await makePki(path.join(tmp, 'cosign-pki'), 'Fuzz Cosign', 'p256');
    const leaves = await addCosignLeaves(pki, 'Fuzz');
    const imageDigest = randomDigest();
    const payload = cosignPayload(imageDigest);
    const leafPem = await readFile(leaves.good, 'utf8');
    const chainPem = (await readFile(pki.intPem, 'utf8')) + (await readFile(pki.rootPem, 'utf8'));
    const good: LayerSpec = { payload, signature: await signBytes(payload, pki.leafKey), certPem: leafPem, chainPem };
    const policy: CosignPolicy = { imageDigest, anchors: await loadCertificates([pki.rootPem]), identity: GEMATIK_IDENTITY };
    const baseline = JSON.stringify(verifyCosignSignature(signatureManifest([good]), policy));
    const pemDer = (text: string): Buffer => Buffer.from(text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const toPem = (der: Uint8Array): string => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
    const original = signatureManifest([good]).manifest;

    // The mutated bytes drive one of several targets; the signed payload must be unchanged on success.
    let verifiedPayload: Uint8Array | undefined;
    const o = await fuzz(
      original,
      SEED + 2,
      async (input, rand) => {
        const target = rand(6);
        let image;
        const mut = (b: Uint8Array): Buffer => mutate(b, rand);
        if (target === 0) image = { ...signatureManifest([good]), manifest: input };
        else if (target === 1) image = signatureManifest([{ ...good, payload: mut(payload) }]);
        else if (target === 2) image = signatureManifest([{ ...good, signature: mut(Buffer.from(good.signature!, 'base64')).toString('base64') }]);
        else if (target === 3) image = signatureManifest([{ ...good, certPem: toPem(mut(pemDer(leafPem))) }]);
        else if (target === 4)
          image = signatureManifest([{ ...good, chainPem: toPem(mut(pemDer(chainPem.split('-----END CERTIFICATE-----')[0]!))) + chainPem }]);
        else {
          // Blob swapped under the right digest: the defence-in-depth digest check must catch it.
          const m = signatureManifest([good]);
          image = { ...m, blobs: new Map([...m.blobs.keys()].map((k) => [k, mut(payload)])) };
        }
        const r: CosignResult = verifyCosignSignature(image, policy);
        verifiedPayload = [...image.blobs.values()][0];
        return r;
      },
      (r) => JSON.stringify(r) === baseline && verifiedPayload !== undefined && Buffer.from(verifiedPayload).equals(payload),
    );
    expectTyped('cosign', o);
  }, 120_000);
});
