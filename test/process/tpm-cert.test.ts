/**
 * The TPM processor's DER fast path (src/process/tpm-cert.ts) against OpenSSL (node:crypto's
 * X509Certificate): whenever the fast path answers, OpenSSL accepts the certificate and prints the same
 * subject — on every certificate of the real cabinets and on mutated copies (byte flips, truncations,
 * insertions; seeded, so a failure reproduces). When the fast path is unsure it says so (undefined) and
 * OpenSSL decides, which the pinned store hashes in tpm.test.ts cover.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quickSubject } from '../../src/process/tpm-cert.js';
import { cabinetCertificates } from '../support/cab-certs.js';

const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(import.meta.dirname, '../../../shared/realworld');
const CABS = ['gematik-test/TrustedTpm.cab', 'tpm-cab/TrustedTpm-10232021.cab'].map((c) => path.join(realworld, c));

function openssl(der: Uint8Array): string | undefined {
  try {
    return new crypto.X509Certificate(der).subject;
  } catch {
    return undefined;
  }
}

/** DER certificates of a cabinet (PEM members decoded). */
/** xorshift32: a seeded sequence, so a failing mutant can be found again. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

describe('TPM certificate fast path vs OpenSSL', () => {
  for (const cab of CABS) {
    it.skipIf(!existsSync(cab))(`${path.basename(cab)}: same verdict and subject as OpenSSL wherever it answers, and it answers for most`, async () => {
      const ders = await cabinetCertificates(cab);
      let answered = 0;
      for (const der of ders) {
        const fast = quickSubject(der);
        if (fast === undefined) continue;
        answered++;
        expect(openssl(der), `certificate ${crypto.createHash('sha256').update(der).digest('hex')}`).toBe(fast);
      }
      expect(ders.length).toBeGreaterThan(1000);
      // The point of the fast path: it must carry the bulk (measured: ~94% of TrustedTpm.cab).
      expect(answered / ders.length).toBeGreaterThan(0.85);
    });
  }

  it.skipIf(!existsSync(CABS[0]!))('never accepts a mutated certificate that OpenSSL refuses or prints differently', async () => {
    const ders = (await cabinetCertificates(CABS[0]!)).filter((d) => quickSubject(d) !== undefined);
    const next = rng(0x5eed17);
    let checked = 0;
    let refusedByBoth = 0;
    for (let i = 0; i < 4000; i++) {
      const base = ders[Math.floor(next() * ders.length)]!;
      const m = Buffer.from(base);
      const kind = next();
      let mutant: Buffer;
      if (kind < 0.6) {
        // flip bits of one byte, biased to the first 200 bytes where the headers and names are
        const at = Math.floor(next() < 0.7 ? next() * Math.min(200, m.length) : next() * m.length);
        m[at] = m[at]! ^ (1 + Math.floor(next() * 255));
        mutant = m;
      } else if (kind < 0.8) {
        mutant = m.subarray(0, Math.floor(next() * m.length));
      } else {
        const at = Math.floor(next() * m.length);
        mutant = Buffer.concat([m.subarray(0, at), Buffer.from([Math.floor(next() * 256)]), m.subarray(at)]);
      }
      const fast = quickSubject(mutant);
      if (fast === undefined) {
        refusedByBoth += openssl(mutant) === undefined ? 1 : 0;
        continue;
      }
      checked++;
      expect(openssl(mutant), `mutant ${i}: ${mutant.toString('base64')}`).toBe(fast);
    }
    // Many mutants still parse (a flipped byte inside a key or a signature changes nothing structural).
    expect(checked).toBeGreaterThan(500);
    expect(refusedByBoth).toBeGreaterThan(100);
  });
});
