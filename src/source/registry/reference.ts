/**
 * Registry image references (`host[:port]/repo[:tag][@sha256:…]`), normalised the way Docker and
 * skopeo do: no host → Docker Hub, one-segment Hub names get `library/`, no tag and no digest →
 * `latest`. Pure; a malformed reference is a usage error naming the offending part.
 */
import { isIPv6 } from 'node:net';
import { UsageError } from '../../errors.js';

export interface ImageReference {
  /** Host[:port] as written (Docker Hub: `docker.io`). */
  registry: string;
  /** Host[:port] the API is served from (Docker Hub: `registry-1.docker.io`). */
  apiHost: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

export function parseImageReference(input: string): ImageReference {
  const ref = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const bad = (what: string): never => {
    throw new UsageError(`invalid image reference '${input}': ${what}`, 'expected host[:port]/repository[:tag][@sha256:<64 hex>]');
  };
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(`digest '${digest}' is not sha256: followed by 64 lowercase hex digits`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`tag '${tag}' is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  // Like Docker: the first segment is a host when it has a dot or a port, or is localhost.
  if (parts.length > 1 && (/[.:]/.test(parts[0]!) || parts[0] === 'localhost')) registry = parts.shift()!;
  // An IPv6 literal keeps its brackets, as in URLs and in --insecure-registry: `[fd00::1]:5000`.
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(registry);
  const [host, port, ...extra] = v6 ? [v6[1], v6[2]] : registry.split(':');
  if (v6 ? !isIPv6(v6[1]!) : !host || !HOST.test(host) || extra.length > 0) bad(`registry host '${registry}' is not valid`);
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) bad(`port '${port}' is not valid`);
  if (registry === 'docker.io' || registry === 'index.docker.io') {
    registry = 'docker.io';
    if (parts.length === 1) parts.unshift('library');
  }
  for (const p of parts) if (!COMPONENT.test(p)) bad(`repository component '${p}' is not valid (lower-case letters, digits, separators . _ __ -)`);
  const repository = parts.join('/');
  if (repository.length === 0 || repository.length > 255) bad('repository name is empty or longer than 255 characters');
  return {
    registry,
    apiHost: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
    repository,
    tag: tag ?? (digest ? undefined : 'latest'),
    digest,
  };
}
