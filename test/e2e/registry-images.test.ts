/**
 * Images made by real tools (fixtures/make-registry-images.sh: umoci, GNU tar, buildah), pushed by
 * skopeo in every form a registry serves (OCI, Docker v2s2, zstd, uncompressed, a two-platform index)
 * and pulled by the registry source. Each unpacked tree is compared file by file with `umoci unpack`
 * of the same image: whiteouts, an opaque directory, a directory replaced by a file, hardlinks,
 * symlinks, and the end-marker-less tars `umoci insert` writes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlatform, parseSourceReference, resolveSource, unpackSource, type SourceOptions } from '../../src/source/index.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { pushBlob, pushManifest } from '../support/oci-push.js';
import { requireProgram } from '../support/programs.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const SCRIPT = path.join(REPO_ROOT, 'fixtures', 'make-registry-images.sh');

let work: string;
let layout: string;
let registry: TestRegistry;

/** path → "type mode content-hash|link-target": what a consumer of the tree can observe. */
async function describeTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `l -> ${await fs.readlink(abs)}`;
      else if (st.isDirectory()) {
        out[r] = `d ${mode}`;
        await walk(r);
      } else
        out[r] = `f ${mode} ${createHash('sha256')
          .update(await fs.readFile(abs))
          .digest('hex')
          .slice(0, 16)}`;
    }
  }
  await walk('');
  return out;
}

async function umociTree(tag: string): Promise<Record<string, string>> {
  const bundle = path.join(work, `umoci-${tag}`);
  await fs.rm(bundle, { recursive: true, force: true });
  await execa('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
  return describeTree(path.join(bundle, 'rootfs'));
}

const insecure = (): SourceOptions => ({ registry: { insecureHosts: [registry.host] } });

async function pull(ref: string, options: SourceOptions = insecure()): Promise<{ tree: Record<string, string>; root: string; warnings: string[] }> {
  const resolved = await resolveSource(parseSourceReference(ref), options);
  const root = await fs.mkdtemp(path.join(work, 'staging-'));
  const result = await unpackSource(resolved, root, {}, options);
  return { tree: await describeTree(root), root, warnings: result.warnings };
}

async function push(from: string, to: string, ...args: string[]): Promise<void> {
  await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...args, from, `docker://${registry.host}/${to}`]);
}

/** Uploads a layout image's manifest, config and layers byte for byte (no recompression). */
async function pushVerbatim(tag: string, repo: string, destTag: string): Promise<void> {
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const blob = (digest: string) => fs.readFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const manifestBytes = await blob(entry.digest);
  const manifest = JSON.parse(manifestBytes.toString()) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
  for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) await pushBlob(registry.host, repo, await blob(d));
  await pushManifest(registry.host, repo, destTag, manifestBytes, manifest.mediaType);
}

/** Layer media types of a pushed manifest, as the registry serves it. */
async function layerTypes(
  repoTag: string,
  accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
): Promise<string[]> {
  const [repo, tag] = repoTag.split(':');
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, { headers: { Accept: accept } });
  const m = (await res.json()) as { mediaType: string; layers: { mediaType: string }[] };
  return m.layers.map((l) => l.mediaType);
}

beforeAll(async () => {
  for (const [cmd, pkg] of [
    ['umoci', 'umoci'],
    ['buildah', 'buildah'],
    ['skopeo', 'skopeo'],
    ['zstd', 'zstd'],
  ])
    await requireProgram(cmd!, pkg!);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'zp-images-'));
  await execa('bash', [SCRIPT, path.join(work, 'images')]);
  layout = path.join(work, 'images', 'layout');
  registry = await startRegistry();
  // zstd first, into its own repository: skopeo would otherwise reuse the gzip blobs already there.
  await push(`oci:${layout}:layered`, 'img/zstd:1', '--dest-compress', '--dest-compress-format', 'zstd');
  await push(`oci:${layout}:layered`, 'img/layered:oci');
  await push(`oci:${layout}:layered`, 'img/layered:v2s2', '--format', 'v2s2');
  await push(`oci:${layout}:inserted`, 'img/inserted:1');
  // skopeo would gzip the layer on its way to a registry: upload buildah's bytes as they are.
  await pushVerbatim('plain', 'img/plain', '1');
  await push(`oci:${path.join(work, 'images', 'index')}:latest`, 'img/multi:1', '--all');
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('images from umoci, buildah and skopeo through a registry', () => {
  it('OCI gzip layers with whiteouts, an opaque directory and a directory turned file equal umoci unpack', async () => {
    const expected = await umociTree('layered');
    // The fixture really holds what the test claims to cover.
    expect(expected).toMatchObject({ swap: expect.stringMatching(/^f /), 'data/fresh.txt': expect.stringMatching(/^f /), 'etc/link': 'l -> a.txt' });
    expect(expected['etc/b.txt']).toBeUndefined();
    expect(expected['data/y.txt']).toBeUndefined();
    const { tree, root } = await pull(`${registry.host}/img/layered:oci`);
    expect(tree).toEqual(expected);
    // The hardlink is still one file with two names.
    const [a, hard] = await Promise.all([fs.stat(path.join(root, 'etc/a.txt')), fs.stat(path.join(root, 'etc/hard'))]);
    expect(hard.ino).toBe(a.ino);
  });

  it('Docker v2s2 (skopeo --format v2s2) gives the same tree', async () => {
    expect(await layerTypes('img/layered:v2s2')).toEqual(Array(3).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'));
    expect((await pull(`${registry.host}/img/layered:v2s2`)).tree).toEqual(await umociTree('layered'));
  });

  it('zstd layers (skopeo --dest-compress-format zstd) give the same tree', async () => {
    expect(await layerTypes('img/zstd:1')).toEqual(Array(3).fill('application/vnd.oci.image.layer.v1.tar+zstd'));
    expect((await pull(`${registry.host}/img/zstd:1`)).tree).toEqual(await umociTree('layered'));
  });

  it('the end-marker-less tars of umoci insert (file, whiteout, opaque) equal umoci unpack', async () => {
    const expected = await umociTree('inserted');
    expect(expected).toMatchObject({ 'etc/inserted.txt': expect.stringMatching(/^f /), 'keep/sub/deep.txt': expect.stringMatching(/^f /) });
    expect(expected['etc/c.txt']).toBeUndefined();
    expect(expected['keep/k.txt']).toBeUndefined();
    expect((await pull(`${registry.host}/img/inserted:1`)).tree).toEqual(expected);
  });

  it("buildah's uncompressed layer", async () => {
    expect(await layerTypes('img/plain:1')).toEqual(['application/vnd.oci.image.layer.v1.tar']);
    const { tree } = await pull(`${registry.host}/img/plain:1`);
    expect(tree['conf/plain.txt']).toMatch(/^f 644 /);
    expect(tree).toEqual(await umociTree('plain'));
  });

  it('an OCI index with two platforms: linux/amd64 by default, linux/arm64 on request, a clear error otherwise', async () => {
    const ref = `${registry.host}/img/multi:1`;
    const amd = await pull(ref);
    expect(await fs.readFile(path.join(amd.root, 'arch'), 'utf8')).toBe('amd64\n');
    const arm = await pull(ref, { ...insecure(), platform: parsePlatform('linux/arm64') });
    expect(await fs.readFile(path.join(arm.root, 'arch'), 'utf8')).toBe('arm64\n');
    expect(arm.tree).toEqual(await umociTree('arm64'));
    // The platform is the source's (given when it is opened); the registry resolve stops at the index digest.
    const resolved = await resolveSource(parseSourceReference(ref), { ...insecure(), platform: parsePlatform('linux/s390x') });
    const err = await unpackSource(resolved, path.join(work, 'none')).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/has no linux\/s390x image \(platforms: linux\/amd64, linux\/arm64\)$/);
  });

  it('the CLI takes the platform from ZETA_PROVISION_PLATFORM and refuses a malformed --platform', async () => {
    const args = ['run', '--source', `${registry.host}/img/multi:1`, '--insecure-registry', registry.host, '--dry-run'];
    const missing = await runCli(args, { env: { ZETA_PROVISION_PLATFORM: 'linux/s390x' } });
    expect(missing.exitCode).toBe(4);
    expect(missing.stdout).toMatch(/has no linux\/s390x image \(platforms: linux\/amd64, linux\/arm64\)/);
    const malformed = await runCli([...args, '--platform', 'amd64']);
    expect(malformed.exitCode).toBe(2);
    expect(malformed.stdout + malformed.log).toMatch(/--platform: expected OS\/ARCH\[\/VARIANT\]/);
  });
});
