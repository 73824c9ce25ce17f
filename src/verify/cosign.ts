/**
 * Cosign image signatures in gematik's key-based mode (`cosign sign --key … --cert leaf.pem
 * --cert-chain chain.pem --tlog-upload=false`): no transparency log, no Fulcio; trust comes only from the
 * X.509 leaf in the layer annotations chaining to the pinned chain file. Pure: the caller fetched the
 * signature manifest and its blobs; nothing here does I/O.
 *
 * Decisions:
 * - EKU: a leaf without extendedKeyUsage is accepted (gematik's real signing leaf has none); a leaf with
 *   one must list codeSigning (what Fulcio and cosign-issued certificates carry). A TLS or e-mail
 *   certificate from the same CA must not be able to sign images.
 * - keyUsage: when present it must include digitalSignature.
 * - Identity: the leaf must carry at least one SAN email even when no identity is required; without one
 *   there is nothing to report as "who signed", and a certificate without the identity gematik's mode is
 *   built on is not what an operator pinned.
 * - Only the simplesigning payload is checked; bundle / RFC 3161 annotations are ignored (no tlog).
 */
import crypto from 'node:crypto';
import { VerifyError, errorMessage } from '../errors.js';
import { TAG, encode, encodeInteger, encodeOid } from '../pki/asn1.js';
import {
  type Certificate,
  OID_EKU_CODE_SIGNING,
  allowsExtendedKeyUsage,
  certificatesFromPemText,
  keyUsageBit,
  subjectAltEmails,
  subjectString,
} from '../pki/certs.js';
import { validateChain } from '../pki/chain.js';
import { algorithmFromDer, publicKeyFromSpki, verifySignature } from '../pki/engine.js';
import type { AlgorithmIdentifier } from '../pki/x509.js';
import { cosignSignatureTag } from '../source/signature.js';
import type { SignerReport } from './types.js';

export interface CosignSignatureInput {
  /** Raw bytes of the signature manifest (the OCI manifest tagged sha256-<hex>.sig). */
  manifest: Uint8Array;
  /** Layer blobs of that manifest by digest (`sha256:<hex>` → bytes); the caller fetched them by digest. */
  blobs: Map<string, Uint8Array>;
}

export interface CosignPolicy {
  /** Manifest digest actually pulled (`sha256:<hex>`); the signed payload must name exactly this. */
  imageDigest: string;
  /** Pinned chain (TRUST_CERTCHAIN_FILE): every certificate is a trust anchor, as elsewhere in this project. */
  anchors: Certificate[];
  /** Required SAN rfc822Name (email) of the leaf, e.g. software-development@gematik.de; undefined = any. */
  identity?: string;
  at?: Date;
}

export interface CosignResult {
  signer: SignerReport;
  identity: string;
  /** From the payload's optional.timestamp (ISO 8601), when it carries a readable one. */
  signedAt?: string;
}

export const LABEL = 'image signature';
export const SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
const PAYLOAD_TYPE = 'cosign container image signature';
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);

// Bounds: all of this is attacker-supplied until the signature verifies.
/** The OCI distribution spec's recommended manifest limit. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Same bound as the source stage's signature fetch. */
const MAX_LAYERS = 32;
/** A simplesigning payload is a few hundred bytes; annotations in `optional` stay far below this. */
const MAX_PAYLOAD_BYTES = 256 * 1024;
const MAX_SIGNATURE_CHARS = 16 * 1024;
const MAX_PEM_CHARS = 256 * 1024;

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
const OID_RSA_PSS = '1.2.840.113549.1.1.10';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_MGF1 = '1.2.840.113549.1.1.8';
const OID_ED25519 = '1.3.101.112';

const failure = (reason: string): VerifyError => new VerifyError(`${LABEL}: ${reason}`, LABEL);
const quote = (s: string): string => JSON.stringify(s);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `sha256-<hex>.sig` for a manifest digest: the tag cosign stores the signature under. */
export function signatureTag(imageDigest: string): string {
  if (!DIGEST.test(imageDigest)) throw failure(`${quote(imageDigest)} is not a sha256 manifest digest`);
  return cosignSignatureTag(imageDigest);
}

/** UTF-8 that must decode cleanly: a lossy decode could make two byte strings read as the same JSON. */
function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new Error(`${what} is not valid JSON (${errorMessage(err)})`);
  }
}

interface Layer {
  digest: string;
  size: number;
  annotations: Record<string, unknown>;
}

/** The simplesigning layers of the signature manifest; throws when it is not an image manifest at all. */
function signatureLayers(manifest: Uint8Array): Layer[] {
  if (manifest.byteLength > MAX_MANIFEST_BYTES) throw failure(`signature manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseJsonBytes(manifest, 'signature manifest');
  } catch (err) {
    throw failure(errorMessage(err));
  }
  if (!isRecord(doc) || doc.schemaVersion !== 2 || !Array.isArray(doc.layers)) {
    throw failure('signature manifest is not an OCI/Docker image manifest (schemaVersion 2 with layers)');
  }
  // An index (or anything else) here would mean we verify something other than a signature image.
  if (doc.mediaType !== undefined && !MANIFEST_TYPES.has(String(doc.mediaType))) {
    throw failure(`signature manifest has media type ${quote(String(doc.mediaType))}, not an image manifest`);
  }
  if (doc.layers.length > MAX_LAYERS) throw failure(`signature manifest has ${doc.layers.length} layers (at most ${MAX_LAYERS})`);
  const layers: Layer[] = [];
  for (const [i, raw] of doc.layers.entries()) {
    if (!isRecord(raw)) throw failure(`signature manifest layers[${i}] is not an object`);
    if (raw.mediaType !== SIMPLESIGNING_MEDIA_TYPE) continue;
    const { digest, size, annotations } = raw;
    if (typeof digest !== 'string' || !DIGEST.test(digest)) throw failure(`signature layer ${i} has an invalid digest`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw failure(`signature layer ${digest} has an invalid size`);
    layers.push({ digest, size, annotations: isRecord(annotations) ? annotations : {} });
  }
  if (layers.length === 0) throw failure(`signature manifest has no cosign signature layer (${SIMPLESIGNING_MEDIA_TYPE})`);
  return layers;
}

function stringAnnotation(layer: Layer, key: string, maxChars: number): string | undefined {
  const value = layer.annotations[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`annotation ${key} is not a string`);
  if (value.length > maxChars) throw new Error(`annotation ${key} is longer than ${maxChars} characters`);
  return value;
}

/** The payload's claims; the digest check is what binds this signature to the image that was pulled. */
function checkPayload(payload: Uint8Array, imageDigest: string): { signedAt?: string } {
  const doc = parseJsonBytes(payload, 'signed payload');
  const critical = isRecord(doc) ? doc.critical : undefined;
  if (!isRecord(critical)) throw new Error('signed payload has no "critical" section');
  if (critical.type !== PAYLOAD_TYPE) throw new Error(`signed payload type is ${quote(String(critical.type))}, not ${quote(PAYLOAD_TYPE)}`);
  const image = critical.image;
  const named = isRecord(image) ? image['docker-manifest-digest'] : undefined;
  if (typeof named !== 'string') throw new Error('signed payload names no docker-manifest-digest');
  // Exact string match: no case folding or trimming, so there is only one spelling that is accepted.
  if (named !== imageDigest) throw new Error(`payload names ${DIGEST.test(named) ? named : quote(named)} but ${imageDigest} was pulled`);
  const optional = isRecord(doc) ? doc.optional : undefined;
  const signedAt = isRecord(optional) ? readableTime(optional.timestamp) : undefined;
  return signedAt ? { signedAt } : {};
}

/** optional.timestamp as ISO 8601: unix seconds (number or digits) or a date string; else undefined. */
function readableTime(value: unknown): string | undefined {
  let ms: number;
  if (typeof value === 'number' && Number.isFinite(value)) ms = value * 1000;
  else if (typeof value === 'string' && /^\d{1,12}$/.test(value)) ms = Number(value) * 1000;
  else if (typeof value === 'string' && value.length <= 64 && /^\d{4}-\d{2}-\d{2}/.test(value)) ms = Date.parse(value);
  else return undefined;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function decodeBase64(text: string): Uint8Array {
  const compact = text.trim();
  // Buffer.from(…, 'base64') skips junk silently; a damaged signature must be reported as such.
  if (compact.length === 0 || !STRICT_BASE64.test(compact)) throw new Error(`annotation ${ANNOTATION_SIGNATURE} is not valid base64`);
  return Buffer.from(compact, 'base64');
}

const algorithmDer = (oid: string, ...params: Uint8Array[]): Buffer => encode(TAG.SEQUENCE, encodeOid(oid), ...params);
const algorithm = (oid: string): AlgorithmIdentifier => algorithmFromDer(algorithmDer(oid));

/** RSASSA-PSS with SHA-256/MGF1-SHA-256, encoded and read back so the engine sees it as in a certificate. */
function pssAlgorithm(saltLength: number): AlgorithmIdentifier {
  const sha256 = algorithmDer(OID_SHA256, encode(TAG.NULL));
  const params = encode(TAG.SEQUENCE, encode(0xa0, sha256), encode(0xa1, algorithmDer(OID_MGF1, sha256)), encode(0xa2, encodeInteger(saltLength)));
  return algorithmFromDer(algorithmDer(OID_RSA_PSS, params));
}

/**
 * Signature algorithms cosign can have used with this key, SHA-256 throughout. RSA may be PKCS#1 v1.5
 * (cosign's default) or PSS with the salt as long as the hash or as long as possible (Go's "auto").
 */
function candidateAlgorithms(leaf: Certificate): AlgorithmIdentifier[] {
  const key = publicKeyFromSpki(leaf.spki);
  switch (key.asymmetricKeyType) {
    case 'ec':
      return [algorithm(OID_ECDSA_SHA256)];
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 2048;
      return [algorithm(OID_RSA_SHA256), pssAlgorithm(32), pssAlgorithm(Math.ceil((bits - 1) / 8) - 32 - 2)];
    }
    case 'rsa-pss':
      return [pssAlgorithm(32)];
    case 'ed25519':
      return [algorithm(OID_ED25519)];
    default:
      throw new Error(`leaf key type ${key.asymmetricKeyType ?? 'unknown'} is not supported`);
  }
}

/** Local part exact, domain case-insensitive (RFC 5321): no substring or suffix match. */
function sameEmail(a: string, b: string): boolean {
  const ia = a.lastIndexOf('@');
  const ib = b.lastIndexOf('@');
  if (ia <= 0 || ib <= 0) return false;
  return a.slice(0, ia) === b.slice(0, ib) && a.slice(ia + 1).toLowerCase() === b.slice(ib + 1).toLowerCase();
}

/** Verify one signature layer; throws an Error whose message is the one-line reason. */
function verifyLayer(layer: Layer, input: CosignSignatureInput, policy: CosignPolicy, at: Date): CosignResult {
  const blob = input.blobs.get(layer.digest);
  if (!blob) throw new Error(`payload blob ${layer.digest} was not provided`);
  if (blob.byteLength > MAX_PAYLOAD_BYTES) throw new Error(`payload blob is larger than ${MAX_PAYLOAD_BYTES} bytes`);
  // Defence in depth: the caller fetched by digest, but a mix-up there must not let other bytes through.
  if (blob.byteLength !== layer.size) throw new Error(`payload blob has ${blob.byteLength} bytes, the manifest declares ${layer.size}`);
  const actual = `sha256:${crypto.createHash('sha256').update(blob).digest('hex')}`;
  if (actual !== layer.digest) throw new Error(`payload blob hashes to ${actual}, not ${layer.digest}`);

  const { signedAt } = checkPayload(blob, policy.imageDigest);

  const sigText = stringAnnotation(layer, ANNOTATION_SIGNATURE, MAX_SIGNATURE_CHARS);
  if (sigText === undefined) throw new Error(`layer has no ${ANNOTATION_SIGNATURE} annotation`);
  const signature = decodeBase64(sigText);
  const certText = stringAnnotation(layer, ANNOTATION_CERTIFICATE, MAX_PEM_CHARS);
  // Without the leaf there is only a bare key signature, which gematik's mode does not use.
  if (certText === undefined) throw new Error(`layer has no ${ANNOTATION_CERTIFICATE} annotation (gematik's mode signs with an X.509 leaf)`);
  const leaves = certificatesFromPemText(certText, 'certificate annotation', 1);
  const leaf = leaves[0];
  if (!leaf) throw new Error(`annotation ${ANNOTATION_CERTIFICATE} holds no PEM certificate`);
  const chainText = stringAnnotation(layer, ANNOTATION_CHAIN, MAX_PEM_CHARS);
  const intermediates = chainText === undefined ? [] : certificatesFromPemText(chainText, 'chain annotation');

  // The signature is over the exact blob bytes, never over a re-serialisation of the parsed JSON.
  const subject = subjectString(leaf);
  const ok = candidateAlgorithms(leaf).some((alg) => verifySignature(blob, signature, leaf.spki, alg));
  if (!ok) throw new Error(`signature does not verify with the key of ${quote(subject)} (payload altered or wrong key)`);

  if (keyUsageBit(leaf, 0) === false) throw new Error(`leaf ${quote(subject)} keyUsage lacks digitalSignature`);
  if (!allowsExtendedKeyUsage(leaf, OID_EKU_CODE_SIGNING)) throw new Error(`leaf ${quote(subject)} extendedKeyUsage lacks codeSigning`);

  // The chain annotation is untrusted: it only helps build the path; the pinned anchors decide.
  const chain = validateChain({ leaf, intermediates, anchors: policy.anchors, at });

  const emails = subjectAltEmails(leaf);
  if (emails.length === 0) throw new Error(`leaf ${quote(subject)} has no SAN email identity`);
  let identity = emails[0]!;
  if (policy.identity !== undefined) {
    const required = policy.identity;
    const match = emails.find((e) => sameEmail(e, required));
    if (!match) throw new Error(`leaf identity ${emails.map(quote).join(', ')} is not the required ${quote(required)}`);
    identity = match;
  }
  const signer: SignerReport = { subject, anchor: subjectString(chain.anchor), earliestExpiry: chain.earliestExpiry.toISOString() };
  return signedAt ? { signer, identity, signedAt } : { signer, identity };
}

/**
 * Verify the cosign signature manifest for `policy.imageDigest`. Several signature layers may exist
 * (re-signing appends); one that fully verifies is enough. When none does, the VerifyError names the
 * reason of each.
 */
export function verifyCosignSignature(input: CosignSignatureInput, policy: CosignPolicy): CosignResult {
  if (!DIGEST.test(policy.imageDigest)) throw failure(`${quote(policy.imageDigest)} is not a sha256 manifest digest`);
  const at = policy.at ?? new Date();
  const layers = signatureLayers(input.manifest);
  const reasons: string[] = [];
  for (const layer of layers) {
    try {
      return verifyLayer(layer, input, policy, at);
    } catch (err) {
      // Any failure — including a parser exception on hostile input — only disqualifies this layer.
      reasons.push(errorMessage(err).replace(/[\r\n]+/g, ' '));
    }
  }
  if (reasons.length === 1) throw failure(reasons[0]!);
  const each = reasons.map((r, i) => `#${i + 1} ${layers[i]!.digest.slice(0, 19)}…: ${r}`).join('; ');
  throw failure(`none of ${reasons.length} signatures verifies: ${each}`);
}
