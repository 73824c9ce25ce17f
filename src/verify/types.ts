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
  /** `manifest`: the file's sha256 against the payload `.manifest` (no signer of its own). */
  kind: 'cms-detached' | 'cms-attached' | 'authenticode' | 'manifest';
  ok: boolean;
  signers: SignerReport[];
  /** Time proven by a verified RFC 3161 timestamp (ISO 8601); the chain was validated at this time. */
  timestamp?: string;
  /** Why it failed; one line, names the signer where known. */
  reason?: string;
}

export interface ManifestReport {
  /** Whether `.manifest` was checked (policy off, or optional and absent: false). */
  checked: boolean;
  /** Listed files (the self line excluded). */
  listed?: number;
  /** Payload files `.manifest` does not list; an error or a warning by policy. */
  unlisted?: string[];
  /** First line of `.revision`, when printable. */
  revision?: string;
  /** Whether `.revision` is itself listed (so the revision shown is covered by the manifest). */
  revisionListed?: boolean;
  /** Why it was not checked. */
  reason?: string;
}

/** The time a verified signature proves for the payload (see src/verify/downgrade.ts). */
export interface ProvenTime {
  time: string;
  /** What proves it, e.g. `image signature` or `RFC 3161 timestamp of TrustedTpm.cab`. */
  basis: string;
}

export interface VerificationReport {
  checks: FileCheck[];
  /** Payload files that no verification rule covered (reported, not an error in this version). */
  unverified: string[];
  manifest?: ManifestReport;
  /** The time the verified signatures prove; what a later run compares against (downgrade protection). */
  proven?: ProvenTime;
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
