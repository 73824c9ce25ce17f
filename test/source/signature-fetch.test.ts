/** Finding a cosign signature beside the image: registry tag `sha256-<hex>.sig`, or a layout entry. */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { fetchImageSignature, parseSourceReference, resolveSource } from '../../src/source/index.js';
import { REPO_ROOT } from '../support/cli.js';
import { digestOf, pushBlob, pushManifest, pushSignature, signatureManifest, SIMPLESIGNING } from '../support/oci-push.js';
import { pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');
const payload = (digest: string) =>
  Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': 'x' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );

describe('image signature lookup in a registry', () => {
  let registry: TestRegistry;
  let digest: string;
  const opts = () => ({ registry: { insecureHosts: [registry.host] } });
  beforeAll(async () => {
    registry = await startRegistry();
    digest = await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`);
  });
  afterAll(() => registry?.stop());

  it('is undefined when the image has no signature tag', async () => {
    const resolved = await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), opts());
    expect(await fetchImageSignature(resolved)).toBeUndefined();
  });

  it('fetches the sha256-<hex>.sig manifest and its payload blobs by digest', async () => {
    const blob = payload(digest);
    await pushSignature(registry.host, 'zeta/provisioning', digest, [{ blob, annotations: { 'dev.cosignproject.cosign/signature': 'c2ln' } }]);
    const resolved = await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), opts());
    const sig = await fetchImageSignature(resolved);
    expect(sig?.location).toBe(`${registry.host}/zeta/provisioning:sha256-${digest.slice(7)}.sig`);
    expect(sig?.blobs.get(digestOf(blob))?.equals(blob)).toBe(true);
    expect(JSON.parse(sig!.manifest.toString()).layers[0].mediaType).toBe(SIMPLESIGNING);
  });

  it('refuses a signature manifest with an absurd number of layers', async () => {
    const blob = payload(digest);
    const config = Buffer.from('{}');
    await pushBlob(registry.host, 'zeta/many', config);
    await pushBlob(registry.host, 'zeta/many', blob);
    const many = signatureManifest(
      config,
      Array.from({ length: 40 }, () => ({ blob, annotations: {} })),
    );
    const pushed = await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/many:v1`);
    await pushManifest(registry.host, 'zeta/many', `sha256-${pushed.slice(7)}.sig`, many, 'application/vnd.oci.image.manifest.v1+json');
    const resolved = await resolveSource(parseSourceReference(`${registry.host}/zeta/many:v1`), opts());
    await expect(fetchImageSignature(resolved)).rejects.toThrowError(/40 layers/);
  });
});

describe('image signature lookup in an OCI layout', () => {
  it("finds the entry tagged sha256-<hex>.sig, or cosign save's single sigs entry, and checks blob digests", async () => {
    const dir = path.join(await tempDir(), 'oci');
    await cp(LAYOUT, dir, { recursive: true });
    // The example layout ships signed; start from the image entry alone.
    const signed = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    const index = { ...signed, manifests: signed.manifests.slice(0, 1) };
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    const digest: string = index.manifests[0].digest;
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${dir}:latest`));
    expect(await fetchImageSignature(resolved)).toBeUndefined();

    const blob = payload(digest);
    const config = Buffer.from('{}');
    const manifest = signatureManifest(config, [{ blob, annotations: {} }]);
    for (const b of [blob, config, manifest]) await writeFile(path.join(dir, 'blobs', 'sha256', digestOf(b).slice(7)), b);
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length };
    await writeFile(
      path.join(dir, 'index.json'),
      JSON.stringify({ ...index, manifests: [...index.manifests, { ...entry, annotations: { kind: 'dev.cosignproject.cosign/sigs' } }] }),
    );
    const viaKind = await fetchImageSignature(await resolveSource(parseSourceReference(`oci-layout:${dir}:latest`)));
    expect(viaKind?.blobs.get(digestOf(blob))?.equals(blob)).toBe(true);

    await writeFile(
      path.join(dir, 'index.json'),
      JSON.stringify({
        ...index,
        manifests: [...index.manifests, { ...entry, annotations: { 'org.opencontainers.image.ref.name': `sha256-${digest.slice(7)}.sig` } }],
      }),
    );
    expect(await fetchImageSignature(await resolveSource(parseSourceReference(`oci-layout:${dir}:latest`)))).toBeDefined();

    // A payload blob whose bytes changed is caught before anything parses it.
    await writeFile(path.join(dir, 'blobs', 'sha256', digestOf(blob).slice(7)), Buffer.concat([blob, Buffer.from(' ')]));
    await expect(fetchImageSignature(await resolveSource(parseSourceReference(`oci-layout:${dir}:latest`)))).rejects.toThrowError(SourceError);
  });
});
