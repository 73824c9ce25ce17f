/**
 * X.509 certificates (RFC 5280 §4.1) read with our own ASN.1 reader: every field points into the
 * original bytes, so fingerprints and signatures cover exactly what was received.
 */
import {
  Asn1Error,
  type Element,
  TAG,
  bitString,
  children,
  content,
  context,
  expect,
  integerBytes,
  oid,
  raw,
  readWhole,
  sequence,
  smallInteger,
  stringValue,
  time,
} from './asn1.js';

export interface AlgorithmIdentifier {
  oid: string;
  /** The parameters element, when present (NULL included). */
  params?: Element;
  /** DER of the whole AlgorithmIdentifier. */
  der: Uint8Array;
}

export interface NameAttribute {
  type: string;
  value: Element;
  /** Decoded text for string types; undefined for anything else. */
  text: string | undefined;
}

export interface Name {
  /** DER of the whole Name, as in the certificate. */
  der: Uint8Array;
  /** Attributes in encoding order (multi-valued RDNs flattened). */
  attributes: NameAttribute[];
  /** Comparison key per RDN and attribute (see canonicalValue): names are equal when their keys are. */
  key: string;
}

export interface Extension {
  oid: string;
  critical: boolean;
  /** Contents of extnValue (the DER of the extension's own structure). */
  value: Uint8Array;
}

export interface Certificate {
  der: Uint8Array;
  /** The TBSCertificate bytes: what the issuer signed. */
  tbs: Uint8Array;
  /** 0 for v1, 2 for v3 (the encoded value). */
  version: number;
  /** serialNumber contents as encoded (leading zero octets kept, as some real TPM CAs have them). */
  serial: Uint8Array;
  /** The signature algorithm inside the TBS (must match the outer one). */
  tbsSignatureAlgorithm: AlgorithmIdentifier;
  signatureAlgorithm: AlgorithmIdentifier;
  /** signatureValue bits. */
  signature: Uint8Array;
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  /** DER of SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** The subjectPublicKey BIT STRING's bits (what RFC 5280 method 1 key ids hash). */
  publicKeyBits: Uint8Array;
  extensions: Extension[];
}

export function algorithmIdentifier(el: Element | undefined, what: string): AlgorithmIdentifier {
  const parts = sequence(el, what);
  if (parts.length < 1 || parts.length > 2) throw new Asn1Error(`${what} is malformed`);
  return { oid: oid(parts[0], `${what} algorithm`), params: parts[1], der: raw(el!) };
}

/** ASCII whitespace, as OpenSSL's canonical name form treats it (not NBSP or other Unicode spaces). */
const ASCII_SPACE = /[ \t\n\v\f\r]+/g;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The comparison form of one attribute value, close to OpenSSL's canonical name encoding: string
 * values trimmed, runs of ASCII whitespace collapsed to one space, ASCII letters lower-cased (only
 * those: a Kelvin sign is not a "k"); anything else, an undecodable UTF8String included, by its bytes.
 */
function canonicalValue(value: Element, text: string | undefined): string {
  const hex = (): string => `#${Buffer.from(raw(value)).toString('hex')}`;
  if (text === undefined) return hex();
  if (value.tag === TAG.UTF8_STRING) {
    try {
      strictUtf8.decode(content(value));
    } catch {
      return hex();
    }
  }
  const folded = text
    .replace(ASCII_SPACE, ' ')
    .replace(/^ | $/g, '')
    .replace(/[A-Z]/g, (c) => c.toLowerCase());
  return `'${folded}`;
}

export function parseName(el: Element | undefined, what: string): Name {
  const rdns = sequence(el, what);
  const attributes: NameAttribute[] = [];
  const canonical: string[][][] = [];
  for (const rdn of rdns) {
    const set = sequence(rdn, `${what} RDN`, TAG.SET);
    if (set.length === 0) throw new Asn1Error(`${what} has an empty RDN`);
    const values: string[][] = [];
    for (const atv of set) {
      const [type, value, extra] = sequence(atv, `${what} attribute`);
      if (!value || extra) throw new Asn1Error(`${what} attribute is malformed`);
      const attribute = { type: oid(type, `${what} attribute type`), value, text: stringValue(value) };
      attributes.push(attribute);
      values.push([attribute.type, canonicalValue(value, attribute.text)]);
    }
    canonical.push(values);
  }
  // RDN boundaries are part of the key: {CN=a + O=b} is not CN=a, O=b.
  return { der: raw(el!), attributes, key: JSON.stringify(canonical) };
}

/** Parse one certificate; the bytes must be exactly one certificate. Throws Asn1Error. */
export function decodeCertificate(der: Uint8Array): Certificate {
  return certificateFromElement(readWhole(der));
}

export function certificateFromElement(el: Element): Certificate {
  const [tbsEl, sigAlgEl, sigEl, extra] = sequence(el, 'certificate');
  if (extra) throw new Asn1Error('certificate has extra fields');
  const tbs = sequence(tbsEl, 'tbsCertificate');
  let i = 0;
  let version = 0;
  if (tbs[0]?.tag === context(0)) {
    const [v, more] = children(tbs[0]);
    if (more) throw new Asn1Error('version is malformed');
    version = smallInteger(v, 'version');
    if (version > 2) throw new Asn1Error(`unknown certificate version ${version + 1}`);
    i++;
  }
  const serial = integerBytes(tbs[i++], 'serialNumber');
  const tbsSignatureAlgorithm = algorithmIdentifier(tbs[i++], 'signature algorithm');
  const issuer = parseName(tbs[i++], 'issuer');
  const [nb, na, moreValidity] = sequence(tbs[i++], 'validity');
  if (moreValidity) throw new Asn1Error('validity is malformed');
  const notBefore = time(nb, 'notBefore');
  const notAfter = time(na, 'notAfter');
  const subject = parseName(tbs[i++], 'subject');
  const spkiEl = tbs[i++];
  const [keyAlg, keyBits, moreSpki] = sequence(spkiEl, 'subjectPublicKeyInfo');
  if (moreSpki) throw new Asn1Error('subjectPublicKeyInfo is malformed');
  algorithmIdentifier(keyAlg, 'public key algorithm');
  const publicKeyBits = bitString(keyBits, 'subjectPublicKey').bits;
  // Unique identifiers (v2, practically unused) are skipped but must be well-formed BIT STRINGs.
  for (const n of [1, 2]) {
    if (tbs[i]?.tag === context(n, false) || tbs[i]?.tag === context(n)) {
      if (version < 1) throw new Asn1Error('unique identifier in a v1 certificate');
      i++;
    }
  }
  const extensions: Extension[] = [];
  if (tbs[i]?.tag === context(3)) {
    if (version !== 2) throw new Asn1Error('extensions in a certificate that is not v3');
    const [list, more] = children(tbs[i]!);
    if (more) throw new Asn1Error('extensions are malformed');
    const items = sequence(list, 'extensions');
    if (items.length === 0) throw new Asn1Error('extensions are empty');
    for (const ext of items) extensions.push(parseExtension(ext));
    i++;
  }
  if (i !== tbs.length) throw new Asn1Error('tbsCertificate has unexpected fields');
  const signatureAlgorithm = algorithmIdentifier(sigAlgEl, 'signatureAlgorithm');
  const sig = bitString(sigEl, 'signatureValue');
  if (sig.unused !== 0) throw new Asn1Error('signatureValue has unused bits');
  return {
    der: raw(el),
    tbs: raw(tbsEl!),
    version,
    serial,
    tbsSignatureAlgorithm,
    signatureAlgorithm,
    signature: sig.bits,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: raw(spkiEl!),
    publicKeyBits,
    extensions,
  };
}

function parseExtension(el: Element): Extension {
  const parts = sequence(el, 'extension');
  const id = oid(parts[0], 'extension id');
  let critical = false;
  let k = 1;
  if (parts[k]?.tag === TAG.BOOLEAN) {
    const c = content(parts[k]!);
    if (c.byteLength !== 1) throw new Asn1Error(`extension ${id} has a malformed critical flag`);
    critical = c[0] !== 0;
    k++;
  }
  const value = content(expect(parts[k], TAG.OCTET_STRING, `extension ${id} value`));
  if (k + 1 !== parts.length) throw new Asn1Error(`extension ${id} is malformed`);
  return { oid: id, critical, value };
}
