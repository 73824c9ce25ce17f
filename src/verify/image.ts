/**
 * verify.image: the cosign signature of the pulled manifest digest, checked before any layer is
 * unpacked. Policy decides what a missing signature means; a present but bad one always fails.
 */
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { loadCertificates } from '../pki/certs.js';
import type { SignatureBlobs } from '../source/index.js';
import { signatureTag, verifyCosignSignature } from './cosign.js';
import type { ImageCheck } from './types.js';

export interface ImagePolicySettings {
  mode: 'required' | 'optional' | 'off';
  trustChain?: string;
  identity?: string;
}

export async function verifyImage(
  signature: SignatureBlobs | undefined,
  policy: ImagePolicySettings,
  imageDigest: string,
  /** The source's own words for why there is no signature (the verifier knows no source kinds). */
  missingReason = `no signature ${signatureTag(imageDigest)} found beside the image`,
): Promise<ImageCheck> {
  if (policy.mode === 'off') return { checked: false, reason: 'image signature check is off' };
  if (!signature) {
    const where = missingReason;
    if (policy.mode === 'required') {
      throw new VerifyError(
        `image signature: ${where}`,
        'image signature',
        'sign the image (cosign sign), pull from a source that keeps the .sig tag, or set --image-signature optional',
      );
    }
    return { checked: false, reason: where };
  }
  let anchors;
  try {
    anchors = await loadCertificates([policy.trustChain!]);
  } catch (err) {
    throw new ConfigError(`image trust chain: ${errorMessage(err)}`);
  }
  const result = verifyCosignSignature({ manifest: signature.manifest, blobs: signature.blobs }, { imageDigest, anchors, identity: policy.identity });
  return { checked: true, location: signature.location, signer: result.signer, identity: result.identity, signedAt: result.signedAt };
}
