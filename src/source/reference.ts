/**
 * Parses the `--source` reference into a `SourceReference`. Pure: no file system access, so every
 * malformed form is a usage error (exit 2) before anything is read.
 */
import path from 'node:path';
import { UsageError } from '../errors.js';
import { parseImageReference } from './registry/reference.js';
import type { DockerArchiveReference, LayoutReference, SourceReference } from './types.js';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** Schemes skopeo/containers-image know that this version cannot read yet. */
const UNSUPPORTED_SCHEMES = new Set(['oci', 'docker-daemon', 'containers-storage']);

export function isSha256Digest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function parseSourceReference(ref: string, cwd: string = process.cwd()): SourceReference {
  if (ref.length === 0) throw new UsageError('empty source reference', USAGE_HINT);
  if (/[\0\r\n]/.test(ref)) throw new UsageError('source reference contains control characters');

  if (ref.startsWith('/') || ref.startsWith('.')) {
    throw new UsageError(`source reference '${ref}' has no scheme`, `write dir:${ref} or oci-layout:${ref}`);
  }

  const m = /^([A-Za-z][A-Za-z0-9+-]*):(.*)$/s.exec(ref);
  // `localhost:5000/repo` has a port, not a scheme; `host.tld/repo:tag` has no scheme at all.
  if (!m || /^\d+(\/|$)/.test(m[2] ?? '')) return registryReference(ref);
  const scheme = (m[1] ?? '').toLowerCase();
  const rest = m[2] ?? '';

  if (scheme === 'dir') {
    return { kind: 'dir', path: absolutePath(rest, ref, cwd), original: ref };
  }
  if (scheme === 'oci-layout' || scheme === 'oci-archive' || scheme === 'docker-archive') return parseLayoutLike(scheme, rest, ref, cwd);
  if (scheme === 'docker' && rest.startsWith('//')) return registryReference(ref);
  if (UNSUPPORTED_SCHEMES.has(scheme)) {
    const what = `'${scheme}:' references`;
    throw unsupported(ref, what, scheme === 'oci' ? `write oci-layout:${rest}` : undefined);
  }
  // An image tag never holds a '/', so `ftp:/x` is a mistyped scheme, not an image.
  if (rest.includes('/')) throw new UsageError(`unknown source scheme '${scheme}:' in '${ref}'`, USAGE_HINT);
  // `ubuntu:22.04`: a Docker Hub image whose tag looks like a scheme.
  return registryReference(ref);
}

function registryReference(ref: string): SourceReference {
  return { kind: 'registry', image: parseImageReference(ref), original: ref };
}

const USAGE_HINT =
  'use host[:port]/repository[:tag][@sha256:<digest>], dir:PATH, oci-layout:PATH[:TAG|@sha256:<digest>], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]';

function unsupported(ref: string, what: string, hint?: string): UsageError {
  return new UsageError(`${what} are not supported in this version ('${ref}')`, hint ?? USAGE_HINT);
}

/** `PATH[:TAG][@sha256:…]` for layouts and archives (a docker-archive tag may be `name:tag`). */
function parseLayoutLike(
  kind: 'oci-layout' | 'oci-archive' | 'docker-archive',
  rest: string,
  ref: string,
  cwd: string,
): LayoutReference | DockerArchiveReference {
  let pathPart = rest;
  let tag: string | undefined;
  let digest: string | undefined;

  // `@` introduces a digest; it is split off first because a digest itself contains a colon.
  const at = pathPart.lastIndexOf('@');
  if (at !== -1) {
    digest = pathPart.slice(at + 1);
    pathPart = pathPart.slice(0, at);
    if (!isSha256Digest(digest)) {
      throw new UsageError(`bad digest '${digest}' in '${ref}': expected sha256: followed by 64 lowercase hex digits`);
    }
  }
  // Like skopeo's oci: transport, the first colon separates path and tag (paths cannot hold one).
  const colon = pathPart.indexOf(':');
  if (colon !== -1) {
    tag = pathPart.slice(colon + 1);
    pathPart = pathPart.slice(0, colon);
    if (tag.length === 0 || tag.length > 255 || /\s/.test(tag)) {
      throw new UsageError(`bad tag '${tag}' in '${ref}'`);
    }
  }
  const result: LayoutReference | DockerArchiveReference = { kind, path: absolutePath(pathPart, ref, cwd), original: ref };
  if (tag !== undefined) result.tag = tag;
  if (digest !== undefined) result.digest = digest;
  return result;
}

function absolutePath(p: string, ref: string, cwd: string): string {
  if (p.length === 0) throw new UsageError(`empty path in source reference '${ref}'`, USAGE_HINT);
  return path.resolve(cwd, p);
}
