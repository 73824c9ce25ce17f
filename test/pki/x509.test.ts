/**
 * Our ASN.1 reader (src/pki/asn1.ts) and X.509 model (src/pki/x509.ts): the reader's limits on hostile
 * shapes, its time and OID rules, and the certificate fields against OpenSSL (node:crypto's
 * X509Certificate) on every certificate of the real TPM cabinets.
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCabinet } from '../../src/cab/index.js';
import { Asn1Error, TAG, children, encode, encodeInteger, encodeOid, octetString, oid, readElement, readWhole, time } from '../../src/pki/asn1.js';
import { allowsExtendedKeyUsage, basicConstraints, loadCertificates, namesEqual, parseCertificate } from '../../src/pki/certs.js';
import { REPO_ROOT } from '../support/cli.js';

const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(import.meta.dirname, '../../../shared/realworld');
const CABS = ['gematik-test/TrustedTpm.cab', 'tpm-cab/TrustedTpm-10232021.cab'].map((c) => path.join(realworld, c));

async function cabinetCertificates(cab: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const { data } of readCabinet(await readFile(cab))) {
    const text = data.toString('latin1');
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    } else if (data[0] === 0x30) out.push(data);
  }
  return out;
}

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
