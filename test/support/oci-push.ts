/**
 * Pushing raw blobs and manifests with the distribution API (POST upload + PUT), for artifacts skopeo
 * does not make: cosign signature manifests under `sha256-<hex>.sig`.
 */
import { createHash } from 'node:crypto';

export function digestOf(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

export async function pushBlob(host: string, repo: string, bytes: Uint8Array, auth?: string): Promise<string> {
  const digest = digestOf(bytes);
  const headers: Record<string, string> = auth ? { Authorization: auth } : {};
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location')!, `http://${host}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: bytes });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(host: string, repo: string, tag: string, manifest: Uint8Array, mediaType: string, auth?: string): Promise<string> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType, ...(auth ? { Authorization: auth } : {}) },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push: HTTP ${res.status} ${await res.text()}`);
  return digestOf(manifest);
}

export const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A cosign-shaped signature manifest around given payload blobs and layer annotations. */
export function signatureManifest(config: Uint8Array, layers: { blob: Uint8Array; annotations: Record<string, string> }[]): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: SIMPLESIGNING, digest: digestOf(l.blob), size: l.blob.length, annotations: l.annotations })),
    }),
  );
}

/** Push a signature manifest (and its blobs) under `sha256-<hex>.sig` of `imageDigest`. */
export async function pushSignature(
  host: string,
  repo: string,
  imageDigest: string,
  layers: { blob: Uint8Array; annotations: Record<string, string> }[],
): Promise<string> {
  const config = Buffer.from('{}');
  await pushBlob(host, repo, config);
  for (const l of layers) await pushBlob(host, repo, l.blob);
  return pushManifest(host, repo, `sha256-${imageDigest.slice(7)}.sig`, signatureManifest(config, layers), OCI_MANIFEST);
}
