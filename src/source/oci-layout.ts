/**
 * `oci-layout:` sources (e.g. made by `cosign save` or `skopeo copy … oci:`): pick the image from
 * index.json, read and verify manifest and config, then apply the layers into the staging tree.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.js';
import { applyLayer, type UnpackState } from './apply-layer.js';
import {
  blobPath,
  isRecord,
  MAX_JSON_BLOB_BYTES,
  parseJson,
  readCapped,
  readJsonBlob,
  stringMap,
  toDescriptor,
  type Descriptor,
} from './blobs.js';
import { isSha256Digest } from './reference.js';
import { finishTree } from './tree.js';
import type { LayerDescriptor, ResolvedSource, SourceReference, UnpackLimits, UnpackResult } from './types.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const MANIFEST_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_LIST]);
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);
const REF_NAME = 'org.opencontainers.image.ref.name';

interface Image {
  manifestDigest: string;
  layers: LayerDescriptor[];
  diffIds?: string[];
  annotations: Record<string, string>;
}

export async function resolveOciLayout(ref: SourceReference): Promise<ResolvedSource> {
  const image = await readImage(ref);
  return { ref, digest: image.manifestDigest, layers: image.layers, annotations: image.annotations };
}

export async function unpackOciLayout(
  resolved: ResolvedSource,
  root: string,
  limits: UnpackLimits,
): Promise<UnpackResult> {
  // Re-read by the resolved digest, not the tag: the tag may have moved since resolve, and the
  // signature check ran against this exact digest.
  const pinned: SourceReference = { kind: 'oci-layout', path: resolved.ref.path, digest: resolved.digest, original: resolved.ref.original };
  const image = await readImage(pinned);
  const same =
    image.layers.length === resolved.layers.length &&
    image.layers.every((l, i) => {
      const r = resolved.layers[i];
      return r !== undefined && r.digest === l.digest && r.size === l.size && r.mediaType === l.mediaType;
    });
  if (!same) throw new SourceError(`layers of ${resolved.digest} differ from the resolved ones in ${resolved.ref.original}`);

  const state: UnpackState = { root, limits, entries: 0, bytes: 0, tarBytes: 0, dirModes: new Map(), warnings: [] };
  for (const [i, layer] of image.layers.entries()) {
    const input = { descriptor: layer, blobPath: blobPath(resolved.ref.path, layer.digest) };
    const diffId = image.diffIds?.[i];
    await applyLayer(state, diffId === undefined ? input : { ...input, diffId });
  }
  const tree = await finishTree(root, state.dirModes);
  if (tree.escapingLink !== undefined) {
    throw new SourceError(`image ${resolved.digest}: symlink '${tree.escapingLink}' leads outside the image`);
  }
  return { root, files: tree.files, bytes: tree.bytes, warnings: state.warnings };
}

async function readImage(ref: SourceReference): Promise<Image> {
  const layout = ref.path;
  const marker = await readCapped(path.join(layout, 'oci-layout'), MAX_JSON_BLOB_BYTES, 'oci-layout file');
  if (marker === null) {
    const exists = await fs.stat(layout).then(() => true, () => false);
    if (!exists) throw new SourceError(`source not found: ${ref.original}`);
    throw new SourceError(`not an OCI image layout: ${layout} has no oci-layout file`);
  }
  const markerJson = parseJson(marker, `${layout}/oci-layout`);
  if (!isRecord(markerJson) || markerJson.imageLayoutVersion !== '1.0.0') {
    throw new SourceError(`${layout}/oci-layout: unsupported imageLayoutVersion (expected 1.0.0)`);
  }
  const indexData = await readCapped(path.join(layout, 'index.json'), MAX_JSON_BLOB_BYTES, 'index.json');
  if (indexData === null) throw new SourceError(`not an OCI image layout: ${layout} has no index.json`);
  const index = parseJson(indexData, `${layout}/index.json`);
  const entries = manifestsOf(index, `${layout}/index.json`);

  const desc = selectEntry(entries, ref);
  return loadImage(layout, desc, 0);
}

function manifestsOf(index: unknown, what: string): Descriptor[] {
  if (!isRecord(index) || !Array.isArray(index.manifests)) throw new SourceError(`${what} has no manifests list`);
  return index.manifests.map((m, i) => toDescriptor(m, `${what} manifests[${i}]`));
}

function tagOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME];
}

/** Cosign signatures, attestations and SBOMs share the layout (`cosign save`); they are not the payload. */
function isSignatureEntry(d: Descriptor): boolean {
  const kind = d.annotations?.kind ?? '';
  if (/^dev\.cosignproject\.cosign\/(sigs|atts|sboms)$/.test(kind)) return true;
  if (/^sha256-[0-9a-f]{64}\.(sig|att|sbom)$/.test(tagOf(d) ?? '')) return true;
  return d.artifactType !== undefined;
}

function isImageEntry(d: Descriptor): boolean {
  return (MANIFEST_TYPES.has(d.mediaType) || INDEX_TYPES.has(d.mediaType)) && !isSignatureEntry(d);
}

function listTags(entries: Descriptor[]): string {
  const tags = entries.map(tagOf).filter((t): t is string => t !== undefined);
  return tags.length > 0 ? tags.join(', ') : '(none)';
}

function selectEntry(entries: Descriptor[], ref: SourceReference): Descriptor {
  const where = ref.original;
  let byTag: Descriptor | undefined;
  if (ref.tag !== undefined) {
    byTag = entries.find((d) => tagOf(d) === ref.tag && !isSignatureEntry(d)) ?? entries.find((d) => tagOf(d) === ref.tag);
    if (byTag === undefined) {
      throw new SourceError(`tag '${ref.tag}' not found in ${ref.path}; tags: ${listTags(entries)}`);
    }
  }
  if (ref.digest !== undefined) {
    if (byTag !== undefined && byTag.digest !== ref.digest) {
      throw new SourceError(`tag '${ref.tag}' in ${ref.path} points to ${byTag.digest}, not ${ref.digest}`);
    }
    // A pinned digest may name a manifest inside a nested index; its blob is checked by content.
    return entries.find((d) => d.digest === ref.digest) ?? { mediaType: '', digest: ref.digest, size: -1 };
  }
  if (byTag !== undefined) return byTag;
  const images = entries.filter(isImageEntry);
  if (images.length === 1 && images[0] !== undefined) return images[0];
  if (images.length === 0) throw new SourceError(`no image manifest in ${where}`);
  throw new SourceError(`${where} holds ${images.length} images; pick one by tag: ${listTags(images)}`);
}

async function loadImage(layout: string, desc: Descriptor, depth: number): Promise<Image> {
  const doc = await readJsonBlob(layout, desc, 'manifest');
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
    return loadImage(layout, pickPlatform(manifestsOf(doc, `index ${desc.digest}`), desc.digest), depth + 1);
  }
  if (!MANIFEST_TYPES.has(mediaType)) {
    throw new SourceError(`manifest ${desc.digest} has unsupported media type '${mediaType}'`);
  }
  const configDesc = toDescriptor(doc.config, `manifest ${desc.digest} config`);
  if (!Array.isArray(doc.layers)) throw new SourceError(`manifest ${desc.digest} has no layers list`);
  const layers = doc.layers.map((l, i) => {
    const d = toDescriptor(l, `manifest ${desc.digest} layers[${i}]`);
    if (/zstd/.test(d.mediaType)) throw new SourceError('zstd layers are not supported in this version');
    if (!LAYER_TYPES.has(d.mediaType)) {
      throw new SourceError(`layer ${d.digest} has unsupported media type '${d.mediaType}'`);
    }
    return { mediaType: d.mediaType, digest: d.digest, size: d.size };
  });
  await Promise.all(layers.map((l) => checkBlobPresent(layout, l)));

  const config = await readJsonBlob(layout, configDesc, 'config');
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

/** From a multi-platform index: linux/amd64, or the only image there is. */
function pickPlatform(entries: Descriptor[], indexDigest: string): Descriptor {
  // Buildx attestation manifests ride along as `unknown/unknown` platform entries.
  const images = entries.filter(
    (d) => MANIFEST_TYPES.has(d.mediaType) && !isSignatureEntry(d) && d.platform?.os !== 'unknown',
  );
  const amd64 = images.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64');
  if (amd64 !== undefined) return amd64;
  if (images.length === 1 && images[0] !== undefined) return images[0];
  const platforms = images.map((d) => `${d.platform?.os ?? '?'}/${d.platform?.architecture ?? '?'}`).join(', ');
  throw new SourceError(`image index ${indexDigest} has no linux/amd64 image (platforms: ${platforms || 'none'})`);
}

async function checkBlobPresent(layout: string, layer: LayerDescriptor): Promise<void> {
  const st = await fs.stat(blobPath(layout, layer.digest)).catch(() => null);
  if (st === null || !st.isFile()) throw new SourceError(`layer blob ${layer.digest} is missing from ${layout}`);
  if (st.size !== layer.size) {
    throw new SourceError(`layer blob ${layer.digest} has ${st.size} bytes, descriptor says ${layer.size}`);
  }
}
