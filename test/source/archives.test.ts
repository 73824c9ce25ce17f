/** oci-archive: and docker-archive: sources, made by skopeo from the example layout, read without unpacking the archive. */
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import { indexTar, readEntry } from '../../src/source/tar-index.js';
import { sha256File, walkTree } from '../../src/util/fs.js';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');
const PAYLOAD = path.join(REPO_ROOT, 'fixtures', 'example', 'payload');

async function treeHashes(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await walkTree(root)) if (e.type === 'file') out[e.path] = await sha256File(path.join(root, e.path));
  return out;
}

async function pull(ref: string): Promise<{ digest: string; files: Record<string, string> }> {
  const resolved = await resolveSource(parseSourceReference(ref));
  const root = path.join(await tempDir(), 'staging');
  await unpackSource(resolved, root);
  return { digest: resolved.digest, files: await treeHashes(root) };
}

describe('archive sources', () => {
  let dir: string;
  let layoutDigest: string;
  beforeAll(async () => {
    await requireProgram('skopeo', 'skopeo');
    dir = await (async () => {
      const { mkdtemp } = await import('node:fs/promises');
      const os = await import('node:os');
      return mkdtemp(path.join(os.tmpdir(), 'zp-archives-'));
    })();
    await execa('skopeo', ['copy', '-q', `oci:${LAYOUT}:latest`, `oci-archive:${dir}/image.oci.tar:latest`]);
    await execa('skopeo', ['copy', '-q', `oci:${LAYOUT}:latest`, `docker-archive:${dir}/image.docker.tar:zeta/provisioning:1.0`]);
    layoutDigest = JSON.parse(await readFile(path.join(LAYOUT, 'index.json'), 'utf8')).manifests[0].digest;
  });

  it('oci-archive: pulls the same tree with the same manifest digest as the layout', async () => {
    const r = await pull(`oci-archive:${dir}/image.oci.tar:latest`);
    expect(r.digest).toBe(layoutDigest);
    expect(r.files).toEqual(await treeHashes(PAYLOAD));
  });

  it('after resolve, a moved tag or a removed index.json does not change what is unpacked', async () => {
    const copy = path.join(await tempDir(), 'oci');
    await execa('cp', ['-r', LAYOUT, copy]);
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${copy}:latest`));
    // Someone retags (here: removes) the index between resolve and unpack: the run stays on its digest.
    await writeFile(path.join(copy, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    const root = path.join(await tempDir(), 'staging');
    await unpackSource(resolved, root);
    expect(resolved.digest).toBe(layoutDigest);
    expect(await treeHashes(root)).toEqual(await treeHashes(PAYLOAD));
    // A fresh run sees the change.
    await expect(resolveSource(parseSourceReference(`oci-layout:${copy}:latest`))).rejects.toThrowError(/tag 'latest' not found/);
  });

  it('docker-archive: pulls the tree; its identity is the image ID (config digest)', async () => {
    const r = await pull(`docker-archive:${dir}/image.docker.tar:zeta/provisioning:1.0`);
    expect(r.files).toEqual(await treeHashes(PAYLOAD));
    const manifest = JSON.parse(await readFile(path.join(LAYOUT, 'blobs', 'sha256', layoutDigest.slice(7)), 'utf8'));
    expect(r.digest).toBe(manifest.config.digest);
    expect((await pull(`docker-archive:${dir}/image.docker.tar`)).digest).toBe(r.digest);
    await expect(pull(`docker-archive:${dir}/image.docker.tar:other:1`)).rejects.toThrowError(/tag 'other:1' not found.*docker\.io\/zeta\/provisioning:1\.0/);
    await expect(pull(`docker-archive:${dir}/image.docker.tar@sha256:${'0'.repeat(64)}`)).rejects.toThrowError(/image ID is sha256:/);
  });

  it('a changed byte in a docker-archive layer fails its DiffID check', async () => {
    const copy = path.join(await tempDir(), 'tampered.tar');
    const bytes = await readFile(`${dir}/image.docker.tar`);
    const index = await indexTar(`${dir}/image.docker.tar`, 'x');
    const layer = [...index.entries].find(([n]) => /^[0-9a-f]{64}\.tar$/.test(n))![1];
    bytes[layer.offset + 600] = bytes[layer.offset + 600]! ^ 0x01;
    await writeFile(copy, bytes);
    const err = await pull(`docker-archive:${copy}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toMatch(/^layer sha256:[0-9a-f]{64}: /);
  });

  it('a truncated archive, a non-tar file and a missing file are source errors', async () => {
    const t = path.join(await tempDir(), 'trunc.tar');
    await writeFile(t, await readFile(`${dir}/image.oci.tar`));
    await truncate(t, (await stat(t)).size - 3000);
    await expect(pull(`oci-archive:${t}`)).rejects.toThrowError(/truncated|missing/);
    const g = path.join(await tempDir(), 'garbage.tar');
    await writeFile(g, Buffer.alloc(4096, 0x41));
    await expect(pull(`oci-archive:${g}`)).rejects.toThrowError(/not a tar archive/);
    await expect(pull('oci-archive:/nonexistent.tar')).rejects.toThrowError(/^source not found: oci-archive:\/nonexistent\.tar$/);
  });

  it('the tar index reads long names (pax and GNU) and resolves symlinked entries', async () => {
    const d = await tempDir();
    const long = 'a'.repeat(120) + '/' + 'b'.repeat(80) + '.txt';
    await mkdir(path.join(d, 'src', 'a'.repeat(120)), { recursive: true });
    await writeFile(path.join(d, 'src', long), 'long-name-content');
    for (const format of ['posix', 'gnu']) {
      const tarFile = path.join(d, `${format}.tar`);
      await execa('tar', [`--format=${format}`, '-C', path.join(d, 'src'), '-cf', tarFile, '.']);
      const index = await indexTar(tarFile, format);
      const chunks: Buffer[] = [];
      for await (const c of readEntry(index, long)!) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString(), format).toBe('long-name-content');
    }
  });
});
