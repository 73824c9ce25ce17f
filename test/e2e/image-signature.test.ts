/**
 * The image (cosign) signature through the CLI on the example layout, which fixtures/make-example.sh
 * signs in gematik's mode: verified before unpacking; missing, foreign, substituted → exit 3, nothing written.
 */
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { GEMATIK_IDENTITY, addCosignLeaves, cosignPayload, signBytes, signatureManifest } from '../support/cosign.js';
import { digestOf } from '../support/oci-push.js';
import { makePki } from '../support/openssl.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

interface Index {
  manifests: { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }[];
}

async function example() {
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  const oci = path.join(dir, 'example', 'oci');
  const volume = path.join(dir, 'volume');
  const args = ['run', '--config', path.join(dir, 'example', 'zeta-provision.yaml'), '--volume', volume, '--kube-out', path.join(dir, 'out')];
  const readIndex = async (): Promise<Index> => JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8'));
  const writeIndex = (index: Index) => writeFile(path.join(oci, 'index.json'), JSON.stringify(index));
  const blob = (digest: string) => path.join(oci, 'blobs', 'sha256', digest.slice(7));
  return { dir, oci, volume, args, readIndex, writeIndex, blob };
}

const written = async (dir: string) => (await readdir(dir).catch(() => [])).length;

describe('image signature (cosign) in run', () => {
  it('verifies the example image signature and reports signer and location', async () => {
    const ex = await example();
    const r = await runCli([...ex.args, '--output', 'json']);
    expect(r.exitCode, r.stdout).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.image).toMatchObject({ checked: true, identity: 'provisioning@example.org' });
    expect(report.image.signer.anchor).toContain('Example Image Signing Root');
    expect(report.warnings.join(' ')).not.toContain('image signature');
  });

  it('another required identity exits 3 before anything is unpacked or written', async () => {
    const ex = await example();
    const r = await runCli([...ex.args, '--image-identity', 'software-development@gematik.de']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/image signature: .*provisioning@example\.org.*software-development@gematik\.de/);
    expect(await written(ex.volume)).toBe(0);
  });

  it('a missing signature exits 3 when required, and is a warning when optional', async () => {
    const ex = await example();
    const index = await ex.readIndex();
    await ex.writeIndex({ ...index, manifests: index.manifests.filter((m) => !m.annotations?.['org.opencontainers.image.ref.name']?.endsWith('.sig')) });
    const r = await runCli(ex.args);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/image signature: no signature sha256-[0-9a-f]{64}\.sig found beside the image/);
    expect(await written(ex.volume)).toBe(0);
    const optional = await runCli([...ex.args, '--image-signature', 'optional', '--output', 'json']);
    expect(optional.exitCode).toBe(0);
    expect(JSON.parse(optional.stdout).warnings.join(' ')).toMatch(/image signature not verified/);
  });

  it('a valid signature of one image offered for another (substitution) exits 3', async () => {
    const ex = await example();
    const index = await ex.readIndex();
    const image = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest')!;
    const sig = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name']?.endsWith('.sig'))!;
    // A second image: the same layers with an extra label, so its manifest digest differs.
    const manifest = JSON.parse(await readFile(ex.blob(image.digest), 'utf8'));
    const config = JSON.parse(await readFile(ex.blob(manifest.config.digest), 'utf8'));
    config.config.Labels['org.example.evil'] = 'yes';
    const configBytes = Buffer.from(JSON.stringify(config));
    await writeFile(ex.blob(digestOf(configBytes)), configBytes);
    manifest.config = { ...manifest.config, digest: digestOf(configBytes), size: configBytes.length };
    const evilBytes = Buffer.from(JSON.stringify(manifest));
    const evil = digestOf(evilBytes);
    await writeFile(ex.blob(evil), evilBytes);
    await ex.writeIndex({
      manifests: [
        { ...image, digest: evil, size: evilBytes.length },
        { ...sig, annotations: { 'org.opencontainers.image.ref.name': `sha256-${evil.slice(7)}.sig` } },
      ],
    });
    const r = await runCli(ex.args);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain(evil);
    expect(await written(ex.volume)).toBe(0);
  });

  it("a chain that did not issue the signer exits 3 (gematik's pinned chain against a foreign leaf)", async () => {
    const ex = await example();
    const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
    const chain = path.join(ex.dir, 'chain.pem');
    // Without the real-world data, the payload signing root stands in as "some other CA".
    const source = await readFile(path.join(realworld, 'gematik-signing', 'test', 'ca-chain.pem')).catch(() =>
      readFile(path.join(ex.dir, 'example', 'trust', 'example-root-ca.pem')),
    );
    await writeFile(chain, source);
    const r = await runCli([...ex.args, '--image-trust-chain', chain]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^zeta-provision: error: image signature: /);
  });

  it('the signing time in the image signature is the proven time: a replayed older signature is a downgrade', async () => {
    const ex = await example();
    const pki = await makePki(path.join(ex.dir, 'pki'), 'Image Time', 'p256');
    const leaves = await addCosignLeaves(pki, 'Image Time');
    const chain = path.join(ex.dir, 'image-chain.pem');
    await writeFile(chain, (await readFile(pki.intPem, 'utf8')) + (await readFile(pki.rootPem, 'utf8')));
    const index = await ex.readIndex();
    const image = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest')!;
    // Replace the example's signature by ours, signed at `time` (cosign sign -a timestamp=…).
    const resign = async (time: number): Promise<void> => {
      const payload = cosignPayload(image.digest, { optional: { timestamp: String(time) } });
      const sig = signatureManifest([{ payload, signature: await signBytes(payload, pki.leafKey), certPem: await readFile(leaves.good, 'utf8') }]);
      for (const [digest, blob] of sig.blobs) await writeFile(ex.blob(digest), blob);
      const digest = digestOf(sig.manifest);
      await writeFile(ex.blob(digest), sig.manifest);
      await ex.writeIndex({
        manifests: [
          image,
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            size: sig.manifest.length,
            annotations: { 'org.opencontainers.image.ref.name': `sha256-${image.digest.slice(7)}.sig` },
          },
        ],
      });
    };
    const args = [...ex.args, '--image-trust-chain', chain, '--image-identity', GEMATIK_IDENTITY, '--output', 'json', '--force'];
    const newer = Math.floor(Date.now() / 1000);
    await resign(newer);
    const first = await runCli(args);
    expect(first.exitCode, first.stdout).toBe(0);
    const proven = { time: new Date(newer * 1000).toISOString(), basis: 'image signature' };
    expect(JSON.parse(first.stdout).verification.proven).toEqual(proven);
    const volumeRecord = JSON.parse(await readFile(path.join(ex.volume, '..zeta-provision.json'), 'utf8'));
    expect(volumeRecord.generations[volumeRecord.generation]).toMatchObject({ proven: { time: proven.time, basis: 'image signature' } });

    await resign(newer - 86_400);
    const replayed = await runCli(args);
    expect(replayed.exitCode).toBe(3);
    expect(JSON.parse(replayed.stdout).error.message).toBe(
      `downgrade refused: payload was proven at ${new Date((newer - 86_400) * 1000).toISOString()} (image signature), older than the last applied payload's ${proven.time} (image signature)`,
    );
  });
});
