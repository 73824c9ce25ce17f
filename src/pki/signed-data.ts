/**
 * CMS SignedData (RFC 5652 §5) read into a plain model over the original bytes. Parsing only: what the
 * fields mean is checked in src/verify/cms.ts.
 */
import { Asn1Error, type Element, TAG, children, content, context, expect, integerBytes, oid, raw, readWhole, sequence, smallInteger } from './asn1.js';
import { derStrictError } from './der.js';
import { type AlgorithmIdentifier, type Certificate, type Name, algorithmIdentifier, certificateFromElement, parseName } from './x509.js';

export const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';

export interface Attribute {
  type: string;
  values: Element[];
}

export type SignerId = { kind: 'issuerAndSerial'; issuer: Name; serial: Uint8Array } | { kind: 'subjectKeyId'; keyId: Uint8Array };

export interface SignerInfo {
  sid: SignerId;
  digestAlgorithm: AlgorithmIdentifier;
  /** Signed attributes and the bytes the signature covers: their encoding with the [0] tag as SET (§5.4). */
  signedAttrs?: { attributes: Attribute[]; signedBytes: Uint8Array };
  signatureAlgorithm: AlgorithmIdentifier;
  signature: Uint8Array;
  unsignedAttrs: Attribute[];
}

export interface SignedData {
  digestAlgorithms: AlgorithmIdentifier[];
  eContentType: string;
  /** The element inside eContent's [0] EXPLICIT (an OCTET STRING in CMS, any type in PKCS#7 v1.5). */
  eContent?: Element;
  certificates: Certificate[];
  signerInfos: SignerInfo[];
}

/** A ContentInfo holding SignedData. Throws Asn1Error (structure) or Error (another content type). */
export function decodeSignedData(der: Uint8Array): SignedData {
  const [typeEl, contentEl, extra] = sequence(readWhole(der), 'ContentInfo');
  const type = oid(typeEl, 'ContentInfo contentType');
  if (type !== OID_SIGNED_DATA) throw new NotSignedData(type);
  if (extra) throw new Asn1Error('ContentInfo has extra fields');
  const [sdEl, more] = children(expect(contentEl, context(0), 'ContentInfo content'));
  if (more) throw new Asn1Error('ContentInfo content is malformed');
  const fields = sequence(sdEl, 'SignedData');
  let i = 0;
  smallInteger(fields[i++], 'SignedData version');
  const digestAlgorithms = sequence(fields[i++], 'digestAlgorithms', TAG.SET).map((a) => algorithmIdentifier(a, 'digest algorithm'));
  const [ctEl, eContentWrap, moreEncap] = sequence(fields[i++], 'encapContentInfo');
  if (moreEncap) throw new Asn1Error('encapContentInfo has extra fields');
  const eContentType = oid(ctEl, 'eContentType');
  let eContent: Element | undefined;
  if (eContentWrap) {
    const [inner, moreContent] = children(expect(eContentWrap, context(0), 'eContent'));
    if (!inner || moreContent) throw new Asn1Error('eContent is malformed');
    eContent = inner;
  }
  const certificates: Certificate[] = [];
  if (fields[i]?.tag === context(0)) {
    // Other certificate formats ([0]–[3]: attribute certificates and the like) are not X.509 certificates.
    for (const c of children(fields[i++]!)) if (c.tag === TAG.SEQUENCE) certificates.push(certificateFromElement(c));
  }
  if (fields[i]?.tag === context(1)) {
    children(fields[i++]!); // CRLs: not used for revocation here, but they must be well-formed
  }
  const signerInfos = sequence(fields[i++], 'signerInfos', TAG.SET).map(signerInfo);
  if (i !== fields.length) throw new Asn1Error('SignedData has unexpected fields');
  return { digestAlgorithms, eContentType, eContent, certificates, signerInfos };
}

export class NotSignedData extends Error {
  constructor(readonly contentType: string) {
    super(`CMS ${contentType}, not SignedData`);
  }
}

function attributes(el: Element, what: string): Attribute[] {
  return children(el).map((a) => {
    const [typeEl, valuesEl, extra] = sequence(a, `${what} attribute`);
    if (extra) throw new Asn1Error(`${what} attribute has extra fields`);
    return { type: oid(typeEl, `${what} attribute type`), values: sequence(valuesEl, `${what} attribute values`, TAG.SET) };
  });
}

function signerInfo(el: Element): SignerInfo {
  const f = sequence(el, 'SignerInfo');
  let i = 0;
  smallInteger(f[i++], 'SignerInfo version');
  const sidEl = f[i++];
  let sid: SignerId;
  if (sidEl?.tag === TAG.SEQUENCE) {
    const [issuer, serial, extra] = children(sidEl);
    if (extra) throw new Asn1Error('IssuerAndSerialNumber has extra fields');
    sid = { kind: 'issuerAndSerial', issuer: parseName(issuer, 'signer issuer'), serial: integerBytes(serial, 'signer serial') };
  } else if (sidEl?.tag === context(0, false)) {
    sid = { kind: 'subjectKeyId', keyId: content(sidEl) };
  } else if (sidEl?.tag === context(0)) {
    // Seen from some encoders: the key id as an explicit OCTET STRING inside [0].
    const [inner, extra] = children(sidEl);
    if (extra) throw new Asn1Error('signer subjectKeyIdentifier is malformed');
    sid = { kind: 'subjectKeyId', keyId: content(expect(inner, TAG.OCTET_STRING, 'signer subjectKeyIdentifier')) };
  } else throw new Asn1Error('SignerInfo has no valid signer identifier');
  const digestAlgorithm = algorithmIdentifier(f[i++], 'SignerInfo digestAlgorithm');
  let signedAttrs: SignerInfo['signedAttrs'];
  if (f[i]?.tag === context(0)) {
    const a = f[i++]!;
    // What was signed is the DER SET OF: the same bytes with the IMPLICIT [0] tag replaced by SET.
    const signedBytes = Buffer.from(raw(a));
    signedBytes[0] = TAG.SET;
    // OpenSSL verifies over its DER re-encoding of the attributes; so that both see the same bytes,
    // only attributes that already are DER (definite minimal lengths, sorted SET OF) are accepted.
    const notDer = derStrictError(signedBytes);
    if (notDer) throw new Asn1Error(`signed attributes are not DER (${notDer})`);
    signedAttrs = { attributes: attributes(a, 'signed'), signedBytes };
  }
  const signatureAlgorithm = algorithmIdentifier(f[i++], 'SignerInfo signatureAlgorithm');
  const signature = content(expect(f[i++], TAG.OCTET_STRING, 'SignerInfo signature'));
  let unsignedAttrs: Attribute[] = [];
  if (f[i]?.tag === context(1)) unsignedAttrs = attributes(f[i++]!, 'unsigned');
  if (i !== f.length) throw new Asn1Error('SignerInfo has unexpected fields');
  return { sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature, unsignedAttrs };
}
