/**
 * Test helpers: OCI image layouts built with the shell tools (GNU tar, gzip, sha256sum) and JSON
 * written here, tar streams crafted with tar-stream's pack where GNU tar cannot express an entry
 * (absolute names, `..`, escaping links), and a compact listing of a tree for exact assertions.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';

export async function tempDir(prefix = 'zp-source-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** GNU tar of a directory, sorted, with `./` prefixes as umoci/buildah write them. */
export async function tarDir(dir: string): Promise<Buffer> {
  const { stdout } = await execa('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', '-', '.'], {
    encoding: 'buffer',
  });
  return Buffer.from(stdout);
}

export interface PackEntry {
  name: string;
  type?: tar.Header['type'];
  mode?: number;
  linkname?: string;
  content?: string | Buffer;
  devmajor?: number;
  devminor?: number;
}

/** A tar stream from explicit entries; `withEnd: false` drops the two end-of-archive blocks. */
export async function packTar(entries: PackEntry[], opts: { withEnd?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collecting = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const e of entries) {
    const header: tar.Header = {
      name: e.name,
      type: e.type ?? 'file',
      mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(0),
      size: 0,
      linkname: e.linkname ?? '',
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.content !== undefined) pack.entry(header, e.content, cb);
      else pack.entry(header, cb).end(null);
    });
  }
  pack.finalize();
  await collecting;
  const all = Buffer.concat(chunks);
  return opts.withEnd === false ? all.subarray(0, all.length - 1024) : all;
}

export async function sha256sum(file: string): Promise<string> {
  const { stdout } = await execa('sha256sum', [file]);
  return `sha256:${stdout.split(' ')[0]}`;
}

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}

export interface LayerSpec {
  tar: Buffer;
  gzip?: boolean;
  /** Compress with the `zstd` program (media type `+zstd`). */
  zstd?: boolean;
  /** Store these bytes as the blob instead of compressing `tar` (crafted streams). */
  blob?: Buffer;
  mediaType?: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** true (default): list the real diff_ids; false: omit; array: write these. */
  diffIds?: boolean | string[];
  docker?: boolean;
}

export class LayoutBuilder {
  constructor(readonly dir: string) {}

  static async create(dir: string): Promise<LayoutBuilder> {
    await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    await fs.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return new LayoutBuilder(dir);
  }

  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  /** Stores bytes as a blob named by `sha256sum`'s verdict. */
  async blob(data: Buffer | string, mediaType: string): Promise<Desc> {
    const tmp = path.join(this.dir, `tmp-${Math.random().toString(16).slice(2)}`);
    await fs.writeFile(tmp, data);
    const digest = await sha256sum(tmp);
    const { size } = await fs.stat(tmp);
    await fs.rename(tmp, this.blobPath(digest));
    return { mediaType, digest, size };
  }

  async layer(spec: LayerSpec, docker: boolean): Promise<{ desc: Desc; diffId: string }> {
    const rawTmp = path.join(this.dir, `raw-${Math.random().toString(16).slice(2)}`);
    await fs.writeFile(rawTmp, spec.tar);
    const diffId = await sha256sum(rawTmp);
    await fs.rm(rawTmp);
    const gzip = (spec.gzip ?? true) && !spec.zstd;
    const compressor = spec.zstd ? ['zstd', '-q', '-c'] : gzip ? ['gzip', '-n', '-c'] : undefined;
    const data =
      spec.blob ?? (compressor ? Buffer.from((await execa(compressor[0]!, compressor.slice(1), { input: spec.tar, encoding: 'buffer' })).stdout) : spec.tar);
    const mediaType =
      spec.mediaType ??
      (spec.zstd
        ? 'application/vnd.oci.image.layer.v1.tar+zstd'
        : docker
          ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
          : gzip
            ? 'application/vnd.oci.image.layer.v1.tar+gzip'
            : 'application/vnd.oci.image.layer.v1.tar');
    return { desc: await this.blob(data, mediaType), diffId };
  }

  async image(spec: ImageSpec): Promise<Desc> {
    const docker = spec.docker ?? false;
    const layers = [];
    for (const l of spec.layers) layers.push(await this.layer(l, docker));
    const diffIds = spec.diffIds ?? true;
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: spec.labels ?? {} },
      ...(diffIds === false ? {} : { rootfs: { type: 'layers', diff_ids: Array.isArray(diffIds) ? diffIds : layers.map((l) => l.diffId) } }),
    };
    const configDesc = await this.blob(
      JSON.stringify(config),
      docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
    );
    const mediaType = docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
    const manifest = {
      schemaVersion: 2,
      mediaType,
      config: configDesc,
      layers: layers.map((l) => l.desc),
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    return this.blob(JSON.stringify(manifest), mediaType);
  }

  async imageIndex(entries: Desc[]): Promise<Desc> {
    const mediaType = 'application/vnd.oci.image.index.v1+json';
    return this.blob(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }), mediaType);
  }

  /** index.json; `tag` becomes the ref.name annotation. */
  async writeIndex(entries: Array<Desc & { tag?: string }>): Promise<void> {
    const manifests = entries.map(({ tag, ...d }) =>
      tag === undefined ? d : { ...d, annotations: { ...d.annotations, 'org.opencontainers.image.ref.name': tag } },
    );
    await fs.writeFile(path.join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  }
}

/** One image with these layers, tagged `latest`, in a fresh layout. */
export async function singleImageLayout(dir: string, spec: ImageSpec): Promise<{ layout: LayoutBuilder; manifest: Desc }> {
  const layout = await LayoutBuilder.create(dir);
  const manifest = await layout.image(spec);
  await layout.writeIndex([{ ...manifest, tag: 'latest' }]);
  return { layout, manifest };
}

/**
 * Sorted listing: `d path mode`, `f path mode content`, `l path -> target`. Exact-equality on this
 * catches stray files, lost whiteouts and wrong modes in one assertion.
 */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`l ${r} -> ${await fs.readlink(abs)}`);
      else if (st.isDirectory()) {
        out.push(`d ${r} ${mode}`);
        await walk(r);
      } else if (st.isFile()) out.push(`f ${r} ${mode} ${await fs.readFile(abs, 'utf8')}`);
      else out.push(`? ${r}`);
    }
  };
  await walk('');
  return out;
}

/** Writes files (`path: content`) under `dir`, creating directories. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
}
