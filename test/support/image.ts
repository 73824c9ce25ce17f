/**
 * Container images without a container engine: buildah (vfs storage in a private directory, chroot
 * isolation, as root) builds them; a mount namespace + read-only bind + chroot runs a process in an
 * image's root filesystem as a numeric non-root user, the way a kubelet with
 * `readOnlyRootFilesystem: true` and `runAsUser` would.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, chmod, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { execa, type Options } from 'execa';
import { requireProgram } from './programs.js';

const run = promisify(execFile);

export interface Buildah {
  /** Environment for buildah and scripts/build-image.sh: private storage, chroot isolation. */
  env: Record<string, string>;
  buildah(args: string[], opts?: Options): Promise<string>;
}

/** buildah with its own storage under `dir`, so tests never see or touch the machine's images. */
export async function privateBuildah(dir: string): Promise<Buildah> {
  await requireProgram('buildah', 'buildah');
  await requireProgram('unshare', 'util-linux');
  const conf = path.join(dir, 'storage.conf');
  await writeFile(conf, `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/graph"\nrunroot = "${dir}/run"\n`);
  // No OCI runtime (runc/crun) is installed here: RUN steps execute with chroot isolation.
  const env = { CONTAINERS_STORAGE_CONF: conf, BUILDAH_ISOLATION: 'chroot' };
  return {
    env,
    buildah: async (args, opts = {}) => String((await execa('buildah', args, { ...opts, env: { ...env, ...(opts.env as object) } })).stdout).trim(),
  };
}

/** The shared libraries a binary loads, as ldd resolves them (absolute paths, the loader included). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  return [...stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/**
 * A stand-in for the distroless Node base: this machine's node at /nodejs/bin/node (where distroless
 * keeps it), the libraries ldd names, the CA bundle, an empty /tmp — no shell, no npm, nothing else.
 * Committed as `tag`; user 65532 like distroless "nonroot".
 */
export async function makeNodeBase(b: Buildah, workDir: string, tag: string): Promise<string[]> {
  const rootfs = path.join(workDir, 'base-rootfs');
  const node = await realpath(process.execPath);
  const files: [string, string][] = [
    [node, '/nodejs/bin/node'],
    ['/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt'],
  ];
  for (const lib of await sharedLibraries(node)) files.push([lib, lib]);
  for (const [from, to] of files) {
    await mkdir(path.join(rootfs, path.dirname(to)), { recursive: true });
    await copyFile(await realpath(from), path.join(rootfs, to));
  }
  await chmod(path.join(rootfs, 'nodejs/bin/node'), 0o755);
  await mkdir(path.join(rootfs, 'tmp'));
  await chmod(path.join(rootfs, 'tmp'), 0o1777);
  const ctr = await b.buildah(['from', 'scratch']);
  await b.buildah(['copy', ctr, `${rootfs}/`, '/']);
  await b.buildah(['config', '--user', '65532:65532', '--entrypoint', '["/nodejs/bin/node"]', ctr]);
  await b.buildah(['commit', '--quiet', '--format', 'oci', '--identity-label=false', '--rm', ctr, tag]);
  return files.map(([, to]) => to);
}

export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd?: string[];
  Labels: Record<string, string>;
}

export async function imageConfig(b: Buildah, tag: string): Promise<{ config: ImageConfig; diffIds: string[] }> {
  const j = JSON.parse(await b.buildah(['inspect', '--type', 'image', tag])) as { OCIv1: { config: ImageConfig; rootfs: { diff_ids: string[] } } };
  return { config: j.OCIv1.config, diffIds: j.OCIv1.rootfs.diff_ids };
}

/** Layer sizes in bytes, bottom-up: as pulled (the blob) and unpacked (the tar), via an OCI layout. */
export async function layerSizes(b: Buildah, tag: string, layoutDir: string): Promise<{ blob: number; tar: number }[]> {
  await b.buildah(['push', '--quiet', tag, `oci:${layoutDir}:img`]);
  const blob = (digest: string) => path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { size: number; mediaType: string; digest: string }[] };
  const sizes = [];
  for (const l of manifest.layers) {
    let tar = 0;
    const stream = createReadStream(blob(l.digest));
    for await (const chunk of l.mediaType.endsWith('+gzip') ? stream.pipe(createGunzip()) : stream) tar += (chunk as Buffer).length;
    sizes.push({ blob: l.size, tar });
  }
  return sizes;
}

/**
 * Mounts the image's filesystem (a working container of it) and returns its path. Mount points the
 * runner needs (/proc, /dev/null, /dev/urandom, /work) are created in the container's writable layer,
 * not in the image.
 */
export async function mountImage(b: Buildah, tag: string): Promise<string> {
  const ctr = await b.buildah(['from', '--pull-never', tag]);
  const root = await b.buildah(['mount', ctr]);
  await mkdir(path.join(root, 'proc'), { recursive: true });
  await mkdir(path.join(root, 'dev'), { recursive: true });
  await mkdir(path.join(root, 'work'), { recursive: true });
  for (const dev of ['null', 'urandom']) await writeFile(path.join(root, 'dev', dev), '');
  return root;
}

/**
 * In a private mount namespace: the root filesystem bound read-only onto itself, a 64 MiB tmpfs at
 * /tmp (the CronJob's emptyDir), `work` read-only at /work; then the command given (env -i + chroot).
 */
const RUNNER = `set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
R=$1; W=$2; shift 2
mount --make-rprivate /
mount --bind "$R" "$R"
mount --bind "$W" "$R/work"; mount -o remount,bind,ro "$R/work"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$R/tmp"
mount --bind /dev/null "$R/dev/null"; mount --bind /dev/urandom "$R/dev/urandom"
mount -t proc -o ro proc "$R/proc"
mount -o remount,bind,ro "$R"
exec "$@"`;

/**
 * Runs `argv` in the image's root filesystem as `user` (uid:gid, no supplementary groups) with only
 * the image's Env. env and chroot run on the host side; after chroot only the image's files exist.
 */
export async function runInRootfs(root: string, work: string, user: string, env: string[], argv: string[]) {
  const command = ['/usr/bin/env', '-i', ...env, '/usr/sbin/chroot', `--userspec=${user}`, '--groups=', root, ...argv];
  return execa('unshare', ['--mount', '--fork', '/bin/sh', '-c', RUNNER, 'runner', root, work, ...command], { reject: false });
}
