/**
 * The source stage: resolve a reference cheaply (digest, layers, annotations), then unpack it into
 * a staging tree the later stages verify and process. Nothing outside the staging tree is written.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, SourceError, ZetaError } from '../errors.js';
import { dirDriver } from './dir.js';
import { dockerArchiveDriver } from './docker-archive.js';
import { registryDriver, type RegistrySettings } from './registry/index.js';
import { layoutDriver } from './oci-layout.js';
import type { SignatureBlobs } from './signature.js';
import type { Platform } from './platform.js';

export type { SignatureBlobs } from './signature.js';
import type { LayerProgress, ResolvedSource, SourceDriver, SourceReference, UnpackLimits, UnpackResult } from './types.js';

export { parseSourceReference } from './reference.js';
export { layerReporter } from './progress.js';
export { parsePlatform, formatPlatform, DEFAULT_PLATFORM, type Platform } from './platform.js';
export type { RegistrySettings, Credentials } from './registry/index.js';
export { SourceNotFoundError } from './types.js';

/** How to reach registries; ignored by the other source kinds. */
export interface SourceOptions {
  registry?: RegistrySettings;
  /** Image to take from a multi-platform index; default linux/amd64, or the index's only image. */
  platform?: Platform;
  /** Told about each layer while it streams and when it is applied. */
  onLayer?: LayerProgress;
  /** Caps for the resolve walk of `dir:` sources (and the default for unpacking). */
  limits?: Partial<UnpackLimits>;
}
export type {
  LayerDescriptor,
  LayerEvent,
  LayerProgress,
  ResolvedSource,
  SourceDriver,
  SourceKind,
  SourceReference,
  UnpackLimits,
  UnpackResult,
} from './types.js';

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

type DriverFactory<K extends SourceReference['kind']> = (ref: Extract<SourceReference, { kind: K }>, options: SourceOptions) => SourceDriver;
/** The only place that maps a kind to its driver (a table, so adding a kind is adding a row). */
const DRIVERS: { [K in SourceReference['kind']]: DriverFactory<K> } = {
  dir: (ref, o) => dirDriver(ref, { ...DEFAULT_UNPACK_LIMITS, ...o.limits }),
  'oci-layout': (ref, o) => layoutDriver(ref, o.platform),
  'oci-archive': (ref, o) => layoutDriver(ref, o.platform),
  'docker-archive': (ref) => dockerArchiveDriver(ref),
  registry: (ref, o) => registryDriver(ref, o.registry ?? {}, o.platform),
};

/** The driver for `ref`; one per run, so a registry session (client, token) serves every step. */
export function openSource(ref: SourceReference, options: SourceOptions = {}): SourceDriver {
  const make = DRIVERS[ref.kind] as DriverFactory<SourceReference['kind']>;
  const driver = make(ref as never, options);
  // What the stages get: every step's unexpected failure worded as this source's, and the resolved
  // descriptor pointing back at this wrapper, so unpack and signature go through it too.
  const wrapped: SourceDriver = {
    resolve: async () => ({ ...(await wrap(ref, () => driver.resolve())), driver: wrapped }),
    signature: (resolved) => wrap(ref, () => driver.signature(resolved)),
    noSignatureReason: (resolved) => driver.noSignatureReason(resolved),
    unpack: (resolved, root, limits, progress) => wrap(ref, () => driver.unpack(resolved, root, limits, progress)),
  };
  return wrapped;
}

export async function resolveSource(ref: SourceReference, options: SourceOptions = {}): Promise<ResolvedSource> {
  return openSource(ref, options).resolve();
}

/**
 * Unpacks into `stagingDir`, which must be absent or empty (it is created when absent), through the
 * driver that resolved it. On failure the directory may hold partial content; the caller owns it and
 * removes it either way. `options` adds progress reporting; the source settings are the resolve's.
 */
export async function unpackSource(
  resolved: ResolvedSource,
  stagingDir: string,
  limits: Partial<UnpackLimits> = {},
  /** Only `onLayer` is read here: the source settings are those the driver was opened with. */
  options: SourceOptions = {},
): Promise<UnpackResult> {
  const effective: UnpackLimits = { ...DEFAULT_UNPACK_LIMITS, ...limits };
  const root = path.resolve(stagingDir);
  await wrap(resolved.ref, () => prepareStaging(root));
  return resolved.driver.unpack(resolved, root, effective, options.onLayer);
}

/**
 * The cosign signature stored with the resolved image: `undefined` when none is stored (registry tag
 * absent, layout without a signature entry) or the source kind cannot carry one; `missingSignatureReason`
 * says which, so the verifier needs to know nothing about source kinds.
 */
export async function fetchImageSignature(resolved: ResolvedSource): Promise<SignatureBlobs | undefined> {
  return resolved.driver.signature(resolved);
}

export function missingSignatureReason(resolved: ResolvedSource): string {
  return resolved.driver.noSignatureReason(resolved);
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
    // Typed errors keep their family: an unreadable --registry-ca is configuration (exit 2), not the source.
    if (err instanceof ZetaError) throw err;
    throw new SourceError(`${ref.original}: ${errorMessage(err)}`, undefined, { cause: err });
  }
}
