/** roots.json validation on gematik's real files and broken variants of them. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { validateRootsJson } from '../../src/process/roots-json.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');
const TEST_ROOTS = path.join(REALWORLD, 'gematik-test', 'roots.json');
const TI_ROOTS = path.join(REALWORLD, 'gematik-test', 'ti-roots', 'roots.json');

type Entry = Record<string, string>;

describe.skipIf(!existsSync(TEST_ROOTS))('roots.json', () => {
  let original: Entry[];
  beforeAll(async () => {
    original = JSON.parse(await readFile(TEST_ROOTS, 'utf8')) as Entry[];
  });
  const variant = (change: (roots: Entry[]) => unknown): Buffer => {
    const copy = structuredClone(original);
    change(copy);
    return Buffer.from(JSON.stringify(copy, null, 4));
  };
  const reason = (bytes: Buffer): string => {
    try {
      validateRootsJson(bytes, 'roots.json');
    } catch (err) {
      expect(err).toBeInstanceOf(VerifyError);
      return (err as Error).message;
    }
    throw new Error('expected the file to be refused');
  };

  it('accepts both real files (test and production TI roots): 10 roots, RCA2 … RCA11, cross-certificates linked', async () => {
    expect(validateRootsJson(await readFile(TEST_ROOTS), 'roots.json')).toEqual({ roots: 10, first: 'GEM.RCA2 TEST-ONLY', last: 'GEM.RCA11 TEST-ONLY' });
    expect(validateRootsJson(await readFile(TI_ROOTS), 'ti-roots/roots.json')).toEqual({ roots: 10, first: 'GEM.RCA2', last: 'GEM.RCA11' });
  });

  it('refuses broken variants with a reason naming the entry', () => {
    expect(reason(Buffer.from('{"cert":1}'))).toBe('roots.json: expected a non-empty JSON array of root entries');
    expect(reason(Buffer.from('[1,'))).toMatch(/^roots.json: not valid UTF-8 JSON/);
    expect(reason(variant((r) => delete r[3]!.ski))).toMatch(/entry 3: keys are cert, cn, name, next, nva, nvb, prev; expected exactly/);
    expect(reason(variant((r) => (r[2]!.extra = 'x')))).toMatch(/entry 2: keys are/);
    expect(reason(variant((r) => (r[1]!.cert = r[1]!.cert!.slice(0, 200))))).toMatch(/entry 1\.cert: OpenSSL cannot parse the certificate/);
    expect(reason(variant((r) => (r[1]!.cert = '!!!' + r[1]!.cert)))).toMatch(/entry 1\.cert: not base64/);
    expect(reason(variant((r) => (r[4]!.ski = '00' + r[4]!.ski!.slice(2))))).toMatch(
      /entry 4 \("GEM.RCA6 TEST-ONLY"\): ski 00.* is not the certificate's 4cf7e065/,
    );
    expect(reason(variant((r) => (r[0]!.cn = 'GEM.RCA1 TEST-ONLY')))).toMatch(/entry 0 .*cn does not match the certificate's CN "GEM.RCA2 TEST-ONLY"/);
    expect(reason(variant((r) => (r[0]!.name = 'RCA2')))).toMatch(/name "RCA2" does not match the CN without "GEM."/);
    expect(reason(variant((r) => (r[0]!.nva = '2099-01-01T00:00:00')))).toMatch(
      /nva 2099-01-01T00:00:00 is not the certificate's notAfter 2026-11-15T15:50:57/,
    );
    // Cross-certificates: swapped between entries, dropped, or a root out of order.
    expect(reason(variant((r) => ([r[2]!.next, r[3]!.next] = [r[3]!.next!, r[2]!.next!])))).toMatch(/entry 2 \("GEM.RCA4 TEST-ONLY"\)\.next: issued by/);
    expect(reason(variant((r) => (r[5]!.prev = '')))).toMatch(/entry 5 .*: prev is empty, but "GEM.RCA6 TEST-ONLY" precedes/);
    expect(reason(variant((r) => (r[9]!.next = r[8]!.next!)))).toMatch(/entry 9 .*: next is set, but this is the last root/);
    expect(reason(variant((r) => r.splice(4, 1)))).toMatch(
      /entry 3 \("GEM.RCA5 TEST-ONLY"\).next: should certify "CN=GEM.RCA7 TEST-ONLY.*certifies "CN=GEM.RCA6 TEST-ONLY/,
    );
    // A cross-certificate for the right names but someone else's key.
    expect(reason(variant((r) => (r[0]!.next = r[1]!.prev!)))).toMatch(/entry 0 .*\.next: /);
    // A root that is not self-signed (a cross-certificate in the cert field).
    expect(reason(variant((r) => (r[1]!.cert = r[0]!.next!)))).toMatch(/entry 1 .*cert is not a self-signed root/);
  });
});
