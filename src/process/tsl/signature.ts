/**
 * XMLDSig check of a TSL (enveloped signature, exclusive c14n) with xml-crypto, against configured
 * TSL signer anchors. xml-crypto does the canonicalisation and reference digests; we decide what is
 * acceptable around it:
 * - exactly one ds:Signature, a child of the root, and a Reference with URI="" (the whole list) and
 *   the enveloped-signature transform. A signature over some other element would let an attacker wrap
 *   unsigned services around a signed fragment.
 * - the signer certificate (first X509Certificate in KeyInfo) chains to an anchor now, and its
 *   extendedKeyUsage, when present, allows TSL signing (ETSI id-tsl-kp-tslSigning).
 * - ECDSA (brainpool included, via node:crypto) and RSA with SHA-256 or stronger; SHA-1 is refused.
 */
import crypto from 'node:crypto';
import type * as pkijs from 'pkijs';
import { VerifyError, errorMessage } from '../../errors.js';
import { allowsExtendedKeyUsage, certSha256, parseCertificate, subjectString } from '../../pki/certs.js';
import { loadXmlCrypto } from './dom.js';
import { describeSignatureFailure, trustTslSigner, type TslTrust } from './trust.js';
import { NS_DSIG, child, children, type TslDocument } from './xml.js';

export const OID_EKU_TSL_SIGNING = '0.4.0.2231.3.0';

export type TslSignatureResult =
  | { checked: true; signer: string; signerSha256: string; anchor: string }
  | { checked: false; reason: string };

const ECDSA: Record<string, string> = {
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': 'sha512',
};
const RSA = ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512'];
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** XMLDSig ECDSA values are r||s (RFC 6931), not DER: node:crypto reads that as ieee-p1363. */
function ecdsaAlgorithm(uri: string, hash: string): new () => { getSignature(): string; verifySignature(m: string, k: crypto.KeyLike, s: string): boolean; getAlgorithmName(): string } {
  return class {
    getSignature(): string {
      throw new Error('signing is not supported');
    }
    verifySignature(material: string, key: crypto.KeyLike, signatureValue: string): boolean {
      return crypto.verify(hash, Buffer.from(material, 'utf8'), { key: crypto.createPublicKey(key), dsaEncoding: 'ieee-p1363' }, Buffer.from(signatureValue.replace(/\s+/g, ''), 'base64'));
    }
    getAlgorithmName(): string {
      return uri;
    }
  };
}

export function verifyTslSignature(tsl: TslDocument, trust: TslTrust | pkijs.Certificate[], at: Date, file: string): TslSignatureResult {
  if (Array.isArray(trust)) trust = { anchors: trust, intermediates: [], anchorOrigin: 'configured anchors' };
  if (trust.anchors.length === 0) return { checked: false, reason: 'no TSL signer anchor configured' };
  const fail = (why: string): never => {
    throw new VerifyError(`${file}: TSL signature: ${why}`, file);
  };
  const root = tsl.doc.documentElement!;
  const all = tsl.doc.getElementsByTagNameNS(NS_DSIG, 'Signature');
  if (all.length !== 1) fail(`expected exactly one ds:Signature, found ${all.length}`);
  const sigEl = all.item(0)!;
  if (sigEl.parentNode !== root) fail('ds:Signature is not a child of the TrustServiceStatusList');
  const signedInfo = child(sigEl, NS_DSIG, 'SignedInfo');
  const method = child(signedInfo, NS_DSIG, 'SignatureMethod')?.getAttribute('Algorithm') ?? '';
  if (!(method in ECDSA) && !RSA.includes(method)) fail(`signature method ${JSON.stringify(method)} is not accepted (ECDSA or RSA with SHA-256 or stronger)`);
  const whole = children(signedInfo, NS_DSIG, 'Reference').filter((r) => r.getAttribute('URI') === '' && r.hasAttribute('URI'));
  if (whole.length !== 1) fail('no single Reference with URI="" covers the whole list');
  const transforms = children(child(whole[0], NS_DSIG, 'Transforms'), NS_DSIG, 'Transform').map((t) => t.getAttribute('Algorithm'));
  if (!transforms.includes(ENVELOPED)) fail('the whole-list Reference lacks the enveloped-signature transform');

  const keyCerts = children(child(child(sigEl, NS_DSIG, 'KeyInfo'), NS_DSIG, 'X509Data'), NS_DSIG, 'X509Certificate').map((x, i) => {
    try {
      return parseCertificate(Buffer.from((x.textContent ?? '').replace(/\s+/g, ''), 'base64'), `${file} KeyInfo certificate ${i + 1}`);
    } catch (err) {
      return fail(errorMessage(err));
    }
  });
  const signer = keyCerts[0] ?? fail('KeyInfo carries no X509Certificate');
  const chain = trustTslSigner(signer, keyCerts.slice(1), trust, at, file);
  if (!allowsExtendedKeyUsage(signer, OID_EKU_TSL_SIGNING)) fail(`signer "${subjectString(signer)}" is not allowed to sign TSLs (extendedKeyUsage lacks ${OID_EKU_TSL_SIGNING})`);

  const publicKey = crypto.createPublicKey({ key: Buffer.from(signer.subjectPublicKeyInfo.toSchema().toBER(false)), format: 'der', type: 'spki' });
  // The key comes only from the validated certificate, never from whatever KeyInfo would resolve to.
  const sx = new (loadXmlCrypto().SignedXml)({ publicCert: publicKey.export({ format: 'pem', type: 'spki' }) as string, getCertFromKeyInfo: () => null });
  const algorithms = sx.SignatureAlgorithms;
  for (const [uri, hash] of Object.entries(ECDSA)) algorithms[uri] = ecdsaAlgorithm(uri, hash);
  let valid = false;
  let why = 'signature value does not verify';
  try {
    sx.loadSignature(sigEl);
    valid = sx.checkSignature(tsl.text);
  } catch (err) {
    why = errorMessage(err);
  }
  if (!valid) {
    const refError = sx.getReferences().find((r) => r.validationError)?.validationError;
    fail(describeSignatureFailure(refError ? errorMessage(refError).replace(/^invalid signature: /, '') : why.replace(/the signature value \S+ is incorrect/, 'the signature value is incorrect')));
  }
  return { checked: true, signer: subjectString(signer), signerSha256: certSha256(signer), anchor: subjectString(chain.anchor) };
}
