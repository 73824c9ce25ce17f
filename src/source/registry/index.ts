/**
 * Registry sources. Resolving costs one manifest request (HEAD where the registry answers with a
 * digest), so the up-to-date check downloads no blob; unpacking then fetches everything by digest.
 */
import { SourceError } from '../../errors.js';
import { applyImage } from '../apply-image.js';
import { collectSignatureBlobs, cosignSignatureTag, type SignatureBlobs } from '../signature.js';
import { loadImage } from '../image.js';
import type { Platform } from '../platform.js';
import type { ResolvedSource, SourceReference, UnpackLimits, UnpackResult, LayerProgress } from '../types.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { createRegistryFetch, type TransportOptions } from './transport.js';
import { credentialsFor, loadAuthFile } from './credentials.js';

export type { RegistryOptions } from './client.js';
export type { Credentials } from './auth.js';

export interface RegistrySettings extends Omit<RegistryOptions, 'insecure'> {
  /** Hosts (host[:port]) that may be reached over plain HTTP. */
  insecureHosts?: string[];
  transport?: TransportOptions;
  /** docker config.json, .dockerconfigjson/.dockercfg, or a mounted pull-Secret directory; used when no explicit credentials are set. */
  authFile?: string;
}

async function clientFor(ref: SourceReference, settings: RegistrySettings): Promise<RegistryClient> {
  if (!ref.image) throw new SourceError(`${ref.original} is not a registry reference`);
  const insecure = (settings.insecureHosts ?? []).includes(ref.image.registry);
  const fetchImpl = settings.fetchImpl ?? (await createRegistryFetch(settings.transport));
  let credentials = settings.credentials;
  if (!credentials && settings.authFile) {
    credentials = credentialsFor(ref.image.registry, await loadAuthFile(settings.authFile));
    if (credentials) settings.onSecret?.(credentials.password);
  }
  return new RegistryClient(ref.image, { ...settings, credentials, insecure, fetchImpl });
}

export async function resolveRegistry(ref: SourceReference, settings: RegistrySettings): Promise<ResolvedSource> {
  const digest = await (await clientFor(ref, settings)).resolveDigest();
  return { ref, digest, layers: [], annotations: {} };
}

/** The cosign signature stored beside the image in the same repository under `sha256-<hex>.sig`. */
export async function fetchRegistrySignature(resolved: ResolvedSource, settings: RegistrySettings): Promise<SignatureBlobs | undefined> {
  const client = await clientFor(resolved.ref, settings);
  const tag = cosignSignatureTag(resolved.digest);
  const found = await client.findManifest(tag);
  if (!found) return undefined;
  const location = `${resolved.ref.image!.registry}/${resolved.ref.image!.repository}:${tag}`;
  return collectSignatureBlobs(found.bytes, found.digest, (desc) => client.readBlob(desc), location);
}

export async function unpackRegistry(resolved: ResolvedSource, root: string, limits: UnpackLimits, settings: RegistrySettings, platform?: Platform, progress?: LayerProgress): Promise<UnpackResult> {
  const client = await clientFor(resolved.ref, settings);
  // By digest, never by tag again: the tag may have moved since resolve.
  const manifest = await client.getManifest(resolved.digest);
  const image = await loadImage(client.store(), { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }, platform);
  return applyImage(client.store(), image, root, limits, progress);
}
