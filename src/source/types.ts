/** Contracts of the source stage: resolve a reference cheaply, then unpack it into a staging tree. */

import { SourceError } from '../errors.js';
import type { ImageReference } from './registry/reference.js';
import type { SignatureBlobs } from './signature.js';

/** One member per source kind; each is read by its own driver and no other stage looks inside. */
export type SourceReference = DirReference | LayoutReference | DockerArchiveReference | RegistryReference;
export type SourceKind = SourceReference['kind'];

interface ReferenceBase {
  /** The reference as the user wrote it (for reports). */
  original: string;
}
export interface DirReference extends ReferenceBase {
  kind: 'dir';
  /** Absolute path of the directory. */
  path: string;
}
export interface LayoutReference extends ReferenceBase {
  kind: 'oci-layout' | 'oci-archive';
  /** Absolute path of the layout directory or archive file. */
  path: string;
  /** Tag (`org.opencontainers.image.ref.name`) to pick from the index. */
  tag?: string;
  /** `sha256:<hex>` pinned by the reference. */
  digest?: string;
}
export interface DockerArchiveReference extends ReferenceBase {
  kind: 'docker-archive';
  path: string;
  /** `name:tag` from the archive's RepoTags. */
  tag?: string;
  /** Image ID (config digest) pinned by the reference. */
  digest?: string;
}
export interface RegistryReference extends ReferenceBase {
  kind: 'registry';
  /** Host, repository, tag, digest. */
  image: ImageReference;
}

/** "Not there": an image, tag, blob or path that does not exist (exit 4, never a verification failure). */
export class SourceNotFoundError extends SourceError {}

/**
 * One per source kind and run: resolve the identity cheaply, fetch the image signature stored beside
 * it, open and apply its blobs. A driver keeps what it learnt across the steps (the registry client and
 * its token), so a run negotiates once.
 */
export interface SourceDriver {
  resolve(): Promise<ResolvedSource>;
  /** The cosign signature stored with the image; undefined when there is none. */
  signature(resolved: ResolvedSource): Promise<SignatureBlobs | undefined>;
  /** Why there is no signature (for the report and the failure), when `signature` found none. */
  noSignatureReason(resolved: ResolvedSource): string;
  unpack(resolved: ResolvedSource, root: string, limits: UnpackLimits, progress?: LayerProgress): Promise<UnpackResult>;
}

export interface ResolvedSource {
  ref: SourceReference;
  /** The driver that resolved it: later steps go through it (and its registry session). */
  driver: SourceDriver;
  /**
   * Identity of the payload: the image manifest digest for images, a digest over the tree
   * (sorted relative paths, modes and file sha256) for `dir:`. Drives the up-to-date check.
   */
  digest: string;
  /** Layers to apply bottom-up (known at resolve for layouts; a registry resolve stops at the digest). */
  layers: LayerDescriptor[];
  /** Image config labels / annotations worth reporting (e.g. revision). */
  annotations: Record<string, string>;
}

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface UnpackLimits {
  maxTotalBytes: number;
  maxEntries: number;
  maxFileBytes: number;
  maxPathLength: number;
}

export interface UnpackResult {
  /** Absolute path of the staging tree (a fresh directory the caller owns and removes). */
  root: string;
  files: number;
  bytes: number;
  warnings: string[];
  /** Image labels and manifest annotations, when only known after unpacking (registry images). */
  annotations?: Record<string, string>;
}

/** Progress of one layer: emitted while its blob streams (done=false) and once when it is applied. */
export interface LayerEvent {
  /** 1-based position, bottom layer first. */
  index: number;
  count: number;
  digest: string;
  /** Compressed size from the descriptor. */
  size: number;
  /** Blob bytes read so far. */
  bytes: number;
  /** Milliseconds since the layer was opened. */
  ms: number;
  done: boolean;
}
export type LayerProgress = (event: LayerEvent) => void;
