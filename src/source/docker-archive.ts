/**
 * `docker-archive:` sources (`docker save`, `skopeo copy … docker-archive:`): manifest.json names the
 * config and the layers (uncompressed tars named by DiffID). The archive carries no registry manifest,
 * so the payload's identity is the image ID — the sha256 of the config — and every layer is checked
 * against the config's `rootfs.diff_ids` while it streams.
 */
import { createHash } from 'node:crypto';
import { SourceError } from '../errors.js';
import { applyImage } from './apply-image.js';
import { isRecord, MAX_JSON_BLOB_BYTES, parseJson, stringMap } from './blobs.js';
import type { BlobStore, Image } from './image.js';
import { archiveFiles, type LayoutFiles } from './layout-files.js';
import { isSha256Digest } from './reference.js';
import { indexTar } from './tar-index.js';
import {
  SourceNotFoundError,
  type DockerArchiveReference,
  type LayerDescriptor,
  type ResolvedSource,
  type SourceDriver,
  type UnpackLimits,
  type UnpackResult,
  type LayerProgress,
} from './types.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';

interface ArchiveImage {
  image: Image;
  /** Layer descriptor digest → archive entry name. */
  names: Map<string, string>;
}

export function dockerArchiveDriver(ref: DockerArchiveReference): SourceDriver {
  // Indexed once per run (resolve and unpack share it); every layer is still checked while it streams.
  let files: Promise<LayoutFiles> | undefined;
  const archive = (): Promise<LayoutFiles> => (files ??= indexTar(ref.path, ref.original).then(archiveFiles));
  const driver: SourceDriver = {
    resolve: async () => {
      const { image } = await readArchive(ref, await archive());
      return { ref, driver, digest: image.manifestDigest, layers: image.layers, annotations: image.annotations };
    },
    // `docker save` keeps no registry manifest, so there is nothing a cosign signature could name.
    signature: async () => undefined,
    noSignatureReason: () => 'docker-archive: sources carry no image signature',
    unpack: async (resolved, root, limits, progress) => unpackDockerArchive(ref, await archive(), resolved, root, limits, progress),
  };
  return driver;
}

async function unpackDockerArchive(
  ref: DockerArchiveReference,
  files: LayoutFiles,
  resolved: ResolvedSource,
  root: string,
  limits: UnpackLimits,
  progress?: LayerProgress,
): Promise<UnpackResult> {
  const { image, names } = await readArchive(ref, files);
  // Same guarantee as for layouts: what is unpacked is what was resolved (and possibly verified).
  if (image.manifestDigest !== resolved.digest) throw new SourceError(`${ref.original} changed since it was resolved`);
  const store: BlobStore = {
    readJson: () => Promise.reject(new SourceError('docker-archive has no JSON blobs by digest')),
    openBlob: (layer: LayerDescriptor) => files.open(names.get(layer.digest)!),
  };
  return applyImage(store, image, root, limits, progress);
}

async function readArchive(ref: DockerArchiveReference, files: LayoutFiles): Promise<ArchiveImage> {
  const manifestData = await files.read('manifest.json', MAX_JSON_BLOB_BYTES, 'manifest.json');
  if (manifestData === null) throw new SourceError(`not a docker archive: ${ref.original} has no manifest.json`);
  const list = parseJson(manifestData, `${ref.original} manifest.json`);
  if (!Array.isArray(list) || list.length === 0) throw new SourceError(`${ref.original}: manifest.json lists no image`);
  const entry = pick(list, ref);

  const configName = typeof entry.Config === 'string' ? entry.Config : '';
  const configData = await files.read(configName, MAX_JSON_BLOB_BYTES, 'image config');
  if (configData === null) throw new SourceError(`${ref.original}: config ${configName.slice(0, 100)} is missing`);
  const imageId = 'sha256:' + createHash('sha256').update(configData).digest('hex');
  // A config named by its hash must hash to that name; anything else means a tampered archive.
  const named = /([0-9a-f]{64})(\.json)?$/.exec(configName)?.[1];
  if (named && `sha256:${named}` !== imageId) throw new SourceError(`${ref.original}: config ${configName} does not match its name (hashes to ${imageId})`);
  if (ref.digest && ref.digest !== imageId) throw new SourceError(`${ref.original}: image ID is ${imageId}, not ${ref.digest}`);

  const config = parseJson(configData, 'image config');
  const diffIds = isRecord(config) && isRecord(config.rootfs) ? config.rootfs.diff_ids : undefined;
  const layerNames = Array.isArray(entry.Layers) ? entry.Layers : [];
  if (!Array.isArray(diffIds) || diffIds.length !== layerNames.length || !diffIds.every((d): d is string => typeof d === 'string' && isSha256Digest(d))) {
    throw new SourceError(`${ref.original}: config rootfs.diff_ids does not match the ${layerNames.length} layers`);
  }
  const names = new Map<string, string>();
  const layers: LayerDescriptor[] = [];
  for (const [i, name] of layerNames.entries()) {
    if (typeof name !== 'string') throw new SourceError(`${ref.original}: layer ${i} has no file name`);
    const size = await files.size(name);
    if (size === null) throw new SourceError(`${ref.original}: layer ${name.slice(0, 100)} is missing`);
    // Uncompressed layers: the blob digest is the DiffID, so applyLayer checks both at once.
    layers.push({ mediaType: TAR, digest: diffIds[i]!, size });
    names.set(diffIds[i]!, name);
  }
  const labels = isRecord(config) && isRecord(config.config) && isRecord(config.config.Labels) ? stringMap(config.config.Labels) : {};
  return { image: { manifestDigest: imageId, layers, diffIds, annotations: labels }, names };
}

function pick(list: unknown[], ref: DockerArchiveReference): Record<string, unknown> {
  const entries = list.filter(isRecord);
  const tagsOf = (e: Record<string, unknown>): string[] => (Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : []);
  if (ref.tag !== undefined) {
    // `zeta/provisioning:1.0` matches `docker.io/zeta/provisioning:1.0` as docker itself shortens it.
    const hit = entries.find((e) => tagsOf(e).some((t) => t === ref.tag || t.endsWith('/' + ref.tag)));
    if (!hit) throw new SourceNotFoundError(`tag '${ref.tag}' not found in ${ref.path}; tags: ${entries.flatMap(tagsOf).join(', ') || '(none)'}`);
    return hit;
  }
  if (entries.length === 1) return entries[0]!;
  throw new SourceError(`${ref.original} holds ${entries.length} images; pick one by tag: ${entries.flatMap(tagsOf).join(', ')}`);
}
