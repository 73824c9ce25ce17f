/**
 * XMLDSig core validation of one ds:Signature in a parsed document: every Reference's digest, then the
 * SignatureValue over the canonical SignedInfo with the key of the signer certificate in KeyInfo.
 * Failures come back as typed reasons in words (the caller decides how to report them); trust in the
 * signer certificate is the caller's business (it gets the signer and every KeyInfo certificate back).
 *
 * Supported, because ETSI TSLs (and XAdES on them) use exactly this: same-document references (URI=""
 * for the whole document, URI="#id" for an element such as XAdES SignedProperties), the
 * enveloped-signature transform, Canonical XML 1.0 and Exclusive c14n 1.0 (with or without comments),
 * SHA-2 digests, ECDSA (r‖s, brainpool included) and RSA PKCS#1 v1.5 with SHA-2. Anything else is
 * refused as unsupported rather than skipped — a check we cannot do is a failed check. SHA-1 is
 * refused for digests and signatures (collisions are practical).
 * Verdicts are cross-checked with xmlsec1 (libxmlsec1) on the real TSLs and tampered copies
 * (test/process/xmldsig-differential.test.ts).
 */
import crypto from 'node:crypto';
import { C14nError, canonicalize, type C14nOptions } from './c14n.js';
import { NS_DSIG } from './xml.js';
import type { XmlDocument, XmlElement } from './xml-parser.js';

export type XmlDsigFailure =
  | 'structure'
  | 'unsupported-algorithm'
  | 'reference-not-found'
  | 'reference-digest'
  | 'no-signer-certificate'
  | 'bad-signer-certificate'
  | 'signature-value';

export interface XmlDsigReference {
  uri: string;
  id?: string;
  digestAlgorithm: string;
}

export type XmlDsigResult =
  | { ok: true; signerCertificate: Buffer; keyInfoCertificates: Buffer[]; signatureMethod: string; references: XmlDsigReference[] }
  | { ok: false; failure: XmlDsigFailure; reason: string; signerCertificate?: Buffer; keyInfoCertificates: Buffer[] };

const C14N: Record<string, Omit<C14nOptions, 'exclude' | 'inclusivePrefixes'>> = {
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315': { exclusive: false, comments: false },
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments': { exclusive: false, comments: true },
  'http://www.w3.org/2001/10/xml-exc-c14n#': { exclusive: true, comments: false },
  'http://www.w3.org/2001/10/xml-exc-c14n#WithComments': { exclusive: true, comments: true },
};
export const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const DIGESTS: Record<string, string> = {
  'http://www.w3.org/2001/04/xmldsig-more#sha224': 'sha224',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};
/** The signature methods we verify (ECDSA or RSA with SHA-256 or stronger); the TSL policy accepts exactly these. */
export const SIGNATURES: Record<string, { hash: string; ecdsa: boolean }> = {
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': { hash: 'sha256', ecdsa: true },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384': { hash: 'sha384', ecdsa: true },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': { hash: 'sha512', ecdsa: true },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': { hash: 'sha256', ecdsa: false },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': { hash: 'sha384', ecdsa: false },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': { hash: 'sha512', ecdsa: false },
};
const NS_EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

class Refused extends Error {
  constructor(
    readonly failure: XmlDsigFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Validates `signature` (a ds:Signature element of `doc`). Never throws for a bad document. */
export function verifyXmlSignature(doc: XmlDocument, signature: XmlElement): XmlDsigResult {
  let keyInfoCertificates: Buffer[] = [];
  let signerCertificate: Buffer | undefined;
  try {
    keyInfoCertificates = keyInfoCerts(signature);
    signerCertificate = keyInfoCertificates[0];
    const kids = elementChildren(signature);
    const signedInfo = expect(kids[0], 'SignedInfo', 'ds:Signature does not start with ds:SignedInfo');
    const valueEl = expect(kids[1], 'SignatureValue', 'ds:SignedInfo is not followed by ds:SignatureValue');
    const [c14nEl, methodEl, ...refEls] = elementChildren(signedInfo);
    const c14n = c14nOptions(expect(c14nEl, 'CanonicalizationMethod', 'ds:SignedInfo lacks ds:CanonicalizationMethod'), 'CanonicalizationMethod');
    const method = expect(methodEl, 'SignatureMethod', 'ds:SignedInfo lacks ds:SignatureMethod').getAttribute('Algorithm') ?? '';
    const sig = SIGNATURES[method];
    if (!sig) throw new Refused('unsupported-algorithm', `signature method ${JSON.stringify(method)} is not supported (ECDSA or RSA with SHA-256 or stronger)`);
    if (refEls.length === 0) throw new Refused('structure', 'ds:SignedInfo has no ds:Reference');
    if (!signerCertificate) throw new Refused('no-signer-certificate', 'KeyInfo carries no X509Certificate');
    let key: crypto.KeyObject;
    try {
      key = new crypto.X509Certificate(signerCertificate).publicKey;
    } catch (err) {
      throw new Refused('bad-signer-certificate', `the signer certificate in KeyInfo cannot be read (${(err as Error).message})`);
    }

    // References first, as xmlsec1 does: a changed document is reported as such, naming the reference.
    const references = refEls.map((r, i) => checkReference(doc, signature, r, i + 1));
    // Then the signature over the canonical SignedInfo, with the key of the signer certificate.
    const value = base64(valueEl.textContent ?? '', 'SignatureValue');
    const verify = crypto.createVerify(sig.hash);
    canonicalize(signedInfo, c14n, (s) => verify.update(s, 'utf8'));
    let good = false;
    try {
      good = verify.verify(sig.ecdsa ? { key, dsaEncoding: 'ieee-p1363' } : key, value);
    } catch {
      good = false;
    }
    if (!good) throw new Refused('signature-value', "signature value does not verify with the signer's key");

    return { ok: true, signerCertificate, keyInfoCertificates, signatureMethod: method, references };
  } catch (err) {
    if (err instanceof C14nError) return { ok: false, failure: 'structure', reason: err.message, signerCertificate, keyInfoCertificates };
    if (!(err instanceof Refused)) throw err;
    return { ok: false, failure: err.failure, reason: err.message, signerCertificate, keyInfoCertificates };
  }
}

function checkReference(doc: XmlDocument, signature: XmlElement, ref: XmlElement, n: number): XmlDsigReference {
  if (ref.localName !== 'Reference' || ref.namespaceURI !== NS_DSIG)
    throw new Refused('structure', `ds:SignedInfo has a ${ref.qname} where a ds:Reference belongs`);
  const uri = ref.getAttribute('URI');
  const id = ref.getAttribute('Id') ?? undefined;
  const label = `reference ${n} (URI=${JSON.stringify(uri ?? '')}${id ? `, Id ${JSON.stringify(id)}` : ''})`;
  if (uri === null) throw new Refused('structure', `${label} has no URI`);
  let apex: XmlDocument | XmlElement;
  if (uri === '') apex = doc;
  else if (/^#[^\s#()]+$/.test(uri)) apex = byId(doc, uri.slice(1), label);
  else throw new Refused('unsupported-algorithm', `${label}: only same-document references ("" or "#id") are supported`);

  const kids = elementChildren(ref);
  let k = 0;
  let c14n: C14nOptions | undefined;
  let exclude: XmlElement | undefined;
  if (kids[k]?.localName === 'Transforms' && kids[k]!.namespaceURI === NS_DSIG) {
    for (const t of elementChildren(kids[k]!)) {
      if (t.localName !== 'Transform' || t.namespaceURI !== NS_DSIG) throw new Refused('structure', `${label}: ${t.qname} inside ds:Transforms`);
      if (c14n) throw new Refused('unsupported-algorithm', `${label}: a transform after canonicalisation is not supported`);
      const alg = t.getAttribute('Algorithm') ?? '';
      if (alg === ENVELOPED) exclude = signature;
      else c14n = c14nOptions(t, `${label} transform`);
    }
    k++;
  }
  const digestEl = expect(kids[k], 'DigestMethod', `${label} lacks ds:DigestMethod`);
  const valueEl = expect(kids[k + 1], 'DigestValue', `${label} lacks ds:DigestValue`);
  const digestAlgorithm = digestEl.getAttribute('Algorithm') ?? '';
  const hashName = DIGESTS[digestAlgorithm];
  if (!hashName)
    throw new Refused('unsupported-algorithm', `${label}: digest method ${JSON.stringify(digestAlgorithm)} is not supported (SHA-224 or stronger)`);
  const expected = base64(valueEl.textContent ?? '', `${label} DigestValue`);
  // A same-document reference selects its nodes without comments (XMLDSig §4.4.3.3), whatever the
  // c14n variant; with no c14n transform the node-set is serialised with inclusive c14n.
  const options: C14nOptions = { ...(c14n ?? { exclusive: false }), comments: false, exclude };
  const hash = crypto.createHash(hashName);
  canonicalize(apex, options, (s) => hash.update(s, 'utf8'));
  const actual = hash.digest();
  if (!actual.equals(expected)) {
    const what = uri === '' ? 'the signed document' : `the signed element ${uri}`;
    throw new Refused('reference-digest', `digest of ${what} differs (${label}): the content was changed after signing`);
  }
  return { uri, ...(id ? { id } : {}), digestAlgorithm };
}

function c14nOptions(el: XmlElement, what: string): C14nOptions {
  const alg = el.getAttribute('Algorithm') ?? '';
  const base = C14N[alg];
  if (!base) throw new Refused('unsupported-algorithm', `${what} ${JSON.stringify(alg)} is not supported (Canonical XML 1.0 or Exclusive c14n)`);
  const opts: C14nOptions = { ...base };
  if (base.exclusive) {
    const inc = elementChildren(el).find((c) => c.localName === 'InclusiveNamespaces' && c.namespaceURI === NS_EXC_C14N);
    const list = inc?.getAttribute('PrefixList');
    if (list)
      opts.inclusivePrefixes = list
        .split(/[ \t\n]+/)
        .filter((p) => p !== '')
        .map((p) => (p === '#default' ? '' : p));
  }
  return opts;
}

/** The element whose Id (or ID, id) attribute is `id`; exactly one, or the reference is ambiguous. */
function byId(doc: XmlDocument, id: string, label: string): XmlElement {
  const found = doc.elements.filter((el) =>
    el.attributes.some((a) => a.namespaceURI === '' && (a.localName === 'Id' || a.localName === 'ID' || a.localName === 'id') && a.value === id),
  );
  // Two elements with one Id is the classic signature-wrapping set-up: refuse rather than pick one.
  if (found.length !== 1)
    throw new Refused(
      'reference-not-found',
      found.length === 0 ? `${label}: no element has Id ${JSON.stringify(id)}` : `${label}: ${found.length} elements have Id ${JSON.stringify(id)}`,
    );
  return found[0]!;
}

function keyInfoCerts(signature: XmlElement): Buffer[] {
  const keyInfo = elementChildren(signature).find((c) => c.localName === 'KeyInfo' && c.namespaceURI === NS_DSIG);
  const out: Buffer[] = [];
  if (!keyInfo) return out;
  for (const data of elementChildren(keyInfo)) {
    if (data.localName !== 'X509Data' || data.namespaceURI !== NS_DSIG) continue;
    for (const c of elementChildren(data))
      if (c.localName === 'X509Certificate' && c.namespaceURI === NS_DSIG) out.push(base64(c.textContent ?? '', 'KeyInfo X509Certificate'));
  }
  return out;
}

function elementChildren(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (let c = el.head; c; c = c.nextSibling) if (c.nodeType === 1) out.push(c);
  return out;
}

function expect(el: XmlElement | undefined, name: string, message: string): XmlElement {
  if (!el || el.localName !== name || el.namespaceURI !== NS_DSIG) throw new Refused('structure', message);
  return el;
}

function base64(text: string, what: string): Buffer {
  const b64 = text.replace(/[ \t\n\r]+/g, '');
  if (!BASE64.test(b64) || b64.length % 4 !== 0) throw new Refused('structure', `${what} is not base64`);
  return Buffer.from(b64, 'base64');
}
