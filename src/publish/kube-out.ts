/**
 * `--kube-out DIR`: ConfigMaps written as manifest files (`configmap-<name>.yaml`) instead of API
 * calls, for GitOps and for runs without a cluster. Each file is replaced atomically (temp + rename).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PublishError, errorMessage } from '../errors.js';
import type { ConfigMapObject } from '../process/types.js';
import { writeFileAtomic } from '../util/fs.js';
import { configMapManifest, toYaml, type ProvenanceMeta } from './manifest.js';

export function manifestFileName(name: string): string {
  return `configmap-${name}.yaml`;
}

/** Each manifest's YAML, rendered once: what is written and what its recorded hash is taken from. */
export function renderManifests(objects: ConfigMapObject[], meta: ProvenanceMeta): { name: string; text: string }[] {
  return objects.map((cm) => ({ name: cm.name, text: toYaml(configMapManifest(cm, meta)) }));
}

export async function writeKubeOut(dir: string, objects: ConfigMapObject[], meta: ProvenanceMeta): Promise<string[]> {
  return writeManifests(dir, renderManifests(objects, meta));
}

export async function writeManifests(dir: string, manifests: { name: string; text: string }[]): Promise<string[]> {
  const written: string[] = [];
  try {
    await mkdir(dir, { recursive: true });
    for (const m of manifests) {
      await writeFileAtomic(path.join(dir, manifestFileName(m.name)), m.text);
      written.push(m.name);
    }
    return written;
  } catch (err) {
    throw new PublishError(`writing manifests to ${dir} failed after ${written.length} of ${manifests.length}: ${errorMessage(err)}`);
  }
}

export { writeFileAtomic } from '../util/fs.js';
