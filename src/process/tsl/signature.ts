/**
 * XMLDSig check of a TSL (enveloped signature, exclusive c14n) against configured TSL signer anchors.
 * xmldsig.ts does the canonicalisation, reference digests and signature value; we decide what is
 * acceptable around it:
 * - exactly one ds:Signature, a child of the root, and a Reference with URI="" (the whole list) and
 *   the enveloped-signature transform. A signature over some other element would let an attacker wrap
 *   unsigned services around a signed fragment.
 * - the signer certificate (first X509Certificate in KeyInfo) chains to an anchor now, and its
 *   extendedKeyUsage, when present, allows TSL signing (ETSI id-tsl-kp-tslSigning).
 * - ECDSA (brainpool included, via node:crypto) and RSA with SHA-256 or stronger; SHA-1 is refused.
 */
import { VerifyError, errorMessage } from '../../errors.js';
import { allowsExtendedKeyUsage, certSha256, parseCertificate, subjectString } from '../../pki/certs.js';
import { describeSignatureFailure, trustTslSigner, type TslTrust } from './trust.js';
import { NS_DSIG, child, children, type TslDocument } from './xml.js';
import { ENVELOPED, SIGNATURES, verifyXmlSignature } from './xmldsig.js';

export const OID_EKU_TSL_SIGNING = '0.4.0.2231.3.0';

export type TslSignatureResult = { checked: true; signer: string; signerSha256: string; anchor: string } | { checked: false; reason: string };

export function verifyTslSignature(tsl: TslDocument, trust: TslTrust, at: Date, file: string): TslSignatureResult {
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
  if (!(method in SIGNATURES)) fail(`signature method ${JSON.stringify(method)} is not accepted (ECDSA or RSA with SHA-256 or stronger)`);
  const whole = children(signedInfo, NS_DSIG, 'Reference').filter((r) => r.getAttribute('URI') === '' && r.hasAttribute('URI'));
  if (whole.length !== 1) fail('no single Reference with URI="" covers the whole list');
  const transforms = children(child(whole[0], NS_DSIG, 'Transforms'), NS_DSIG, 'Transform').map((t) => t.getAttribute('Algorithm'));
  if (!transforms.includes(ENVELOPED)) fail('the whole-list Reference lacks the enveloped-signature transform');

  // Digests and signature value (xmldsig.ts), with the key of the signer certificate from KeyInfo;
  // that same certificate must then chain to an anchor.
  const dsig = verifyXmlSignature(tsl.doc, sigEl);
  // A structural failure before KeyInfo was read has no signer to name; say that failure.
  if (!dsig.ok && dsig.keyInfoCertificates.length === 0) fail(describeSignatureFailure(dsig.reason));
  const keyCerts = dsig.keyInfoCertificates.map((der, i) => {
    try {
      return parseCertificate(der, `${file} KeyInfo certificate ${i + 1}`);
    } catch (err) {
      return fail(errorMessage(err));
    }
  });
  const signer = keyCerts[0] ?? fail('KeyInfo carries no X509Certificate');
  const chain = trustTslSigner(signer, keyCerts.slice(1), trust, at, file);
  if (!allowsExtendedKeyUsage(signer, OID_EKU_TSL_SIGNING))
    fail(`signer "${subjectString(signer)}" is not allowed to sign TSLs (extendedKeyUsage lacks ${OID_EKU_TSL_SIGNING})`);
  // Trust is judged first (an untrusted signer is the more useful message, e.g. a TEST-ONLY list in
  // production); the digests and signature value must hold all the same before anything is used.
  if (!dsig.ok) fail(describeSignatureFailure(dsig.reason));
  return { checked: true, signer: subjectString(signer), signerSha256: certSha256(signer), anchor: subjectString(chain.anchor) };
}
