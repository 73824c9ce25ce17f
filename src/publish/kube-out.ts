/**
 * `--kube-out DIR`: ConfigMaps written as manifest files (`configmap-<name>.yaml`) instead of API
 * calls, for GitOps and for runs without a cluster. Each file is replaced atomically (temp + rename).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { PublishError, errorMessage } from '../errors.js';
import type { ConfigMapObject } from '../process/types.js';
import { ANNOTATION, MANAGED_BY_LABEL, MANAGER, configMapManifest, toYaml, type ProvenanceMeta } from './manifest.js';

export function manifestFileName(name: string): string {
  return `configmap-${name}.yaml`;
}

/** ConfigMaps present in DIR: name → content hash (undefined when the file is not one of ours). */
export async function readKubeOutState(dir: string): Promise<Map<string, string | undefined>> {
  const state = new Map<string, string | undefined>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return state;
    throw new PublishError(`cannot read --kube-out directory ${dir}: ${errorMessage(err)}`);
  }
  for (const file of names) {
    const m = /^configmap-(.+)\.yaml$/.exec(file);
    if (!m) continue;
    try {
      const doc = parse(await readFile(path.join(dir, file), 'utf8')) as { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
      const ours = doc?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGER;
      state.set(m[1]!, ours ? doc.metadata?.annotations?.[ANNOTATION.contentHash] : undefined);
    } catch {
      state.set(m[1]!, undefined);
    }
  }
  return state;
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
