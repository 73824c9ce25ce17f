/**
 * Fetching a cosign signature (`sha256-<hex>.sig`): the signature manifest and its small layer blobs,
 * each checked against its digest. Verifying what they say is the verify stage's job; this module only
 * guarantees the bytes are the ones the manifest names, and bounds how much is read.
 */
import { createHash } from 'node:crypto';
import { SourceError } from '../errors.js';
import { blobRel, isRecord, MAX_JSON_BLOB_BYTES, parseJson, toDescriptor, type Descriptor } from './blobs.js';
import type { LayoutFiles } from './layout-files.js';

/** `sha256-<hex>.sig`: the tag cosign stores a manifest digest's signature under (registry and layouts). */
export function cosignSignatureTag(imageDigest: string): string {
  return `sha256-${imageDigest.slice('sha256:'.length)}.sig`;
}

export interface SignatureBlobs {
  /** Raw signature manifest bytes. */
  manifest: Buffer;
  /** Its layer blobs, by digest. */
  blobs: Map<string, Buffer>;
  /** Where it was found, for the report. */
  location: string;
}

/** A signature manifest with more layers than this is not cosign's doing. */
const MAX_SIGNATURE_LAYERS = 32;

export async function collectSignatureBlobs(
  manifest: Buffer,
  manifestDigest: string,
  readBlob: (desc: Descriptor) => Promise<Buffer>,
  location: string,
): Promise<SignatureBlobs> {
  const actual = 'sha256:' + createHash('sha256').update(manifest).digest('hex');
  if (actual !== manifestDigest) throw new SourceError(`signature manifest ${manifestDigest} does not match its digest`);
  const doc = parseJson(manifest, `signature manifest ${manifestDigest}`);
  if (!isRecord(doc) || !Array.isArray(doc.layers)) throw new SourceError(`signature manifest ${manifestDigest} has no layers`);
  if (doc.layers.length > MAX_SIGNATURE_LAYERS)
    throw new SourceError(`signature manifest ${manifestDigest} has ${doc.layers.length} layers (at most ${MAX_SIGNATURE_LAYERS})`);
  const blobs = new Map<string, Buffer>();
  for (const [i, layer] of doc.layers.entries()) {
    const desc = toDescriptor(layer, `signature manifest ${manifestDigest} layers[${i}]`);
    if (desc.size > MAX_JSON_BLOB_BYTES) throw new SourceError(`signature layer ${desc.digest} is larger than ${MAX_JSON_BLOB_BYTES} bytes`);
    if (!blobs.has(desc.digest)) blobs.set(desc.digest, await readBlob(desc));
  }
  return { manifest, blobs, location };
}

/** A small blob from a layout or archive, checked against its digest. */
export async function readBlobBytes(files: LayoutFiles, desc: Descriptor): Promise<Buffer> {
  const data = await files.read(blobRel(desc.digest, files.label), MAX_JSON_BLOB_BYTES, `blob ${desc.digest}`);
  if (data === null) throw new SourceError(`blob ${desc.digest} is missing from ${files.label}`);
  const actual = 'sha256:' + createHash('sha256').update(data).digest('hex');
  if (actual !== desc.digest) throw new SourceError(`blob ${desc.digest} does not match its digest`);
  return data;
}
