/**
 * Hand-made certificates for tests that need shapes no CA tool writes (look-alike certificate sets,
 * malformed or padded extensions): DER from src/pki/asn1.ts's encoders, signed with node:crypto
 * (ECDSA P-256, SHA-256). Only the test's own keys sign; nothing here is trusted outside a test.
 */
import crypto from 'node:crypto';
import { TAG, encode, encodeInteger, encodeOid } from '../../src/pki/asn1.js';

export interface BuiltExtension {
  oid: string;
  critical?: boolean;
  /** DER of the extension's value (what goes into extnValue). */
  value: Buffer;
}

export interface CertSpec {
  /** [type OID, UTF8String value] per RDN, most general first (e.g. [['2.5.4.3', 'CA']]). */
  subject: [string, string][][];
  issuer: [string, string][][];
  serial: number;
  /** Key whose public half the certificate carries. */
  key: crypto.KeyObject;
  /** Key that signs the certificate. */
  signer: crypto.KeyObject;
  extensions?: BuiltExtension[];
  notBefore?: string;
  notAfter?: string;
}

const ECDSA_SHA256 = encode(TAG.SEQUENCE, encodeOid('1.2.840.10045.4.3.2'));

export function name(rdns: [string, string][][]): Buffer {
  return encode(
    TAG.SEQUENCE,
    ...rdns.map((rdn) =>
      encode(TAG.SET, ...rdn.map(([type, value]) => encode(TAG.SEQUENCE, encodeOid(type), encode(TAG.UTF8_STRING, Buffer.from(value, 'utf8'))))),
    ),
  );
}

export const cn = (value: string): [string, string][][] => [[['2.5.4.3', value]]];

export const basicConstraintsCa = (): BuiltExtension => ({
  oid: '2.5.29.19',
  critical: true,
  value: encode(TAG.SEQUENCE, encode(TAG.BOOLEAN, Buffer.from([0xff]))),
});

/** keyUsage from the raw BIT STRING contents (unused-bits octet first), so padding bits can be set. */
export const keyUsageRaw = (contents: number[]): BuiltExtension => ({ oid: '2.5.29.15', critical: true, value: encode(TAG.BIT_STRING, Buffer.from(contents)) });

export function buildCertificate(spec: CertSpec): Buffer {
  const spki = spec.key.export({ type: 'spki', format: 'der' });
  const validity = encode(
    TAG.SEQUENCE,
    encode(TAG.UTC_TIME, Buffer.from(spec.notBefore ?? '200101000000Z')),
    encode(TAG.GENERALIZED_TIME, Buffer.from(spec.notAfter ?? '20991231235959Z')),
  );
  const extensions = spec.extensions?.length
    ? [
        encode(
          0xa3,
          encode(
            TAG.SEQUENCE,
            ...spec.extensions.map((e) =>
              encode(TAG.SEQUENCE, encodeOid(e.oid), ...(e.critical ? [encode(TAG.BOOLEAN, Buffer.from([0xff]))] : []), encode(TAG.OCTET_STRING, e.value)),
            ),
          ),
        ),
      ]
    : [];
  const tbs = encode(
    TAG.SEQUENCE,
    encode(0xa0, encodeInteger(2)),
    encodeInteger(spec.serial),
    ECDSA_SHA256,
    name(spec.issuer),
    validity,
    name(spec.subject),
    spki,
    ...extensions,
  );
  const signature = crypto.sign('sha256', tbs, spec.signer);
  return encode(TAG.SEQUENCE, tbs, ECDSA_SHA256, encode(TAG.BIT_STRING, Buffer.from([0]), signature));
}

export function ecKey(): crypto.KeyPairKeyObjectResult {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
