/** Contracts of the verification stage. */

export interface SignerReport {
  /** Signer certificate subject, RFC 4514-ish one-line form (e.g. `CN=Example Signer, O=Example`). */
  subject: string;
  /** Subject of the trust anchor the chain ended in. */
  anchor: string;
  /** Earliest notAfter on the chain (leaf … anchor), ISO 8601. */
  earliestExpiry: string;
}

export interface FileCheck {
  /** Payload-relative path of the verified file (the content, not the `.p7s`). */
  file: string;
  kind: 'cms-detached' | 'cms-attached' | 'authenticode';
  ok: boolean;
  signers: SignerReport[];
  /** Time proven by a verified RFC 3161 timestamp (ISO 8601); the chain was validated at this time. */
  timestamp?: string;
  /** Why it failed; one line, names the signer where known. */
  reason?: string;
}

export interface VerificationReport {
  checks: FileCheck[];
  /** Payload files that no verification rule covered (reported, not an error in this version). */
  unverified: string[];
}

/** Outcome of the image (cosign) signature stage. */
export interface ImageCheck {
  checked: boolean;
  /** Where the signature was found (registry tag or layout entry). */
  location?: string;
  signer?: SignerReport;
  /** SAN e-mail of the signer. */
  identity?: string;
  signedAt?: string;
  /** Why it was not checked (policy off, optional and absent). */
  reason?: string;
}
