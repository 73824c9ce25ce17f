/**
 * Cosign signature manifests built the way `cosign sign --key … --cert … --cert-chain …
 * --tlog-upload=false` writes them (see KNOWLEDGE.md "Cosign signatures"): no cosign binary exists here,
 * so the test signs the payload with node:crypto and lays out manifest, layer and annotations itself.
 */
import crypto from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { issue, type Pki } from './openssl.js';

export const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const GEMATIK_IDENTITY = 'software-development@gematik.de';

const sha256 = (b: Uint8Array): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

/** A random image manifest digest (what the source stage "pulled"). */
export function randomDigest(): string {
  return sha256(crypto.randomBytes(32));
}

/** cosign's simplesigning payload (same key order and compact form cosign emits). */
export function cosignPayload(imageDigest: string, opts: { type?: string; optional?: Record<string, unknown> | null } = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': 'registry.example.org/zeta/provisioning' },
        image: { 'docker-manifest-digest': imageDigest },
        type: opts.type ?? 'cosign container image signature',
      },
      optional: opts.optional ?? null,
    }),
  );
}

/** Signature as cosign stores it: base64 of SHA-256 ECDSA (ASN.1 DER) / RSA PKCS#1 v1.5 over the bytes. */
export async function signBytes(data: Uint8Array, keyFile: string): Promise<string> {
  const key = crypto.createPrivateKey(await readFile(keyFile));
  return crypto.sign('sha256', data, key).toString('base64');
}

export interface LayerSpec {
  payload: Uint8Array;
  /** Base64 signature annotation; omitted → no annotation. */
  signature?: string;
  certPem?: string;
  chainPem?: string;
  /** Override descriptor fields (digest/size) to simulate a lying manifest. */
  digest?: string;
  size?: number;
  mediaType?: string;
}

export interface SignatureImage {
  manifest: Buffer;
  blobs: Map<string, Uint8Array>;
}

/** The `.sig` manifest with one layer per spec, and the blobs by (true) digest. */
export function signatureManifest(layers: LayerSpec[]): SignatureImage {
  const config = Buffer.from(
    '{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}',
  );
  const blobs = new Map<string, Uint8Array>();
  const descriptors = layers.map((l) => {
    blobs.set(sha256(l.payload), l.payload);
    const annotations: Record<string, string> = {};
    if (l.signature !== undefined) annotations['dev.cosignproject.cosign/signature'] = l.signature;
    if (l.certPem !== undefined) annotations['dev.sigstore.cosign/certificate'] = l.certPem;
    if (l.chainPem !== undefined) annotations['dev.sigstore.cosign/chain'] = l.chainPem;
    return { mediaType: l.mediaType ?? SIMPLESIGNING, size: l.size ?? l.payload.byteLength, digest: l.digest ?? sha256(l.payload), annotations };
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.byteLength, digest: sha256(config) },
      layers: descriptors,
    }),
  );
  return { manifest, blobs };
}

const COSIGN_EXTENSIONS = `
[v3_cosign]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectAltName = email:${GEMATIK_IDENTITY}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[v3_cosign_other]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectAltName = email:someone@example.org, email:software-development@gematik.de.example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[v3_cosign_tls]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = email:${GEMATIK_IDENTITY}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
`;

export interface CosignLeaves {
  /** SAN email = GEMATIK_IDENTITY, EKU codeSigning. */
  good: string;
  /** Other SAN emails only (one a look-alike with the identity as prefix). */
  otherIdentity: string;
  /** Right identity but EKU serverAuth only. */
  tls: string;
}

/** Leaves for cosign under the PKI's intermediate, all with the PKI's leaf key. */
export async function addCosignLeaves(pki: Pki, label: string): Promise<CosignLeaves> {
  await appendFile(pki.cnf, COSIGN_EXTENSIONS);
  const out = (n: string): string => path.join(pki.dir, n);
  const leaves = { good: out('cosign.pem'), otherIdentity: out('cosign-other.pem'), tls: out('cosign-tls.pem') };
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=Cosign Signer ${label}`, pki.intPem, pki.intKey, 'v3_cosign', leaves.good, [], 21);
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=Other Signer ${label}`, pki.intPem, pki.intKey, 'v3_cosign_other', leaves.otherIdentity, [], 22);
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=TLS Signer ${label}`, pki.intPem, pki.intKey, 'v3_cosign_tls', leaves.tls, [], 23);
  return leaves;
}
