/**
 * The source stage: resolve a reference cheaply (digest, layers, annotations), then unpack it into
 * a staging tree the later stages verify and process. Nothing outside the staging tree is written.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, SourceError } from '../errors.js';
import { resolveDir, unpackDir } from './dir.js';
import { resolveDockerArchive, unpackDockerArchive } from './docker-archive.js';
import { fetchRegistrySignature, resolveRegistry, unpackRegistry, type RegistrySettings } from './registry/index.js';
import { readLayoutSignature, resolveOciLayout, unpackOciLayout } from './oci-layout.js';
import type { SignatureBlobs } from './signature.js';
import type { Platform } from './platform.js';

export type { SignatureBlobs } from './signature.js';
import type { LayerProgress, ResolvedSource, SourceReference, UnpackLimits, UnpackResult } from './types.js';

export { parseSourceReference } from './reference.js';
export { layerReporter } from './progress.js';
export { parsePlatform, formatPlatform, DEFAULT_PLATFORM, type Platform } from './platform.js';
export type { RegistrySettings, Credentials } from './registry/index.js';

/** How to reach registries; ignored by the other source kinds. */
export interface SourceOptions {
  registry?: RegistrySettings;
  /** Image to take from a multi-platform index; default linux/amd64, or the index's only image. */
  platform?: Platform;
  /** Told about each layer while it streams and when it is applied. */
  onLayer?: LayerProgress;
}
export type { LayerDescriptor, LayerEvent, LayerProgress, ResolvedSource, SourceKind, SourceReference, UnpackLimits, UnpackResult } from './types.js';

const MiB = 1024 * 1024;

/**
 * Generous for trust data (the real gematik payloads are ~10 MB), small enough to stop a bomb — and
 * sized for where the payload is staged: the CronJob's memory-backed /tmp (manifests/base/cronjob.yaml,
 * sizeLimit 96Mi = this cap + STAGING_HEADROOM_MIB for the derived truststores). --max-payload-mib
 * raises the byte cap; raise the emptyDir with it (test/source/shapes.test.ts keeps the two in step).
 */
export const DEFAULT_UNPACK_LIMITS: Readonly<UnpackLimits> = Object.freeze({
  maxTotalBytes: 64 * MiB,
  maxEntries: 200_000,
  maxFileBytes: 64 * MiB,
  maxPathLength: 4096,
});
/** Room the staging /tmp needs beyond the payload cap: derived outputs (truststores, keys) and block rounding. */
export const STAGING_HEADROOM_MIB = 32;

export async function resolveSource(ref: SourceReference, options: SourceOptions = {}): Promise<ResolvedSource> {
  return wrap(ref, async () => {
    switch (ref.kind) {
      case 'dir':
        return resolveDir(ref, DEFAULT_UNPACK_LIMITS);
      case 'oci-layout':
      case 'oci-archive':
        return resolveOciLayout(ref, options.platform);
      case 'docker-archive':
        return resolveDockerArchive(ref);
      case 'registry':
        return resolveRegistry(ref, options.registry ?? {});
    }
  });
}

/**
 * Unpacks into `stagingDir`, which must be absent or empty (it is created when absent). On failure
 * the directory may hold partial content; the caller owns it and removes it either way.
 */
export async function unpackSource(
  resolved: ResolvedSource,
  stagingDir: string,
  limits: Partial<UnpackLimits> = {},
  options: SourceOptions = {},
): Promise<UnpackResult> {
  const effective: UnpackLimits = { ...DEFAULT_UNPACK_LIMITS, ...limits };
  const root = path.resolve(stagingDir);
  return wrap(resolved.ref, async () => {
    await prepareStaging(root);
    switch (resolved.ref.kind) {
      case 'dir':
        return unpackDir(resolved, root, effective);
      case 'oci-layout':
      case 'oci-archive':
        return unpackOciLayout(resolved, root, effective, options.platform, options.onLayer);
      case 'docker-archive':
        return unpackDockerArchive(resolved, root, effective, options.onLayer);
      case 'registry':
        return unpackRegistry(resolved, root, effective, options.registry ?? {}, options.platform, options.onLayer);
    }
  });
}

/**
 * The cosign signature of the resolved image, if the source can carry one: `undefined` when none is
 * stored (registry tag absent, layout without a signature entry) or the source kind has none.
 */
export async function fetchImageSignature(resolved: ResolvedSource, options: SourceOptions = {}): Promise<SignatureBlobs | undefined> {
  return wrap(resolved.ref, async () => {
    switch (resolved.ref.kind) {
      case 'registry':
        return fetchRegistrySignature(resolved, options.registry ?? {});
      case 'oci-layout':
      case 'oci-archive':
        return readLayoutSignature(resolved.ref, resolved.digest);
      case 'dir':
      case 'docker-archive':
        return undefined;
    }
  });
}

async function prepareStaging(root: string): Promise<void> {
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(root);
  // Applying onto existing content would mix two payloads; a symlinked root would redirect writes.
  if (!st.isDirectory()) throw new SourceError(`staging directory ${root} is not a directory`);
  if ((await fs.readdir(root)).length > 0) throw new SourceError(`staging directory ${root} is not empty`);
}

/** Unexpected I/O failures still belong to this stage: report them as a source error (exit 4). */
async function wrap<T>(ref: SourceReference, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`${ref.original}: ${errorMessage(err)}`, undefined, { cause: err });
  }
}
