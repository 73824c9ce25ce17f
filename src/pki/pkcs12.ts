/**
 * PKCS#12 trust-store writer: certificate bags only (no keys), in the shape OpenSSL 3 writes by default
 * — one encrypted SafeContents under PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC, 2048 iterations) and an
 * HMAC-SHA256 MAC with the PKCS#12 key derivation — so Keycloak (BouncyCastle), Java's keytool and
 * `openssl pkcs12` all read it. Everything is written directly as DER (./asn1.ts): the bags and the
 * wrappers around the megabytes of certificates and ciphertext as chunk lists, copied once; pkijs'
 * classes cost about a second and ten copies of the data for TrustedTpm.cab.
 *
 * Every bag carries a friendlyName (the alias consumers show) and Oracle's trusted-key-usage attribute:
 * without it Java (checked with OpenJDK 17) loads certificate-only bags as nothing at all — keytool lists
 * "0 entries" for a store from `openssl pkcs12 -export -nokeys` — which is why OpenSSL 3.2 added
 * `-jdktrust`. Its value, anyExtendedKeyUsage, is what keytool itself writes for `-importcert`.
 *
 * Deterministic: the same entries and password give the same bytes, so consumers that reload when the
 * file's bytes change reload only when trust changed. The PBKDF2 salt, the IV and the MAC salt are
 * therefore derived (SHA-256, domain-separated) from the bytes they protect instead of drawn at
 * random. Why that is acceptable here: the store holds only public certificates, so encryption and MAC
 * protect nothing secret (gematik's default password is literally `no_secret_for_trust_only`); what must
 * hold is that different content never reuses a (key, IV) pair with different plaintext, and a salt/IV
 * that is a hash of the plaintext guarantees exactly that. The password is deliberately NOT mixed into
 * the salts: they are public, the certificates are public, so a salt = H(password, content) would let
 * anyone test password guesses with one SHA-256 instead of 2048 PBKDF2 rounds. A different password
 * still changes every encrypted byte and the MAC, through the derived keys.
 */
import crypto from 'node:crypto';
import { VerifyError } from '../errors.js';
import { TAG, encode, encodeInteger, encodeOid, header, headerLength, writeHeader } from './asn1.js';
import { derFrame } from './der.js';

const OID_PKCS7_DATA = '1.2.840.113549.1.7.1';
const OID_PKCS7_ENCRYPTED_DATA = '1.2.840.113549.1.7.6';
const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_PBKDF2 = '1.2.840.113549.1.5.12';
const OID_HMAC_SHA256 = '1.2.840.113549.2.9';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
/** Oracle's "trusted key usage" bag attribute (JDK PKCS12KeyStore: ORACLE_TrustedKeyUsage). */
const OID_ORACLE_TRUSTED_KEY_USAGE = '2.16.840.1.113894.746875.1.1';
const OID_ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/** OpenSSL 3's default for both PBKDF2 and the MAC. */
export const PKCS12_ITERATIONS = 2048;
const SALT_BYTES = 16;

export interface TrustStoreEntry {
  /** One X.509 certificate, DER. */
  certificate: Buffer;
  /** The alias consumers show; unique case-insensitively (Java lower-cases PKCS#12 aliases). */
  friendlyName: string;
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64). The MAC key comes
 * from this, not from PBKDF2, in every implementation (OpenSSL, Java, BouncyCastle). The password is
 * BMPString (UTF-16BE) with a terminating NUL, as appendix B.1 says.
 */
export function pkcs12Kdf(password: string, salt: Uint8Array, id: number, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  const bmp = Buffer.alloc((password.length + 1) * 2);
  for (let i = 0; i < password.length; i++) bmp.writeUInt16BE(password.charCodeAt(i), i * 2);
  const repeat = (src: Uint8Array): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const I = Buffer.concat([salt.length ? repeat(salt) : Buffer.alloc(0), repeat(bmp)]);
  const D = Buffer.alloc(v, id);
  const out: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = crypto.createHash('sha256').update(D).update(I).digest();
    // One-shot crypto.hash: 2,047 Hash objects fewer (it was the largest item of the TPM store's
    // encoding in a CPU profile).
    for (let r = 1; r < iterations; r++) A = crypto.hash('sha256', A, 'buffer');
    out.push(A);
    // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block, B = A repeated to v bytes.
    const B = repeat(A);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * DER is written as lists of chunks: a constructed element is its tag/length header followed by its
 * children's chunks, so the megabytes of certificates and ciphertext are copied once, into the final
 * buffer, instead of once per nesting level.
 */
type Chunks = Buffer[];
const chunkLength = (chunks: Chunks): number => chunks.reduce((n, c) => n + c.byteLength, 0);

function node(tag: number, ...children: (Buffer | Chunks)[]): Chunks {
  const body = children.flat();
  return [header(tag, chunkLength(body)), ...body];
}

/** AlgorithmIdentifier { oid, params }. */
const algorithmId = (oid: string, params: Buffer): Buffer => encode(TAG.SEQUENCE, encodeOid(oid), params);
const DER_NULL = encode(TAG.NULL);
const CERT_BAG_OID = encodeOid(OID_CERT_BAG);
const X509_CERTIFICATE_OID = encodeOid(OID_X509_CERTIFICATE);
const FRIENDLY_NAME_OID = encodeOid(OID_FRIENDLY_NAME);
/** The whole trusted-key-usage Attribute: SEQUENCE { oid, SET { OID anyExtendedKeyUsage } }. */
const PKCS7_DATA_OID = encodeOid(OID_PKCS7_DATA);
const PKCS7_ENCRYPTED_DATA_OID = encodeOid(OID_PKCS7_ENCRYPTED_DATA);
const INTEGER_0 = Buffer.from([0x02, 0x01, 0x00]);
const INTEGER_3 = Buffer.from([0x02, 0x01, 0x03]);
const TRUSTED_KEY_USAGE_ATTRIBUTE = encode(0x30, encodeOid(OID_ORACLE_TRUSTED_KEY_USAGE), encode(0x31, encodeOid(OID_ANY_EXTENDED_KEY_USAGE)));

/**
 * One SafeBag { certBag, CertBag { x509Certificate, [0] OCTET STRING cert }, { friendlyName, trusted
 * key usage } }. The certificate goes in as the exact bytes given.
 */
function certBag({ certificate, friendlyName }: TrustStoreEntry): Chunks {
  const parsed = derFrame(certificate);
  if (!parsed || parsed.total !== certificate.byteLength || certificate[0] !== 0x30)
    throw new VerifyError(`certificate "${friendlyName}" is not one DER element`);
  // Three chunks per bag — the headers before the certificate, the certificate itself (referenced, so
  // it is copied once, into the plaintext), the attributes after it — instead of a dozen small
  // buffers and arrays: for 2,198 bags those allocations were most of the encoder's time.
  const nameBytes = friendlyName.length * 2;
  const bmpString = headerLength(nameBytes) + nameBytes;
  const nameSet = headerLength(bmpString) + bmpString;
  const nameAttr = FRIENDLY_NAME_OID.length + nameSet;
  const attrs = headerLength(nameAttr) + nameAttr + TRUSTED_KEY_USAGE_ATTRIBUTE.length;
  const suffix = Buffer.allocUnsafe(headerLength(attrs) + attrs);
  let at = writeHeader(suffix, 0, 0x31, attrs);
  at = writeHeader(suffix, at, 0x30, nameAttr);
  at += FRIENDLY_NAME_OID.copy(suffix, at);
  at = writeHeader(suffix, at, 0x31, bmpString);
  at = writeHeader(suffix, at, 0x1e, nameBytes);
  for (let i = 0; i < friendlyName.length; i++) at = suffix.writeUInt16BE(friendlyName.charCodeAt(i), at);
  at += TRUSTED_KEY_USAGE_ATTRIBUTE.copy(suffix, at);
  if (at !== suffix.length) throw new Error('certBag: attribute sizes disagree');

  // Sizes of whole elements, innermost first: OCTET STRING cert, [0] of it, the CertBag SEQUENCE.
  const octets = headerLength(certificate.length) + certificate.length;
  const explicitCert = headerLength(octets) + octets;
  const bagValue = X509_CERTIFICATE_OID.length + explicitCert;
  const bagSeq = headerLength(bagValue) + bagValue;
  const safeBag = CERT_BAG_OID.length + headerLength(bagSeq) + bagSeq + suffix.length;
  const prefix = Buffer.allocUnsafe(
    headerLength(safeBag) +
      CERT_BAG_OID.length +
      headerLength(bagSeq) +
      headerLength(bagValue) +
      X509_CERTIFICATE_OID.length +
      headerLength(octets) +
      headerLength(certificate.length),
  );
  at = writeHeader(prefix, 0, 0x30, safeBag);
  at += CERT_BAG_OID.copy(prefix, at);
  at = writeHeader(prefix, at, 0xa0, bagSeq);
  at = writeHeader(prefix, at, 0x30, bagValue);
  at += X509_CERTIFICATE_OID.copy(prefix, at);
  at = writeHeader(prefix, at, 0xa0, octets);
  at = writeHeader(prefix, at, 0x04, certificate.length);
  if (at !== prefix.length) throw new Error('certBag: header sizes disagree');
  return [prefix, certificate, suffix];
}

function checkEntries(entries: TrustStoreEntry[]): void {
  const seen = new Map<string, string>();
  for (const { certificate, friendlyName } of entries) {
    if (!Buffer.isBuffer(certificate) || certificate.length === 0) throw new VerifyError(`certificate "${friendlyName}" is empty`);
    if (friendlyName.length === 0) throw new VerifyError('a certificate has an empty friendlyName');
    // Java keeps one entry per lower-cased alias: a second one would silently replace the first.
    const key = friendlyName.toLowerCase();
    const other = seen.get(key);
    if (other !== undefined) throw new VerifyError(`friendlyName "${friendlyName}" collides with "${other}" (aliases are case-insensitive)`);
    seen.set(key, friendlyName);
  }
}

/**
 * ContentInfo { encryptedData, EncryptedData { 0, EncryptedContentInfo { data, PBES2(…), [0] ciphertext } } }
 * around `plaintext`, with PBES2 = PBKDF2-HMAC-SHA256 → AES-256-CBC. The bulk is chunked (see `node`).
 */
function encryptedContentInfo(chunks: Chunks, password: string): Chunks {
  // One contiguous plaintext: one hash, HMAC and cipher call each instead of ~17,000 small ones (and
  // their small output buffers) for TrustedTpm.cab.
  const plaintext = Buffer.concat(chunks);
  const salt = crypto.createHash('sha256').update('zeta-provision/pkcs12/pbes2-salt\0').update(plaintext).digest().subarray(0, SALT_BYTES);
  const iv = crypto.createHash('sha256').update('zeta-provision/pkcs12/pbes2-iv\0').update(plaintext).digest().subarray(0, 16);
  // PBES2 passes the password's bytes as they are (UTF-8), unlike the PKCS#12 KDF's BMPString.
  const key = crypto.pbkdf2Sync(Buffer.from(password, 'utf8'), salt, PKCS12_ITERATIONS, 32, 'sha256');
  const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  // PBES2-params { keyDerivationFunc PBKDF2 { salt, iterationCount, prf }, encryptionScheme AES-256-CBC { iv } }
  const pbkdf2 = algorithmId(
    OID_PBKDF2,
    encode(TAG.SEQUENCE, encode(TAG.OCTET_STRING, salt), encodeInteger(PKCS12_ITERATIONS), algorithmId(OID_HMAC_SHA256, DER_NULL)),
  );
  const algorithm = algorithmId(OID_PBES2, encode(TAG.SEQUENCE, pbkdf2, algorithmId(OID_AES256_CBC, encode(TAG.OCTET_STRING, iv))));
  const encrypted = node(0x30, INTEGER_0, node(0x30, PKCS7_DATA_OID, algorithm, node(0x80, ciphertext)));
  return node(0x30, PKCS7_ENCRYPTED_DATA_OID, node(0xa0, encrypted));
}

/**
 * Encode `entries` (in the given order) as a password-protected PKCS#12 trust store. Same entries and
 * password → byte-identical output. Throws a VerifyError (the entries come from payload data) on an
 * empty certificate, bytes that are not one DER element, or aliases equal when case is ignored — callers
 * that take names from data (TSL service names) must make them unique first.
 */
export function encodePkcs12TrustStore(entries: TrustStoreEntry[], password: string): Buffer {
  checkEntries(entries);
  // SafeContents ::= SEQUENCE OF SafeBag; AuthenticatedSafe ::= SEQUENCE OF ContentInfo
  const safeContents = node(0x30, entries.flatMap(certBag));
  const authSafe = node(0x30, encryptedContentInfo(safeContents, password));

  // The MAC covers the contents octets of the outer data ContentInfo, i.e. the AuthenticatedSafe DER.
  const saltHash = crypto.createHash('sha256').update('zeta-provision/pkcs12/mac-salt\0');
  for (const c of authSafe) saltHash.update(c);
  const macSalt = saltHash.digest().subarray(0, SALT_BYTES);
  const macKey = pkcs12Kdf(password, macSalt, 3, PKCS12_ITERATIONS, 32);
  const hmac = crypto.createHmac('sha256', macKey);
  for (const c of authSafe) hmac.update(c);
  const mac = hmac.digest();
  // MacData { DigestInfo { sha256, mac }, macSalt, iterations }
  const macData = encode(
    TAG.SEQUENCE,
    encode(TAG.SEQUENCE, algorithmId(OID_SHA256, DER_NULL), encode(TAG.OCTET_STRING, mac)),
    encode(TAG.OCTET_STRING, macSalt),
    encodeInteger(PKCS12_ITERATIONS),
  );
  // PFX ::= SEQUENCE { version 3, ContentInfo { data, [0] OCTET STRING authSafe }, MacData }
  const authSafeInfo = node(0x30, PKCS7_DATA_OID, node(0xa0, node(0x04, authSafe)));
  return Buffer.concat(node(0x30, INTEGER_3, authSafeInfo, macData));
}
