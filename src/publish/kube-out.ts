/**
 * `--kube-out DIR`: ConfigMaps written as manifest files (`configmap-<name>.yaml`) instead of API
 * calls, for GitOps and for runs without a cluster. Each file is replaced atomically (temp + rename).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../errors.js';
import type { ConfigMapObject } from '../process/types.js';
import { configMapManifest, toYaml, type ProvenanceMeta } from './manifest.js';

export function manifestFileName(name: string): string {
  return `configmap-${name}.yaml`;
}

export async function writeKubeOut(dir: string, objects: ConfigMapObject[], meta: ProvenanceMeta): Promise<string[]> {
  const written: string[] = [];
  try {
    await mkdir(dir, { recursive: true });
    for (const cm of objects) {
      const dest = path.join(dir, manifestFileName(cm.name));
      await writeFileAtomic(dest, toYaml(configMapManifest(cm, meta)));
      written.push(cm.name);
    }
    return written;
  } catch (err) {
    throw new PublishError(`writing manifests to ${dir} failed after ${written.length} of ${objects.length}: ${errorMessage(err)}`);
  }
}

/** Write to a temp file beside the target, fsync, rename over it: readers see old or new, never half. */
export async function writeFileAtomic(dest: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, dest);
}
