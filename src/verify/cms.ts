/**
 * CMS SignedData verification (RFC 5652), detached and attached, with our own chain validation: the
 * detached file is streamed, SKI signer ids match the certificate's SKI, and the chain rules are ours.
 */
import crypto from 'node:crypto';
import { VerifyError, errorMessage } from '../errors.js';
import { Asn1Error, TAG, content, oid, octetString, readElement } from '../pki/asn1.js';
import { allowsExtendedKeyUsage, bytesEqual, type Certificate, keyUsageBit, namesEqual, nameString, subjectKeyId, subjectString } from '../pki/certs.js';
import { validateChain } from '../pki/chain.js';
import { berStructureError } from '../pki/der.js';
import { createSignatureVerifier, digestAlgorithmName, verifySignature, type SignatureVerifier } from '../pki/engine.js';
import { type Attribute, NotSignedData, type SignedData, type SignerInfo, decodeSignedData } from '../pki/signed-data.js';
import { fileChunks } from '../util/fs.js';
import type { SignerReport } from './types.js';

export interface TrustAnchors {
  anchors: Certificate[];
  intermediates: Certificate[];
}

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const oidOrUndefined = (el: Parameters<typeof oid>[0]): string | undefined => {
  try {
    return oid(el, 'content-type');
  } catch {
    return undefined;
  }
};
const PEM_CMS = /-----BEGIN (CMS|PKCS7|PKCS #7 SIGNED DATA)-----([A-Za-z0-9+/=\s]*)-----END \1-----/;

export const fail = (file: string, reason: string, signer?: string, cause?: unknown): VerifyError =>
  new VerifyError(`${file}: ${reason}${signer ? ` (signer "${signer}")` : ''}`, file, undefined, cause ? { cause } : undefined);

/** DER, or PEM (CMS / PKCS7 / PKCS #7 SIGNED DATA); BER with indefinite lengths is accepted. */
export function decodeCms(bytes: Uint8Array, file: string): SignedData {
  let der = bytes;
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1').trimStart();
  if (head.startsWith('-----BEGIN')) {
    const m = PEM_CMS.exec(Buffer.from(bytes).toString('latin1'));
    if (!m) throw fail(file, 'signature is PEM but has no CMS / PKCS7 block');
    der = Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64');
  }
  const structure = berStructureError(der);
  if (structure) throw fail(file, `signature is not valid BER/DER (${structure})`);
  try {
    // Bytes after the structure would be invisible to us but maybe not to another tool: refuse them.
    const { end } = readElement(der);
    if (end !== der.byteLength) throw fail(file, `signature has ${der.byteLength - end} trailing bytes`);
    return decodeSignedData(der);
  } catch (err) {
    if (err instanceof NotSignedData) throw fail(file, `signature is ${err.message}`);
    if (err instanceof Asn1Error) throw fail(file, `signature is not a valid CMS SignedData (${err.message})`, undefined, err);
    throw err;
  }
}

export interface Signer {
  info: SignerInfo;
  hash: string;
  /** Certificates that match the signer id (normally one; an attacker may add look-alikes). */
  candidates: Certificate[];
  /** For signers without signed attributes: one streaming verifier per candidate (or its error). */
  verifiers: (SignatureVerifier | Error)[];
}

function describeSid(sid: SignerInfo['sid']): string {
  if (sid.kind === 'issuerAndSerial') return `issuer "${nameString(sid.issuer)}", serial ${Buffer.from(sid.serial).toString('hex')}`;
  return `subjectKeyIdentifier ${Buffer.from(sid.keyId).toString('hex')}`;
}

function matchesSid(cert: Certificate, sid: SignerInfo['sid']): boolean {
  try {
    return matchesSidUnsafe(cert, sid);
  } catch {
    return false; // e.g. a duplicated SKI extension: such a certificate identifies nothing
  }
}

function matchesSidUnsafe(cert: Certificate, sid: SignerInfo['sid']): boolean {
  if (sid.kind === 'issuerAndSerial') return namesEqual(cert.issuer, sid.issuer) && bytesEqual(cert.serial, sid.serial);
  // RFC 5652 §5.3: match the certificate's SubjectKeyIdentifier extension. Without one, fall back to
  // the RFC 5280 method 1 value (SHA-1 of the key), which is what the signer's tooling derived.
  const ski = subjectKeyId(cert) ?? crypto.createHash('sha1').update(cert.publicKeyBits).digest();
  return sid.keyId.byteLength > 0 && bytesEqual(sid.keyId, ski);
}

/** Resolve every SignerInfo's digest algorithm and candidate certificates (shared with Authenticode). */
export function prepareSigners(sd: SignedData, trust: TrustAnchors, file: string, withContent: boolean): Signer[] {
  if (sd.signerInfos.length === 0) throw fail(file, 'signature has no signers');
  // The SignedData-level digestAlgorithms list is unsigned and advisory, but OpenSSL sets up a digest
  // for each entry and rejects the signature on an unknown one; refusing it too keeps us from accepting
  // bytes the peer tools reject (found by test/verify/fuzz.test.ts).
  for (const alg of sd.digestAlgorithms) {
    try {
      digestAlgorithmName(alg);
    } catch (err) {
      throw fail(file, `signature lists ${errorMessage(err)}`, undefined, err);
    }
  }
  const pool = [...sd.certificates, ...trust.intermediates];
  return sd.signerInfos.map((info) => {
    let hash: string;
    try {
      hash = digestAlgorithmName(info.digestAlgorithm);
    } catch (err) {
      throw fail(file, errorMessage(err), undefined, err);
    }
    const candidates = pool.filter((c) => matchesSid(c, info.sid));
    if (candidates.length === 0) throw fail(file, `signer certificate not found (${describeSid(info.sid)})`);
    const verifiers =
      withContent && !info.signedAttrs
        ? candidates.map((c) => {
            try {
              return createSignatureVerifier(info.signatureAlgorithm, c.spki, { digestHint: hash, streaming: true });
            } catch (err) {
              return err instanceof Error ? err : new Error(String(err));
            }
          })
        : [];
    return { info, hash, candidates, verifiers };
  });
}

/** One pass over the content: every digest algorithm and every attribute-less verifier at once. */
async function digestContent(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, signers: Signer[]): Promise<Map<string, Buffer>> {
  const hashes = new Map<string, crypto.Hash>();
  for (const s of signers) if (!hashes.has(s.hash)) hashes.set(s.hash, crypto.createHash(s.hash));
  const verifiers = signers.flatMap((s) => s.verifiers.filter((v): v is SignatureVerifier => !(v instanceof Error)));
  for await (const chunk of chunks) {
    for (const h of hashes.values()) h.update(chunk);
    for (const v of verifiers) v.update(chunk);
  }
  return new Map([...hashes].map(([name, h]) => [name, h.digest()]));
}

/** The single value of a signed attribute that must occur exactly once (RFC 5652 §5.3, §11). */
export function singleAttribute(attrs: Attribute[], id: string, what: string) {
  const found = attrs.filter((a) => a.type === id);
  // Two messageDigest attributes would let different verifiers check different values.
  if (found.length !== 1) throw new Error(found.length === 0 ? `signed attributes lack ${what}` : `signed attributes contain ${what} more than once`);
  const values = found[0]!.values;
  if (values.length !== 1) throw new Error(`signed attribute ${what} must have exactly one value`);
  return values[0]!;
}

export interface SignerCheckOptions {
  /** extendedKeyUsage purposes the signer certificate must allow (each one, when it has an EKU extension). */
  requiredEkus?: { oid: string; name: string }[];
}

/**
 * Check each signer against the content digests (by node hash name): message-digest and content-type
 * attributes, the signature, keyUsage/EKU and the chain at `at`. Shared with Authenticode, whose
 * "content" is the SpcIndirectDataContent and whose timestamp token is CMS too.
 */
export async function verifySigners(
  sd: SignedData,
  signers: Signer[],
  digests: Map<string, Buffer>,
  trust: TrustAnchors,
  file: string,
  at: Date,
  options: SignerCheckOptions = {},
): Promise<SignerReport[]> {
  const reports: SignerReport[] = [];
  const cmsCerts = sd.certificates;
  for (const signer of signers) {
    const { info } = signer;
    const name = subjectString(signer.candidates[0]!);
    const signature = info.signature;
    let verified: Certificate[];
    if (info.signedAttrs) {
      const attrs = info.signedAttrs.attributes;
      let digest: Uint8Array;
      try {
        const ct = singleAttribute(attrs, OID_CONTENT_TYPE, 'content-type');
        // The content type is signed so a signature over one kind of content cannot be replayed as
        // another; it must name what the SignedData says it carries.
        if (ct.tag !== TAG.OID || oidOrUndefined(ct) !== sd.eContentType) {
          throw new Error('signed content-type attribute does not match the encapsulated content type');
        }
        const md = singleAttribute(attrs, OID_MESSAGE_DIGEST, 'message-digest');
        if (md.tag !== TAG.OCTET_STRING) throw fail(file, 'message-digest attribute is not an OCTET STRING', name);
        digest = content(md);
      } catch (err) {
        if (err instanceof VerifyError) throw err;
        throw fail(file, errorMessage(err), name, err);
      }
      if (!bytesEqual(digest, digests.get(signer.hash)!)) {
        throw fail(file, 'content digest does not match the signature', name);
      }
      // The signature covers the DER SET OF attributes (RFC 5652 §5.4): the original bytes with the
      // [0] tag replaced by SET, so nothing is re-encoded.
      const { signedBytes } = info.signedAttrs;
      const errors: string[] = [];
      verified = signer.candidates.filter((c) => {
        try {
          return verifySignature(signedBytes, signature, c.spki, info.signatureAlgorithm, signer.hash);
        } catch (err) {
          errors.push(errorMessage(err));
          return false;
        }
      });
      if (verified.length === 0) throw fail(file, errors[0] ?? 'signature does not verify', name);
    } else {
      // Without signed attributes the signature is directly over the content (streamed above), and
      // RFC 5652 §5.3 then requires the content to be id-data: nothing else would name its type.
      if (sd.eContentType !== OID_DATA) throw fail(file, `signature without signed attributes over ${sd.eContentType}, not id-data`, name);
      const errs = signer.verifiers.filter((v): v is Error => v instanceof Error);
      verified = signer.candidates.filter((_, i) => {
        const v = signer.verifiers[i];
        return v !== undefined && !(v instanceof Error) && v.verify(signature);
      });
      if (verified.length === 0) {
        throw fail(file, errs[0] ? errs[0].message : 'signature over the content does not verify (content altered or wrong key)', name);
      }
    }

    let lastError: unknown;
    let report: SignerReport | undefined;
    for (const cert of verified) {
      try {
        // A certificate whose keyUsage forbids signatures must not sign content (openssl with
        // -purpose any does not check this; we do, deliberately).
        if (keyUsageBit(cert, 0) === false && keyUsageBit(cert, 1) === false) {
          throw new VerifyError('signer certificate keyUsage allows neither digitalSignature nor nonRepudiation');
        }
        // A certificate issued for another purpose (e.g. TLS) under the same CA must not sign code or
        // timestamps: the EKU is what the CA vouched for.
        const missing = (options.requiredEkus ?? []).find((e) => !allowsExtendedKeyUsage(cert, e.oid));
        if (missing) throw new VerifyError(`signer certificate extendedKeyUsage lacks ${missing.name}`);
        const chain = validateChain({ leaf: cert, intermediates: [...cmsCerts, ...trust.intermediates], anchors: trust.anchors, at });
        report = { subject: subjectString(cert), anchor: subjectString(chain.anchor), earliestExpiry: chain.earliestExpiry.toISOString() };
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!report) throw fail(file, errorMessage(lastError), name, lastError);
    reports.push(report);
  }
  return reports;
}

/** Verify a detached signature over the file at `contentPath`; the file is streamed, never read whole. */
export async function verifyCmsDetached(
  contentPath: string,
  signature: Uint8Array,
  trust: TrustAnchors,
  file: string,
  at: Date = new Date(),
  options: SignerCheckOptions = {},
): Promise<SignerReport[]> {
  const sd = decodeCms(signature, file);
  // A "detached" signature that carries its own content verifies that content, not our file: refuse.
  if (sd.eContent) throw fail(file, 'detached signature also encapsulates content');
  const signers = prepareSigners(sd, trust, file, true);
  let digests: Map<string, Buffer>;
  try {
    digests = await digestContent(fileChunks(contentPath), signers);
  } catch (err) {
    throw fail(file, `cannot read content (${errorMessage(err)})`, undefined, err);
  }
  return verifySigners(sd, signers, digests, trust, file, at, options);
}

/** Verify an attached signature and return the content it carries. */
export async function verifyCmsAttached(
  signature: Uint8Array,
  trust: TrustAnchors,
  file: string,
  at: Date = new Date(),
  options: SignerCheckOptions = {},
): Promise<{ signers: SignerReport[]; content: Uint8Array }> {
  const sd = decodeCms(signature, file);
  if (!sd.eContent) throw fail(file, 'attached signature carries no content');
  let content: Uint8Array;
  try {
    // A BER constructed OCTET STRING (openssl -stream output) is joined from its segments.
    content = octetString(sd.eContent, 'encapsulated content', true);
  } catch {
    throw fail(file, 'encapsulated content is not an OCTET STRING');
  }
  const signers = prepareSigners(sd, trust, file, true);
  const digests = await digestContent([content], signers);
  return { signers: await verifySigners(sd, signers, digests, trust, file, at, options), content };
}
