import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import type { ResolvedSource } from '../../src/source/types.js';
import { LayoutBuilder, listTree, packTar, singleImageLayout, tarDir, tempDir, writeFiles } from './helpers.js';
import { rejection } from '../support/errors.js';

let tmp: string;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function resolveRef(ref: string): Promise<ResolvedSource> {
  return resolveSource(parseSourceReference(ref));
}

async function expectSourceError(p: Promise<unknown>, re: RegExp): Promise<SourceError> {
  const err = await rejection(p, SourceError);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toContain('\n');
  return err as SourceError;
}

/** Lower layer: a GNU tar of a directory (`./` prefixes). */
async function lowerLayer(): Promise<Buffer> {
  const d = path.join(tmp, 'l1');
  await writeFiles(d, {
    'etc/a.txt': 'A',
    'etc/b.txt': 'B',
    'data/x/1.txt': 'one',
    'data/y.txt': 'Y',
    'keep/k.txt': 'K',
    'swap/f': 'was a dir',
  });
  return tarDir(d);
}

describe('oci-layout: unpack', () => {
  it('applies two layers with a whiteout, an opaque directory and type replacements', async () => {
    const upper = await packTar([
      { name: './etc/', type: 'directory' },
      { name: './etc/.wh.a.txt' },
      { name: './etc/c.txt', content: 'C' },
      // The opaque marker comes after a sibling of the same layer: data/new.txt must survive.
      { name: './data/', type: 'directory', mode: 0o750 },
      { name: './data/new.txt', content: 'new' },
      { name: './data/.wh..wh..opq' },
      { name: './swap', content: 'now a file' },
      { name: './keep/k.txt', content: 'K2', mode: 0o4755 },
      { name: './keep/link', type: 'symlink', linkname: 'k.txt' },
      { name: './keep/hard', type: 'link', linkname: './keep/k.txt' },
    ]);
    const { manifest } = await singleImageLayout(path.join(tmp, 'layout'), {
      layers: [{ tar: await lowerLayer() }, { tar: upper }],
      labels: { 'org.opencontainers.image.revision': 'abc123' },
      annotations: { 'org.opencontainers.image.version': '1.0' },
    });
    const resolved = await resolveRef(`oci-layout:${tmp}/layout`);
    expect(resolved.digest).toBe(manifest.digest);
    expect(resolved.layers).toHaveLength(2);
    expect(resolved.annotations).toEqual({
      'org.opencontainers.image.revision': 'abc123',
      'org.opencontainers.image.version': '1.0',
    });

    const staging = path.join(tmp, 'staging');
    const result = await unpackSource(resolved, staging);
    expect(result.root).toBe(staging);
    expect(await listTree(staging)).toEqual([
      'd data 750',
      'f data/new.txt 644 new',
      'd etc 755',
      'f etc/b.txt 644 B',
      'f etc/c.txt 644 C',
      'd keep 755',
      'f keep/hard 755 K2',
      'f keep/k.txt 755 K2',
      'l keep/link -> k.txt',
      'f swap 644 now a file',
    ]);
    expect(result.files).toBe(6);
    expect(result.warnings.join()).toMatch(/stripped setuid/);
  });

  it('keeps nested content of the current layer under an opaque directory', async () => {
    const lower = await packTar([
      { name: 'd/sub/old', content: 'old' },
      { name: 'd/gone', content: 'x' },
    ]);
    const upper = await packTar([{ name: 'd/sub/new', content: 'new' }, { name: 'd/.wh..wh..opq' }, { name: '.wh.nothing-there' }]);
    await singleImageLayout(path.join(tmp, 'layout'), { layers: [{ tar: lower, gzip: false }, { tar: upper }] });
    const staging = path.join(tmp, 'staging');
    await unpackSource(await resolveRef(`oci-layout:${tmp}/layout`), staging);
    expect(await listTree(staging)).toEqual(['d d 755', 'd d/sub 755', 'f d/sub/new 644 new']);
  });

  it('accepts Docker v2s2 media types and a directory replacing a file', async () => {
    const lower = await packTar([{ name: 'x', content: 'file' }]);
    const upper = await packTar([
      { name: 'x/', type: 'directory' },
      { name: 'x/y', content: 'y' },
    ]);
    await singleImageLayout(path.join(tmp, 'layout'), { docker: true, layers: [{ tar: lower }, { tar: upper }] });
    const staging = path.join(tmp, 'staging');
    await unpackSource(await resolveRef(`oci-layout:${tmp}/layout:latest`), staging);
    expect(await listTree(staging)).toEqual(['d x 755', 'f x/y 644 y']);
  });

  it('writes files on both sides of the small-file size byte for byte, with their modes', async () => {
    const sizes = [0, 1, 511, 512, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 17];
    const content = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) % 251));
    const entries = sizes.map((n, i) => ({ name: `d${i % 2}/f${n}`, content: content(n), mode: i % 2 ? 0o600 : 0o755 }));
    const staging = path.join(tmp, 'staging');
    await singleImageLayout(path.join(tmp, 'sizes'), { layers: [{ tar: await packTar(entries) }] });
    const result = await unpackSource(await resolveRef(`oci-layout:${tmp}/sizes`), staging);
    expect(result.files).toBe(sizes.length);
    expect(result.bytes).toBe(sizes.reduce((a, b) => a + b, 0));
    for (const [i, n] of sizes.entries()) {
      const file = path.join(staging, `d${i % 2}/f${n}`);
      expect((await fs.readFile(file)).equals(content(n))).toBe(true);
      expect((await fs.stat(file)).mode & 0o777).toBe(i % 2 ? 0o600 : 0o755);
    }
  });

  it('tolerates a missing end-of-archive marker but not a truncated entry', async () => {
    const ok = await packTar([{ name: 'a', content: 'hello' }], { withEnd: false });
    await singleImageLayout(path.join(tmp, 'ok'), { layers: [{ tar: ok, gzip: false }] });
    await unpackSource(await resolveRef(`oci-layout:${tmp}/ok`), path.join(tmp, 's1'));
    expect(await listTree(path.join(tmp, 's1'))).toEqual(['f a 644 hello']);

    // Even the last entry's padding may be missing, as long as its data is complete.
    const unpadded = ok.subarray(0, 512 + 5);
    await singleImageLayout(path.join(tmp, 'unpadded'), { layers: [{ tar: unpadded }] });
    await unpackSource(await resolveRef(`oci-layout:${tmp}/unpadded`), path.join(tmp, 's3'));
    expect(await listTree(path.join(tmp, 's3'))).toEqual(['f a 644 hello']);

    const full = await packTar([{ name: 'a', content: Buffer.alloc(2000, 'z') }], { withEnd: false });
    const cut = full.subarray(0, 512 + 1000);
    await singleImageLayout(path.join(tmp, 'cut'), { layers: [{ tar: cut }] });
    await expectSourceError(unpackSource(await resolveRef(`oci-layout:${tmp}/cut`), path.join(tmp, 's2')), /truncated/);
  });
});

describe('oci-layout: integrity', () => {
  it('refuses a layer whose content does not match its digest', async () => {
    const { layout, manifest } = await singleImageLayout(path.join(tmp, 'layout'), {
      layers: [{ tar: await packTar([{ name: 'a', content: 'good' }]), gzip: false }],
    });
    const resolved = await resolveRef(`oci-layout:${tmp}/layout`);
    const layer = resolved.layers[0]!;
    // Same size, different bytes: only the digest can notice.
    const blob = await fs.readFile(layout.blobPath(layer.digest));
    blob.write('evil', 512);
    await fs.writeFile(layout.blobPath(layer.digest), blob);
    await expectSourceError(unpackSource(resolved, path.join(tmp, 'staging')), new RegExp(`layer ${layer.digest}: blob digest mismatch`));
    expect(resolved.digest).toBe(manifest.digest);
  });

  it('refuses a corrupt gzip layer', async () => {
    const { layout } = await singleImageLayout(path.join(tmp, 'layout'), {
      layers: [{ tar: await packTar([{ name: 'a', content: 'x'.repeat(5000) }]) }],
    });
    const resolved = await resolveRef(`oci-layout:${tmp}/layout`);
    const p = layout.blobPath(resolved.layers[0]!.digest);
    const blob = await fs.readFile(p);
    blob.fill(0x55, 10, 40);
    await fs.writeFile(p, blob);
    await expectSourceError(unpackSource(resolved, path.join(tmp, 's')), /^layer sha256:[0-9a-f]{64}: (cannot decompress|blob digest mismatch|corrupt tar)/);
  });

  it('refuses a diff_id mismatch', async () => {
    await singleImageLayout(path.join(tmp, 'layout'), {
      layers: [{ tar: await packTar([{ name: 'a', content: 'x' }]) }],
      diffIds: [`sha256:${'0'.repeat(64)}`],
    });
    await expectSourceError(unpackSource(await resolveRef(`oci-layout:${tmp}/layout`), path.join(tmp, 's')), /does not match the config's diff_id/);
  });

  it('reports a missing blob and a missing layout', async () => {
    const { layout } = await singleImageLayout(path.join(tmp, 'layout'), {
      layers: [{ tar: await packTar([{ name: 'a', content: 'x' }]) }],
    });
    const resolved = await resolveRef(`oci-layout:${tmp}/layout`);
    await fs.rm(layout.blobPath(resolved.layers[0]!.digest));
    await expectSourceError(resolveRef(`oci-layout:${tmp}/layout`), /layer blob sha256:[0-9a-f]{64} is missing/);
    await expectSourceError(unpackSource(resolved, path.join(tmp, 's')), /is missing/);
    await expectSourceError(resolveRef('oci-layout:/nonexistent'), /^source not found: oci-layout:\/nonexistent$/);
  });

  it('refuses a crafted digest before it becomes a path', async () => {
    const layout = await LayoutBuilder.create(path.join(tmp, 'layout'));
    await layout.writeIndex([{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../../../etc/passwd', size: 10 }]);
    await expectSourceError(resolveRef(`oci-layout:${tmp}/layout`), /not sha256:<64 hex>/);
  });
});

describe('oci-layout: selection', () => {
  async function twoImages(): Promise<{ a: string; b: string; layout: LayoutBuilder }> {
    const layout = await LayoutBuilder.create(path.join(tmp, 'layout'));
    const a = await layout.image({ layers: [{ tar: await packTar([{ name: 'which', content: 'a' }]) }] });
    const b = await layout.image({ layers: [{ tar: await packTar([{ name: 'which', content: 'b' }]) }] });
    const sig = await layout.image({ layers: [{ tar: await packTar([{ name: 'sig' }]) }] });
    await layout.writeIndex([
      { ...a, tag: 'v1' },
      { ...b, tag: 'v2' },
      { ...sig, annotations: { kind: 'dev.cosignproject.cosign/sigs' } },
    ]);
    return { a: a.digest, b: b.digest, layout };
  }

  it('picks by tag and by digest, and lists the tags when ambiguous', async () => {
    const { a, b } = await twoImages();
    expect((await resolveRef(`oci-layout:${tmp}/layout:v1`)).digest).toBe(a);
    expect((await resolveRef(`oci-layout:${tmp}/layout:v2`)).digest).toBe(b);
    expect((await resolveRef(`oci-layout:${tmp}/layout@${b}`)).digest).toBe(b);
    await expectSourceError(resolveRef(`oci-layout:${tmp}/layout`), /holds 2 images; pick one by tag: v1, v2$/);
    await expectSourceError(resolveRef(`oci-layout:${tmp}/layout:v3`), /tag 'v3' not found .*tags: v1, v2$/);
    await expectSourceError(resolveRef(`oci-layout:${tmp}/layout:v1@${b}`), /points to/);

    const staging = path.join(tmp, 'staging');
    await unpackSource(await resolveRef(`oci-layout:${tmp}/layout:v2`), staging);
    expect(await listTree(staging)).toEqual(['f which 644 b']);
  });

  it('ignores cosign signature entries when picking the only image', async () => {
    const layout = await LayoutBuilder.create(path.join(tmp, 'layout'));
    const img = await layout.image({ layers: [{ tar: await packTar([{ name: 'x' }]) }] });
    const sig = await layout.image({ layers: [{ tar: await packTar([{ name: 'sig' }]) }] });
    await layout.writeIndex([
      { ...sig, annotations: { kind: 'dev.cosignproject.cosign/sigs' } },
      { ...img, annotations: { kind: 'dev.cosignproject.cosign/image' } },
    ]);
    expect((await resolveRef(`oci-layout:${tmp}/layout`)).digest).toBe(img.digest);
  });

  it('follows an image index to linux/amd64', async () => {
    const layout = await LayoutBuilder.create(path.join(tmp, 'layout'));
    const arm = await layout.image({ layers: [{ tar: await packTar([{ name: 'arch', content: 'arm64' }]) }] });
    const amd = await layout.image({ layers: [{ tar: await packTar([{ name: 'arch', content: 'amd64' }]) }] });
    const index = await layout.imageIndex([
      { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
      { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    await layout.writeIndex([{ ...index, tag: 'latest' }]);
    const resolved = await resolveRef(`oci-layout:${tmp}/layout:latest`);
    expect(resolved.digest).toBe(amd.digest);
    const staging = path.join(tmp, 'staging');
    await unpackSource(resolved, staging);
    expect(await listTree(staging)).toEqual(['f arch 644 amd64']);
  });

  it('refuses a non-empty staging directory', async () => {
    await singleImageLayout(path.join(tmp, 'layout'), { layers: [{ tar: await packTar([{ name: 'a' }]) }] });
    const staging = path.join(tmp, 'staging');
    await writeFiles(staging, { leftover: 'x' });
    await expectSourceError(unpackSource(await resolveRef(`oci-layout:${tmp}/layout`), staging), /not empty/);
  });
});
