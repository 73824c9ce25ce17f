/**
 * `oci-layout:` sources (e.g. made by `cosign save` or `skopeo copy … oci:`): pick the image from
 * index.json, read and verify manifest and config, then apply the layers into the staging tree.
 */
import fs from 'node:fs/promises';
import { SourceError } from '../errors.js';
import { applyImage } from './apply-image.js';
import { blobRel, MAX_JSON_BLOB_BYTES, parseJson, readJsonBlob, isRecord, type Descriptor } from './blobs.js';
import { archiveFiles, directoryFiles, type LayoutFiles } from './layout-files.js';
import { indexTar } from './tar-index.js';
import { collectSignatureBlobs, cosignSignatureTag, readBlobBytes, type SignatureBlobs } from './signature.js';
import type { Platform } from './platform.js';
import { INDEX_TYPES, isSignatureEntry, loadImage, manifestsOf, MANIFEST_TYPES, tagOf, type BlobStore, type Image } from './image.js';
import {
  SourceNotFoundError,
  type LayerDescriptor,
  type LayoutReference,
  type ResolvedSource,
  type SourceDriver,
  type UnpackLimits,
  type UnpackResult,
  type LayerProgress,
} from './types.js';

/** Blobs of an OCI image layout (directory or archive): blobs/sha256/<hex>, read with digest checks. */
function layoutStore(files: LayoutFiles): BlobStore {
  return {
    readJson: (desc, what) => readJsonBlob(files, desc, what),
    openBlob: (layer) => files.open(blobRel(layer.digest, files.label)),
    checkLayer: (layer) => checkBlobPresent(files, layer),
  };
}

/** The layout's files: a directory for `oci-layout:`, the indexed tar for `oci-archive:`. */
async function filesOf(ref: LayoutReference): Promise<LayoutFiles> {
  return ref.kind === 'oci-archive' ? archiveFiles(await indexTar(ref.path, ref.original)) : directoryFiles(ref.path);
}

/**
 * `oci-layout:` and `oci-archive:` (the same layout, in a directory or a tar). One driver serves one
 * run: the archive is indexed once and the image read at resolve is reused by digest for the unpack
 * (its manifest and config were checked against their digests when read; the layers are checked
 * while they stream), so the steps do not re-read the layout.
 */
export function layoutDriver(ref: LayoutReference, platform?: Platform): SourceDriver {
  let files: Promise<LayoutFiles> | undefined;
  const layoutFiles = (): Promise<LayoutFiles> => (files ??= filesOf(ref));
  const images = new Map<string, Image>();
  const driver: SourceDriver = {
    resolve: async () => {
      const image = await readImage(await layoutFiles(), ref, platform);
      images.set(image.manifestDigest, image);
      return { ref, driver, digest: image.manifestDigest, layers: image.layers, annotations: image.annotations };
    },
    signature: async (resolved) => readLayoutSignature(ref, await layoutFiles(), resolved.digest),
    noSignatureReason: (resolved) => `no signature ${cosignSignatureTag(resolved.digest)} found beside the image in ${ref.original}`,
    unpack: async (resolved, root, limits, progress) =>
      unpackOciLayout(ref, await layoutFiles(), images.get(resolved.digest), resolved, root, limits, platform, progress),
  };
  return driver;
}

async function unpackOciLayout(
  ref: LayoutReference,
  files: LayoutFiles,
  known: Image | undefined,
  resolved: ResolvedSource,
  root: string,
  limits: UnpackLimits,
  platform?: Platform,
  progress?: LayerProgress,
): Promise<UnpackResult> {
  // Re-read by the resolved digest, not the tag: the tag may have moved since resolve, and the
  // signature check ran against this exact digest.
  const pinned: LayoutReference = { kind: ref.kind, path: ref.path, digest: resolved.digest, original: ref.original };
  const image = known ?? (await readImage(files, pinned, platform));
  const same =
    image.layers.length === resolved.layers.length &&
    image.layers.every((l, i) => {
      const r = resolved.layers[i];
      return r !== undefined && r.digest === l.digest && r.size === l.size && r.mediaType === l.mediaType;
    });
  if (!same) throw new SourceError(`layers of ${resolved.digest} differ from the resolved ones in ${ref.original}`);

  return applyImage(layoutStore(files), image, root, limits, progress);
}

async function readImage(files: LayoutFiles, ref: LayoutReference, platform: Platform | undefined): Promise<Image> {
  return loadImage(layoutStore(files), selectEntry(await readIndex(files, ref), ref), platform);
}

/** index.json entries after checking the layout marker. */
async function readIndex(files: LayoutFiles, ref: LayoutReference): Promise<Descriptor[]> {
  const layout = ref.path;
  const marker = await files.read('oci-layout', MAX_JSON_BLOB_BYTES, 'oci-layout file');
  if (marker === null) {
    const exists = await fs.stat(layout).then(
      () => true,
      () => false,
    );
    if (!exists) throw new SourceNotFoundError(`source not found: ${ref.original}`);
    throw new SourceError(`not an OCI image layout: ${layout} has no oci-layout file`);
  }
  const markerJson = parseJson(marker, `${layout}/oci-layout`);
  if (!isRecord(markerJson) || markerJson.imageLayoutVersion !== '1.0.0') {
    throw new SourceError(`${layout}/oci-layout: unsupported imageLayoutVersion (expected 1.0.0)`);
  }
  const indexData = await files.read('index.json', MAX_JSON_BLOB_BYTES, 'index.json');
  if (indexData === null) throw new SourceError(`not an OCI image layout: ${layout} has no index.json`);
  const index = parseJson(indexData, `${layout}/index.json`);
  return manifestsOf(index, `${layout}/index.json`);
}

/**
 * The cosign signature manifest for `imageDigest` in a layout or archive: the entry tagged
 * `sha256-<hex>.sig` (skopeo copies of the tag), else the single `dev.cosignproject.cosign/sigs` entry
 * (`cosign save`). Whether it really signs this digest is for the verifier to decide.
 */
async function readLayoutSignature(ref: LayoutReference, files: LayoutFiles, imageDigest: string): Promise<SignatureBlobs | undefined> {
  const entries = await readIndex(files, ref);
  const tag = cosignSignatureTag(imageDigest);
  const sigs = entries.filter((d) => d.annotations?.kind === 'dev.cosignproject.cosign/sigs');
  const entry = entries.find((d) => tagOf(d) === tag) ?? (sigs.length === 1 ? sigs[0] : undefined);
  if (!entry) return undefined;
  const manifest = await files.read(blobRel(entry.digest, files.label), MAX_JSON_BLOB_BYTES, 'signature manifest');
  if (manifest === null) throw new SourceError(`signature manifest ${entry.digest} is missing from ${files.label}`);
  return collectSignatureBlobs(manifest, entry.digest, (desc) => readBlobBytes(files, desc), `${ref.original}@${entry.digest}`);
}

function isImageEntry(d: Descriptor): boolean {
  return (MANIFEST_TYPES.has(d.mediaType) || INDEX_TYPES.has(d.mediaType)) && !isSignatureEntry(d);
}

function listTags(entries: Descriptor[]): string {
  const tags = entries.map(tagOf).filter((t): t is string => t !== undefined);
  return tags.length > 0 ? tags.join(', ') : '(none)';
}

function selectEntry(entries: Descriptor[], ref: LayoutReference): Descriptor {
  const where = ref.original;
  let byTag: Descriptor | undefined;
  if (ref.tag !== undefined) {
    byTag = entries.find((d) => tagOf(d) === ref.tag && !isSignatureEntry(d)) ?? entries.find((d) => tagOf(d) === ref.tag);
    if (byTag === undefined) {
      throw new SourceNotFoundError(`tag '${ref.tag}' not found in ${ref.path}; tags: ${listTags(entries)}`);
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

async function checkBlobPresent(files: LayoutFiles, layer: LayerDescriptor): Promise<void> {
  const size = await files.size(blobRel(layer.digest, files.label));
  if (size === null) throw new SourceError(`layer blob ${layer.digest} is missing from ${files.label}`);
  if (size !== layer.size) {
    throw new SourceError(`layer blob ${layer.digest} has ${size} bytes, descriptor says ${layer.size}`);
  }
}
