/** Contracts of the source stage: resolve a reference cheaply, then unpack it into a staging tree. */

import type { ImageReference } from './registry/reference.js';

export type SourceKind = 'dir' | 'oci-layout' | 'oci-archive' | 'docker-archive' | 'registry';

export interface SourceReference {
  kind: SourceKind;
  /** Absolute path of the directory or OCI layout ('' for registry images). */
  path: string;
  /** Registry images: host, repository, tag, digest. */
  image?: ImageReference;
  /** Tag (`org.opencontainers.image.ref.name`) to pick from an OCI layout index. */
  tag?: string;
  /** `sha256:<hex>` pinned by the reference. */
  digest?: string;
  /** The reference as the user wrote it (for reports). */
  original: string;
}

export interface ResolvedSource {
  ref: SourceReference;
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
