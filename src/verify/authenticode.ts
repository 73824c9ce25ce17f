/**
 * Authenticode signatures on Microsoft cabinets (TrustedTpm.cab): the PKCS#7 appended after the
 * cabinet, its SpcIndirectDataContent digest over the cabinet bytes, the signer, and the RFC 3161
 * timestamp that lets a signature outlive its (short-lived) signing certificate.
 *
 * The CMS mechanics (signed attributes, signature, keyUsage, chain) are the ones of ./cms.ts; what is
 * specific here is where the signed bytes are and what "content" means.
 */
import crypto from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { authenticodeRanges, digestRanges, readSignedCab } from '../cab/index.js';
import { VerifyError, errorMessage } from '../errors.js';
import { Asn1Error, TAG, type Element, content, expect, integerBytes, oid, octetString, raw, readWhole, sequence, smallInteger, time } from '../pki/asn1.js';
import { OID_EKU_CODE_SIGNING, OID_EKU_TIME_STAMPING, bytesEqual } from '../pki/certs.js';
import { berStructureError, derFrame } from '../pki/der.js';
import { digestAlgorithmName } from '../pki/engine.js';
import type { SignedData, SignerInfo } from '../pki/signed-data.js';
import { type AlgorithmIdentifier, algorithmIdentifier } from '../pki/x509.js';
import { decodeCms, fail, prepareSigners, verifySigners, type Signer, type SignerCheckOptions, type TrustAnchors } from './cms.js';
import type { SignerReport } from './types.js';

export const OID_SPC_INDIRECT_DATA = '1.3.6.1.4.1.311.2.1.4';
/** Microsoft's unsigned attribute that carries an RFC 3161 timestamp token. */
export const OID_MS_RFC3161_TIMESTAMP = '1.3.6.1.4.1.311.3.3.1';
const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';

/** Authenticode pads the PKCS#7 to a multiple of 8 bytes. */
const MAX_PADDING = 7;
/** A timestamp a little ahead of our clock is clock skew; more is a token from the future. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface AuthenticodeResult {
  signers: SignerReport[];
  /** genTime of the verified RFC 3161 timestamp (ISO 8601), when the signature carries one. */
  timestamp?: string;
  /** The time stamping authority that vouched for `timestamp`. */
  timestampSigner?: SignerReport;
}

interface IndirectData {
  /** Contents octets of the SpcIndirectDataContent SEQUENCE: what the signer's messageDigest covers. */
  contentOctets: Uint8Array;
  /** node:crypto name of the DigestInfo algorithm (the cabinet digest). */
  hash: string;
  digest: Uint8Array;
}

/**
 * Collisions in SHA-1 are practical (chosen prefix): a SHA-1 Authenticode digest lets whoever made one
 * cabinet make another with the same signature. MD5 is not even known to hashNameForOid.
 */
function strongHash(alg: AlgorithmIdentifier, what: string, file: string): string {
  let name: string;
  try {
    name = digestAlgorithmName(alg);
  } catch (err) {
    throw fail(file, `${what}: ${errorMessage(err)}`, undefined, err);
  }
  if (name === 'sha1') throw fail(file, `${what} is SHA-1, which is refused (collisions are practical)`);
  return name;
}

/** The DER PKCS#7 inside the signature area; only zero padding may follow it. */
function pkcs7Bytes(area: Buffer, file: string): Buffer {
  const frame = derFrame(area);
  if (!frame || area[0] !== 0x30) throw fail(file, 'the signature area does not hold a DER PKCS#7 structure');
  const padding = area.subarray(frame.total);
  // Anything else after the PKCS#7 would be unsigned data hiding in the signature area.
  if (padding.byteLength > MAX_PADDING || padding.some((b) => b !== 0)) {
    throw fail(file, `the signature area has ${padding.byteLength} bytes after the PKCS#7 that are not padding`);
  }
  return area.subarray(0, frame.total);
}

function parseIndirectData(sd: SignedData, file: string): IndirectData {
  const type = sd.eContentType;
  if (type !== OID_SPC_INDIRECT_DATA) throw fail(file, `signature content is ${type}, not Authenticode SpcIndirectDataContent`);
  const spc = sd.eContent;
  // PKCS#7 v1.5 style: the SEQUENCE itself is the content (no OCTET STRING around it).
  if (spc?.tag !== TAG.SEQUENCE) throw fail(file, 'SpcIndirectDataContent is not a SEQUENCE');
  // The signer's digest is over the exact contents octets: a BER indefinite length has no single
  // "contents" and is not what Authenticode signs.
  if (spc.indefinite) throw fail(file, 'SpcIndirectDataContent is not DER encoded');
  let parts: Element[];
  try {
    parts = sequence(spc, 'SpcIndirectDataContent');
  } catch (err) {
    throw fail(file, `SpcIndirectDataContent is malformed (${errorMessage(err)})`, undefined, err);
  }
  if (parts.length !== 2 || parts[0]!.tag !== TAG.SEQUENCE) throw fail(file, 'SpcIndirectDataContent is malformed');
  // The type of parts[0] (SpcAttributeTypeAndOptionalValue) is not checked: Microsoft writes
  // 1.3.6.1.4.1.311.2.1.28 for cabinets, osslsigncode 1.3.6.1.4.1.311.2.1.25; both verify in Windows.
  let digestInfo: { digestAlgorithm: AlgorithmIdentifier; digest: Uint8Array };
  try {
    const [alg, digest, extra] = sequence(parts[1], 'DigestInfo');
    if (extra) throw new Asn1Error('DigestInfo has extra fields');
    digestInfo = { digestAlgorithm: algorithmIdentifier(alg, 'DigestInfo algorithm'), digest: content(expect(digest, TAG.OCTET_STRING, 'DigestInfo digest')) };
  } catch (err) {
    throw fail(file, `SpcIndirectDataContent has no valid DigestInfo (${errorMessage(err)})`, undefined, err);
  }
  const hash = strongHash(digestInfo.digestAlgorithm, 'cabinet digest algorithm', file);
  return { contentOctets: spc.bytes.subarray(spc.contentStart, spc.contentEnd), hash, digest: digestInfo.digest };
}

interface TstInfo {
  imprintAlgorithm: AlgorithmIdentifier;
  imprint: Uint8Array;
  genTime: Date;
}

/** TSTInfo (RFC 3161 §2.4.2): the fields we check; the rest must be well-formed enough to skip. */
function parseTstInfo(der: Uint8Array): TstInfo {
  // Inside an OCTET STRING, so decodeCms's structure check never saw these bytes.
  const structure = berStructureError(der);
  if (structure) throw new Asn1Error(structure);
  const f = sequence(readWhole(der), 'TSTInfo');
  if (smallInteger(f[0], 'TSTInfo version') !== 1) throw new Asn1Error('TSTInfo version is not 1');
  oid(f[1], 'TSTInfo policy');
  const [alg, hashed, extra] = sequence(f[2], 'messageImprint');
  if (extra) throw new Asn1Error('messageImprint has extra fields');
  integerBytes(f[3], 'TSTInfo serialNumber');
  if (f[4]?.tag !== TAG.GENERALIZED_TIME) throw new Asn1Error('TSTInfo genTime is not a GeneralizedTime');
  // Then only the optional fields of RFC 3161 §2.4.2, each at most once, in order: accuracy,
  // ordering, nonce, [0] tsa, [1] extensions.
  const optional = [TAG.SEQUENCE, TAG.BOOLEAN, TAG.INTEGER, 0xa0, 0xa1];
  let next = 0;
  for (const field of f.slice(5)) {
    const at = optional.indexOf(field.tag, next);
    if (at < 0) throw new Asn1Error(`TSTInfo has an unexpected field with tag 0x${field.tag.toString(16)}`);
    next = at + 1;
  }
  return {
    imprintAlgorithm: algorithmIdentifier(alg, 'messageImprint algorithm'),
    imprint: content(expect(hashed, TAG.OCTET_STRING, 'messageImprint hashedMessage')),
    genTime: time(f[4], 'TSTInfo genTime', true),
  };
}

const digestMap = (signers: Signer[], data: Uint8Array): Map<string, Buffer> =>
  new Map(signers.map((s) => [s.hash, crypto.createHash(s.hash).update(data).digest()]));

/** Re-label a VerifyError from the timestamp token so the operator sees which signature failed. */
function asTimestampError(err: unknown, file: string): unknown {
  if (!(err instanceof VerifyError)) return err;
  const rest = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
  return new VerifyError(`${file}: timestamp: ${rest}`, file, undefined, { cause: err });
}

interface VerifiedTimestamp {
  genTime: Date;
  tsa: SignerReport;
}

/**
 * Verify the RFC 3161 token in the signer's unsigned attributes. Returns undefined when there is none.
 * A token that is present but does not verify fails the whole check (fail closed): it was either
 * damaged or altered, and an operator must hear about it rather than get a silent fallback.
 */
async function verifyTimestamp(info: SignerInfo, trust: TrustAnchors, file: string, now: Date): Promise<VerifiedTimestamp | undefined> {
  const attrs = info.unsignedAttrs.filter((a) => a.type === OID_MS_RFC3161_TIMESTAMP);
  if (attrs.length === 0) return undefined;
  // Two tokens (or two values) could carry two times; which one would count is not defined.
  if (attrs.length > 1 || attrs[0]!.values.length !== 1) throw fail(file, 'timestamp: more than one RFC 3161 timestamp token');
  const tsd = decodeCms(raw(attrs[0]!.values[0]!), file);
  if (tsd.eContentType !== OID_TST_INFO) throw fail(file, `timestamp: token content is ${tsd.eContentType}, not TSTInfo`);
  let tstBytes: Uint8Array;
  try {
    tstBytes = octetString(tsd.eContent, 'TSTInfo', true);
  } catch {
    throw fail(file, 'timestamp: token carries no TSTInfo');
  }
  let tst: TstInfo;
  try {
    tst = parseTstInfo(tstBytes);
  } catch (err) {
    throw fail(file, `timestamp: TSTInfo is malformed (${errorMessage(err)})`, undefined, err);
  }
  // The imprint binds the token to this signature: without the check any token from any file (a
  // Microsoft one included) could be transplanted to backdate an expired or revoked signer.
  let imprintHash: string;
  try {
    imprintHash = digestAlgorithmName(tst.imprintAlgorithm);
  } catch (err) {
    throw fail(file, `timestamp: ${errorMessage(err)}`, undefined, err);
  }
  const expected = crypto.createHash(imprintHash).update(info.signature).digest();
  if (!bytesEqual(tst.imprint, expected)) {
    throw fail(file, 'timestamp: message imprint does not match the signature it claims to timestamp');
  }
  const genTime = tst.genTime;
  if (genTime.getTime() > now.getTime() + MAX_CLOCK_SKEW_MS) throw fail(file, `timestamp: time ${genTime.toISOString()} is in the future`);
  try {
    const signers = prepareSigners(tsd, trust, file, false);
    // The TSA's certificates are checked at genTime, as Windows does: a token is meant to outlive the
    // TSA certificate that signed it; what makes the time trustworthy is the TSA chain, not our clock.
    const [tsa] = await verifySigners(tsd, signers, digestMap(signers, tstBytes), trust, file, genTime, {
      requiredEkus: [{ oid: OID_EKU_TIME_STAMPING, name: 'timeStamping' }],
    });
    return { genTime, tsa: tsa! };
  } catch (err) {
    throw asTimestampError(err, file);
  }
}

async function verifyOpenCab(
  fh: FileHandle,
  trust: TrustAnchors,
  file: string,
  now: Date,
  extraEkus: SignerCheckOptions['requiredEkus'],
): Promise<AuthenticodeResult> {
  const cab = await readSignedCab(fh, file);
  const sd = decodeCms(pkcs7Bytes(cab.signatureBytes, file), file);
  const spc = parseIndirectData(sd, file);
  // Authenticode allows exactly one SignerInfo; more would be signers nobody specified the meaning of.
  if (sd.signerInfos.length !== 1) throw fail(file, `Authenticode signature has ${sd.signerInfos.length} signers, expected 1`);

  // The cabinet digest: this is what ties the signature to the bytes an extractor will read.
  const hash = crypto.createHash(spc.hash);
  try {
    await digestRanges(fh, authenticodeRanges(cab.signature.offset), (chunk) => hash.update(chunk));
  } catch (err) {
    throw fail(file, `cannot read cabinet (${errorMessage(err)})`, undefined, err);
  }
  if (!bytesEqual(hash.digest(), spc.digest)) throw fail(file, 'cabinet digest does not match the signed digest (the cabinet was altered)');

  const signers = prepareSigners(sd, trust, file, false);
  const signer = signers[0]!;
  strongHash(signer.info.digestAlgorithm, 'signer digest algorithm', file);
  const ts = await verifyTimestamp(signer.info, trust, file, now);
  // With a verified timestamp the signer chain must have been valid when the signature was made;
  // without one it must be valid now, so an expired certificate cannot sign anything new.
  const at = ts?.genTime ?? now;
  // codeSigning always: a certificate the CA issued for another purpose must not sign a cabinet.
  const requiredEkus = [{ oid: OID_EKU_CODE_SIGNING, name: 'codeSigning' }, ...(extraEkus ?? []).filter((e) => e.oid !== OID_EKU_CODE_SIGNING)];
  const reports = await verifySigners(sd, signers, digestMap(signers, spc.contentOctets), trust, file, at, { requiredEkus });
  return { signers: reports, ...(ts ? { timestamp: ts.genTime.toISOString(), timestampSigner: ts.tsa } : {}) };
}

/** Verify the Authenticode signature of the cabinet at `path`; `file` names it in messages. */
export async function verifyAuthenticodeCab(
  path: string,
  trust: TrustAnchors,
  file: string,
  now: Date = new Date(),
  options: SignerCheckOptions = {},
): Promise<AuthenticodeResult> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw fail(file, `cannot read cabinet (${errorMessage(err)})`, undefined, err);
  }
  try {
    return await verifyOpenCab(fh, trust, file, now, options.requiredEkus);
  } finally {
    await fh.close();
  }
}
