/**
 * Our ASN.1 reader (src/pki/asn1.ts) and X.509 model (src/pki/x509.ts): the reader's limits on hostile
 * shapes, its time and OID rules, and the certificate fields against OpenSSL (node:crypto's
 * X509Certificate) on every certificate of the real TPM cabinets.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Asn1Error, TAG, children, encode, encodeInteger, encodeOid, octetString, oid, readElement, readWhole, time } from '../../src/pki/asn1.js';
import { allowsExtendedKeyUsage, basicConstraints, loadCertificates, namesEqual, parseCertificate } from '../../src/pki/certs.js';
import { REPO_ROOT } from '../support/cli.js';
import { cabinetCertificates } from '../support/cab-certs.js';

const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(import.meta.dirname, '../../../shared/realworld');
const CABS = ['gematik-test/TrustedTpm.cab', 'tpm-cab/TrustedTpm-10232021.cab'].map((c) => path.join(realworld, c));

const utc = (s: string) => encode(TAG.UTC_TIME, Buffer.from(s, 'latin1'));
const gen = (s: string) => encode(TAG.GENERALIZED_TIME, Buffer.from(s, 'latin1'));

describe('ASN.1 reader', () => {
  it('reads nested BER indefinite lengths and joins constructed OCTET STRING segments in order', () => {
    // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", { "cd" }, "e" }, NULL }
    const bytes = Buffer.from([
      0x30, 0x80, 0x24, 0x80, 0x04, 0x02, 0x61, 0x62, 0x24, 0x04, 0x04, 0x02, 0x63, 0x64, 0x04, 0x01, 0x65, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
    ]);
    const top = readWhole(bytes);
    expect(top.indefinite).toBe(true);
    expect(top.end).toBe(bytes.length);
    const [os, nul] = children(top);
    expect(Buffer.from(octetString(os, 'content', true)).toString()).toBe('abcde');
    expect(nul!.tag).toBe(TAG.NULL);
    expect(() => octetString(os, 'content')).toThrow(Asn1Error);
  });

  it('refuses overruns, truncation, trailing bytes and indefinite primitives', () => {
    expect(() => readElement(Buffer.from([0x30, 0x05, 0x04, 0x01]))).toThrow(/overruns/);
    expect(() => children(readElement(Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00])))).toThrow(/overruns/);
    expect(() => readWhole(Buffer.from([0x05, 0x00, 0x00]))).toThrow(/1 bytes after/);
    expect(() => readElement(Buffer.from([0x04, 0x80, 0x00, 0x00]))).toThrow(/indefinite/);
    expect(() => readElement(Buffer.from([0x30, 0x80, 0x05, 0x00]))).toThrow(/truncated/);
    expect(() => readElement(Buffer.from([0x30, 0x85, 1, 0, 0, 0, 0]))).toThrow(/invalid length/);
  });

  it('a nesting bomb of 200,000 indefinite levels is refused at the depth limit, in linear time, without a stack overflow', () => {
    const levels = 200_000;
    const bomb = Buffer.alloc(levels * 4);
    for (let i = 0; i < levels; i++) {
      bomb[i * 2] = 0x30;
      bomb[i * 2 + 1] = 0x80;
    }
    expect(() => readElement(bomb)).toThrow(/nesting deeper than 64/);
    // Definite-length nesting is only walked as deep as the caller asks: one level here.
    const definite = Buffer.concat([Buffer.from([0x30, 0x84, 0, 0x0f, 0x42, 0x40]), Buffer.alloc(1_000_000)]);
    expect(readElement(definite).end).toBe(definite.length);
  });

  it('decodes OBJECT IDENTIFIERs and refuses non-minimal arcs; encodeOid round-trips', () => {
    for (const o of ['1.2.840.113549.1.7.2', '2.5.29.37', '2.16.840.1.113894.746875.1.1', '0.9.2342.19200300.100.1.25', '2.999.3']) {
      expect(oid(readWhole(encodeOid(o)), 'oid')).toBe(o);
    }
    expect(encodeOid('1.2.840.113549.1.7.2').toString('hex')).toBe('06092a864886f70d010702');
    expect(() => oid(readWhole(Buffer.from([0x06, 0x03, 0x2a, 0x80, 0x01])), 'oid')).toThrow(/not a valid OBJECT IDENTIFIER/);
    expect(() => oid(readWhole(Buffer.from([0x06, 0x02, 0x2a, 0x86])), 'oid')).toThrow(/not a valid OBJECT IDENTIFIER/);
    expect(() => oid(readWhole(Buffer.from([0x06, 0x00])), 'oid')).toThrow(/not a valid OBJECT IDENTIFIER/);
    expect(encodeInteger(2048).toString('hex')).toBe('02020800');
    expect(encodeInteger(128).toString('hex')).toBe('02020080');
  });

  it('reads the RFC 5280 time forms and refuses the rest', () => {
    expect(time(readWhole(utc('491231235959Z')), 't').toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(time(readWhole(utc('500101000000Z')), 't').toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(time(readWhole(gen('00501231120000Z')), 't').toISOString()).toBe('0050-12-31T12:00:00.000Z');
    expect(time(readWhole(gen('20240229120000Z')), 't').toISOString()).toBe('2024-02-29T12:00:00.000Z');
    for (const bad of [
      utc('2401011200Z'),
      utc('240101120000+0100'),
      utc('241301120000Z'),
      gen('21000229120000Z'),
      gen('20240101246000Z'),
      gen('20240101120000.5Z'),
    ]) {
      expect(() => time(readWhole(bad), 't')).toThrow(Asn1Error);
    }
    // RFC 3161 genTime may carry fractional seconds (without trailing zeros).
    expect(time(readWhole(gen('20211021184613.123Z')), 't', true).toISOString()).toBe('2021-10-21T18:46:13.123Z');
    expect(() => time(readWhole(gen('20211021184613.120Z')), 't', true)).toThrow(Asn1Error);
  });
});

describe('X.509 model', () => {
  it('names compare as OpenSSL canonicalises them: case and runs of spaces do not matter, types and order do', async () => {
    const name = (...avas: [string, number, string][]) =>
      encode(TAG.SEQUENCE, ...avas.map(([o, tag, v]) => encode(TAG.SET, encode(TAG.SEQUENCE, encodeOid(o), encode(tag, Buffer.from(v, 'utf8'))))));
    const { parseName } = await import('../../src/pki/x509.js');
    const a = parseName(readWhole(name(['2.5.4.6', TAG.PRINTABLE_STRING, 'DE'], ['2.5.4.3', TAG.UTF8_STRING, 'Example  Signer '])), 'n');
    const b = parseName(readWhole(name(['2.5.4.6', TAG.PRINTABLE_STRING, 'de'], ['2.5.4.3', TAG.PRINTABLE_STRING, 'example signer'])), 'n');
    const c = parseName(readWhole(name(['2.5.4.3', TAG.PRINTABLE_STRING, 'example signer'], ['2.5.4.6', TAG.PRINTABLE_STRING, 'de'])), 'n');
    const d = parseName(readWhole(name(['2.5.4.6', TAG.PRINTABLE_STRING, 'DE'], ['2.5.4.10', TAG.UTF8_STRING, 'Example Signer'])), 'n');
    expect(namesEqual(a, b)).toBe(true);
    expect(namesEqual(a, c)).toBe(false);
    expect(namesEqual(a, d)).toBe(false);
  });

  it('the example CA: fields as OpenSSL reads them', async () => {
    const [ca] = await loadCertificates([path.join(REPO_ROOT, 'fixtures', 'example', 'trust', 'example-root-ca.pem')]);
    const x = new crypto.X509Certificate(ca!.der);
    expect(basicConstraints(ca!)?.cA).toBe(x.ca);
    expect(Buffer.from(ca!.spki).equals(x.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(ca!.notAfter.getTime()).toBe(Date.parse(x.validTo));
  });

  for (const cab of CABS) {
    it.skipIf(!existsSync(cab))(
      `${path.basename(cab)}: every certificate OpenSSL reads, we read with the same serial, validity, key, CA flag and EKUs`,
      async () => {
        const ders = await cabinetCertificates(cab);
        let compared = 0;
        const weRefused: string[] = [];
        for (const der of ders) {
          let x: crypto.X509Certificate;
          try {
            x = new crypto.X509Certificate(der);
          } catch {
            continue; // OpenSSL refuses it: nothing to compare (the BER ones are parsed leniently by us, by design)
          }
          let c: ReturnType<typeof parseCertificate>;
          try {
            c = parseCertificate(der, 'member');
          } catch (err) {
            weRefused.push(`${x.subject.split('\n').join(', ')}: ${(err as Error).message}`);
            continue;
          }
          compared++;
          const serial = Buffer.from(c.serial)
            .toString('hex')
            .replace(/^(00)+(?=.)/, '')
            .toUpperCase();
          expect(serial.replace(/^0(?=.)/, '')).toBe(x.serialNumber.replace(/^0(?=.)/, ''));
          expect([c.notBefore.getTime(), c.notAfter.getTime()]).toEqual([Date.parse(x.validFrom), Date.parse(x.validTo)]);
          expect(Buffer.from(c.spki).equals(x.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
          expect(crypto.createHash('sha256').update(c.der).digest('hex')).toBe(x.fingerprint256.replace(/:/g, '').toLowerCase());
          expect(basicConstraints(c)?.cA ?? false).toBe(x.ca);
          for (const eku of x.keyUsage ?? []) expect(allowsExtendedKeyUsage(c, eku)).toBe(true);
        }
        expect(weRefused).toEqual([]);
        expect(compared).toBeGreaterThan(1000);
      },
    );
  }
});

describe('hostile shapes and strictness (review of the reader)', () => {
  it('a signature of 300,000 tiny elements is refused before anything is built from it', async () => {
    const { verifyCmsDetached } = await import('../../src/verify/cms.js');
    const body = Buffer.alloc(300_000 * 2);
    for (let i = 0; i < body.length; i += 2) body[i] = 0x30;
    const bomb = Buffer.concat([Buffer.from([0x30, 0x83, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
    const file = path.join(REPO_ROOT, 'fixtures', 'example', 'payload', 'nginx', 'nginx.conf');
    await expect(verifyCmsDetached(file, bomb, { anchors: [], intermediates: [] }, 'x.p7s')).rejects.toThrow(/more than 200000 elements/);
  });

  it('sixteen look-alike CAs (same name, same key, signing each other) end the path search with a reason instead of ~10⁸ paths', async () => {
    const { validateChain } = await import('../../src/pki/chain.js');
    const { buildCertificate, basicConstraintsCa, cn, ecKey } = await import('../support/x509-builder.js');
    const k = ecKey();
    const lookAlikes = Array.from({ length: 16 }, (_, i) =>
      parseCertificate(
        buildCertificate({
          subject: cn('Look Alike'),
          issuer: cn('Look Alike'),
          serial: 100 + i,
          key: k.publicKey,
          signer: k.privateKey,
          extensions: [basicConstraintsCa()],
        }),
      ),
    );
    const leaf = parseCertificate(buildCertificate({ subject: cn('Leaf'), issuer: cn('Look Alike'), serial: 1, key: ecKey().publicKey, signer: k.privateKey }));
    const other = ecKey();
    const anchor = parseCertificate(
      buildCertificate({
        subject: cn('Real Root'),
        issuer: cn('Real Root'),
        serial: 7,
        key: other.publicKey,
        signer: other.privateKey,
        extensions: [basicConstraintsCa()],
      }),
    );
    expect(() => validateChain({ leaf, intermediates: lookAlikes, anchors: [anchor], at: new Date('2030-01-01') })).toThrow(/path search gave up after/);
  });

  it('keyUsage bits in the padding of the last octet grant nothing (as OpenSSL reads them)', async () => {
    const { keyUsageBit } = await import('../../src/pki/certs.js');
    const { buildCertificate, cn, ecKey, keyUsageRaw } = await import('../support/x509-builder.js');
    const k = ecKey();
    const make = (contents: number[]) =>
      parseCertificate(
        buildCertificate({ subject: cn('KU'), issuer: cn('KU'), serial: 1, key: k.publicKey, signer: k.privateKey, extensions: [keyUsageRaw(contents)] }),
      );
    // 06 04: six unused bits, so only digitalSignature and nonRepudiation are encoded; 0x04 (keyCertSign) is padding.
    const padded = make([0x06, 0x04]);
    expect(keyUsageBit(padded, 5)).toBe(false);
    expect(new crypto.X509Certificate(padded.der).ca).toBe(false);
    const real = make([0x02, 0x04]);
    expect(keyUsageBit(real, 5)).toBe(true);
  });

  it('a CA whose subjectKeyIdentifier does not parse is refused on a path, not read as having none', async () => {
    const { validateChain } = await import('../../src/pki/chain.js');
    const { buildCertificate, basicConstraintsCa, cn, ecKey } = await import('../support/x509-builder.js');
    const root = ecKey();
    const badSki = { oid: '2.5.29.14', value: Buffer.from([0x04, 0x05, 0x01]) };
    const anchor = parseCertificate(
      buildCertificate({
        subject: cn('Root'),
        issuer: cn('Root'),
        serial: 1,
        key: root.publicKey,
        signer: root.privateKey,
        extensions: [basicConstraintsCa(), badSki],
      }),
    );
    const leaf = parseCertificate(buildCertificate({ subject: cn('Leaf'), issuer: cn('Root'), serial: 2, key: ecKey().publicKey, signer: root.privateKey }));
    expect(() => validateChain({ leaf, intermediates: [], anchors: [anchor], at: new Date('2030-01-01') })).toThrow(/malformed subjectKeyIdentifier extension/);
  });

  it('names: RDN boundaries count, only ASCII case folds, undecodable UTF-8 compares by its bytes', async () => {
    const { parseName } = await import('../../src/pki/x509.js');
    const { name } = await import('../support/x509-builder.js');
    const parse = (rdns: [string, string][][]) => parseName(readWhole(name(rdns)), 'n');
    expect(
      namesEqual(
        parse([
          [
            ['2.5.4.3', 'a'],
            ['2.5.4.10', 'b'],
          ],
        ]),
        parse([[['2.5.4.3', 'a']], [['2.5.4.10', 'b']]]),
      ),
    ).toBe(false);
    expect(namesEqual(parse([[['2.5.4.3', '\u212A']]]), parse([[['2.5.4.3', 'k']]]))).toBe(false);
    expect(namesEqual(parse([[['2.5.4.3', ' Mixed\tCase  Name ']]]), parse([[['2.5.4.3', 'mixed case name']]]))).toBe(true);
    const raw = (b: number) =>
      parseName(readWhole(encode(TAG.SEQUENCE, encode(TAG.SET, encode(TAG.SEQUENCE, encodeOid('2.5.4.3'), encode(TAG.UTF8_STRING, Buffer.from([b])))))), 'n');
    expect(namesEqual(raw(0xff), raw(0xfe))).toBe(false);
    expect(namesEqual(raw(0xff), raw(0xff))).toBe(true);
  });

  it('derStrictError: what OpenSSL would re-encode differently is refused', async () => {
    const { derStrictError } = await import('../../src/pki/der.js');
    const set = (...els: Buffer[]) => encode(TAG.SET, ...els);
    const a = encode(TAG.SEQUENCE, encodeOid('1.2.3'));
    const b = encode(TAG.SEQUENCE, encodeOid('1.2.4'));
    expect(derStrictError(set(a, b))).toBeUndefined();
    expect(derStrictError(set(b, a))).toMatch(/out of DER order/);
    expect(derStrictError(Buffer.from([0x31, 0x81, 0x03, 0x02, 0x01, 0x00]))).toMatch(/non-minimal length/);
    expect(derStrictError(Buffer.from([0x30, 0x03, 0x01, 0x01, 0x01]))).toMatch(/BOOLEAN/);
    expect(derStrictError(Buffer.from([0x30, 0x04, 0x02, 0x02, 0x00, 0x01]))).toMatch(/non-minimal INTEGER/);
    expect(derStrictError(Buffer.from([0x30, 0x80, 0x05, 0x00, 0x00, 0x00]))).toMatch(/indefinite/);
  });

  it('the encoders refuse what they cannot encode', () => {
    expect(() => encodeInteger(-5)).toThrow();
    expect(() => encodeInteger(1.5)).toThrow();
    expect(() => encodeOid('3.1')).toThrow();
    expect(() => encodeOid('1.40')).toThrow();
  });
});

describe('name constraints', () => {
  it('a CA with nameConstraints, critical or not, is refused rather than its constraints ignored', async () => {
    const { validateChain } = await import('../../src/pki/chain.js');
    const { buildCertificate, basicConstraintsCa, cn, ecKey } = await import('../support/x509-builder.js');
    const root = ecKey();
    // permittedSubtrees: rfc822Name "example.org"
    const constraints = encode(TAG.SEQUENCE, encode(0xa0, encode(TAG.SEQUENCE, encode(0x81, Buffer.from('example.org')))));
    for (const critical of [true, false]) {
      const anchor = parseCertificate(
        buildCertificate({
          subject: cn('Constrained Root'),
          issuer: cn('Constrained Root'),
          serial: 1,
          key: root.publicKey,
          signer: root.privateKey,
          extensions: [basicConstraintsCa(), { oid: '2.5.29.30', critical, value: constraints }],
        }),
      );
      const leaf = parseCertificate(
        buildCertificate({ subject: cn('Leaf'), issuer: cn('Constrained Root'), serial: 2, key: ecKey().publicKey, signer: root.privateKey }),
      );
      expect(() => validateChain({ leaf, intermediates: [], anchors: [anchor], at: new Date('2030-01-01') })).toThrow(/carries nameConstraints/);
    }
  });
});
