/**
 * Registry sources. Resolving costs one manifest request (HEAD where the registry answers with a
 * digest), so the up-to-date check downloads no blob; unpacking then fetches everything by digest.
 * One client per run: the token negotiated at resolve serves the signature and the layers too.
 */
import { applyImage } from '../apply-image.js';
import { collectSignatureBlobs, cosignSignatureTag } from '../signature.js';
import { loadImage } from '../image.js';
import type { Platform } from '../platform.js';
import type { RegistryReference, SourceDriver } from '../types.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { createRegistryFetch, type TransportOptions } from './transport.js';
import { findCredentials } from './logins.js';

export type { RegistryOptions } from './client.js';
export type { Credentials } from './auth.js';

export interface RegistrySettings extends Omit<RegistryOptions, 'insecure'> {
  /** Hosts (host[:port]) that may be reached over plain HTTP. */
  insecureHosts?: string[];
  transport?: TransportOptions;
  /** docker config.json, .dockerconfigjson/.dockercfg, or a mounted pull-Secret directory; used when no explicit credentials are set. */
  authFile?: string;
  /** Where the container tools' login files are looked for (XDG_RUNTIME_DIR, DOCKER_CONFIG, HOME); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Time a docker credential helper may take (default 10 s). */
  helperTimeoutMs?: number;
}

export function registryDriver(ref: RegistryReference, settings: RegistrySettings, platform?: Platform): SourceDriver {
  let client: Promise<RegistryClient> | undefined;
  const session = (): Promise<RegistryClient> => (client ??= openClient(ref, settings));
  const driver: SourceDriver = {
    resolve: async () => ({ ref, driver, digest: await (await session()).resolveDigest(), layers: [], annotations: {} }),
    /** The cosign signature stored beside the image in the same repository under `sha256-<hex>.sig`. */
    signature: async (resolved) => {
      const c = await session();
      const tag = cosignSignatureTag(resolved.digest);
      const found = await c.findManifest(tag);
      if (!found) return undefined;
      const location = `${ref.image.registry}/${ref.image.repository}:${tag}`;
      return collectSignatureBlobs(found.bytes, found.digest, (desc) => c.readBlob(desc), location);
    },
    noSignatureReason: (resolved) =>
      `no signature ${cosignSignatureTag(resolved.digest)} found beside the image in ${ref.image.registry}/${ref.image.repository}`,
    unpack: async (resolved, root, limits, progress) => {
      const c = await session();
      // By digest, never by tag again: the tag may have moved since resolve.
      const manifest = await c.getManifest(resolved.digest);
      const store = c.store(manifest);
      const image = await loadImage(store, { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }, platform);
      return applyImage(store, image, root, limits, progress);
    },
  };
  return driver;
}

async function openClient(ref: RegistryReference, settings: RegistrySettings): Promise<RegistryClient> {
  const insecure = (settings.insecureHosts ?? []).includes(ref.image.registry);
  const fetchImpl = settings.fetchImpl ?? (await createRegistryFetch(settings.transport));
  const credentials = settings.credentials ?? (await findCredentials(ref.image.registry, settings));
  if (credentials) settings.onSecret?.(credentials.password);
  return new RegistryClient(ref.image, { ...settings, credentials, insecure, fetchImpl, caFile: settings.transport?.caFile });
}
