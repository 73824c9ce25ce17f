/**
 * Image manifests, whatever they are stored in (an OCI layout or a registry): pick the platform from an
 * index, check media types, collect layers, DiffIDs and labels. The store reads and digest-checks blobs.
 */
import type { Readable } from 'node:stream';
import { SourceError } from '../errors.js';
import { isRecord, stringMap, toDescriptor, type Descriptor } from './blobs.js';
import { choosePlatform, type Platform } from './platform.js';
import { isSha256Digest } from './reference.js';
import type { LayerDescriptor } from './types.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MANIFEST_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
export const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_LIST]);
export const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);
export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface BlobStore {
  /** Read a JSON blob (manifest, config), capped and checked against the descriptor's digest. */
  readJson(desc: Descriptor, what: string): Promise<unknown>;
  /** Open a layer blob as a stream; the caller hashes it to EOF. */
  openBlob(layer: LayerDescriptor): Promise<Readable>;
  /** Cheap early check that every layer is there (a layout can stat; a registry cannot). */
  checkLayer?(layer: LayerDescriptor): Promise<void>;
}

export interface Image {
  manifestDigest: string;
  layers: LayerDescriptor[];
  diffIds?: string[];
  annotations: Record<string, string>;
}

export function tagOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME];
}

/** Cosign signatures, attestations and SBOMs share the layout (`cosign save`); they are not the payload. */
export function isSignatureEntry(d: Descriptor): boolean {
  const kind = d.annotations?.kind ?? '';
  if (/^dev\.cosignproject\.cosign\/(sigs|atts|sboms)$/.test(kind)) return true;
  if (/^sha256-[0-9a-f]{64}\.(sig|att|sbom)$/.test(tagOf(d) ?? '')) return true;
  return d.artifactType !== undefined;
}

export function manifestsOf(index: unknown, what: string): Descriptor[] {
  if (!isRecord(index) || !Array.isArray(index.manifests)) throw new SourceError(`${what} has no manifests list`);
  return index.manifests.map((m, i) => toDescriptor(m, `${what} manifests[${i}]`));
}

/** `platform` picks from an index (undefined: linux/amd64, or the only image). */
export async function loadImage(store: BlobStore, desc: Descriptor, platform?: Platform, depth = 0): Promise<Image> {
  const doc = await store.readJson(desc, 'manifest');
  if (!isRecord(doc)) throw new SourceError(`manifest ${desc.digest} is not a JSON object`);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (desc.mediaType !== '' && declared !== undefined && declared !== desc.mediaType) {
    // Prevents a confusion attack: the descriptor (which a signature may cover) and content must agree.
    throw new SourceError(`manifest ${desc.digest} declares media type ${declared} but is listed as ${desc.mediaType}`);
  }
  let mediaType = desc.mediaType || declared || '';
  if (mediaType === '' && Array.isArray(doc.manifests)) mediaType = OCI_INDEX;
  if (mediaType === '' && Array.isArray(doc.layers)) mediaType = OCI_MANIFEST;

  if (INDEX_TYPES.has(mediaType)) {
    if (depth > 0) throw new SourceError(`image index ${desc.digest} nests another index`);
    return loadImage(store, pickPlatform(manifestsOf(doc, `index ${desc.digest}`), desc.digest, platform), platform, depth + 1);
  }
  if (!MANIFEST_TYPES.has(mediaType)) {
    throw new SourceError(`manifest ${desc.digest} has unsupported media type '${mediaType}'`);
  }
  const configDesc = toDescriptor(doc.config, `manifest ${desc.digest} config`);
  if (!Array.isArray(doc.layers)) throw new SourceError(`manifest ${desc.digest} has no layers list`);
  const layers = doc.layers.map((l, i) => {
    const d = toDescriptor(l, `manifest ${desc.digest} layers[${i}]`);
    if (!LAYER_TYPES.has(d.mediaType)) {
      throw new SourceError(`layer ${d.digest} has unsupported media type '${d.mediaType}'`);
    }
    return { mediaType: d.mediaType, digest: d.digest, size: d.size };
  });
  if (store.checkLayer) await Promise.all(layers.map((l) => store.checkLayer!(l)));

  const config = await store.readJson(configDesc, 'config');
  const annotations: Record<string, string> = {};
  let diffIds: string[] | undefined;
  if (isRecord(config)) {
    if (isRecord(config.config) && isRecord(config.config.Labels)) Object.assign(annotations, stringMap(config.config.Labels));
    const ids = isRecord(config.rootfs) ? config.rootfs.diff_ids : undefined;
    if (Array.isArray(ids)) {
      if (ids.length !== layers.length || !ids.every((x): x is string => typeof x === 'string' && isSha256Digest(x))) {
        throw new SourceError(`config ${configDesc.digest}: rootfs.diff_ids does not match the ${layers.length} layers`);
      }
      diffIds = ids;
    }
  }
  if (isRecord(doc.annotations)) Object.assign(annotations, stringMap(doc.annotations));
  const image: Image = { manifestDigest: desc.digest, layers, annotations };
  if (diffIds !== undefined) image.diffIds = diffIds;
  return image;
}

/** From a multi-platform index: the wanted platform's image (signatures and attestations left out). */
export function pickPlatform(entries: Descriptor[], indexDigest: string, platform?: Platform): Descriptor {
  // Buildx attestation manifests ride along as `unknown/unknown` platform entries.
  const images = entries.filter((d) => MANIFEST_TYPES.has(d.mediaType) && !isSignatureEntry(d) && d.platform?.os !== 'unknown');
  return choosePlatform(images, platform, indexDigest);
}
