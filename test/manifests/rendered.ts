/** `kubectl kustomize` output of manifests/, and the pod specs and containers in it. */
import path from 'node:path';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered YAML is untyped by nature */
export type K8sObject = any;
export type Container = any;
export type PodSpec = any;

/** Renders a kustomization: a directory under manifests/, or an absolute path. */
export async function render(dir: string): Promise<{ objects: K8sObject[]; text: string }> {
  await requireProgram('kubectl', 'kubectl');
  const { stdout } = await execa('kubectl', ['kustomize', path.resolve(REPO_ROOT, 'manifests', dir)]);
  return { objects: parseAllDocuments(stdout).map((d) => d.toJS()), text: stdout };
}

export function podSpecs(objects: K8sObject[]): { owner: string; spec: PodSpec }[] {
  return objects.flatMap((o) => {
    if (o.kind === 'CronJob') return [{ owner: `CronJob/${o.metadata.name}`, spec: o.spec.jobTemplate.spec.template.spec }];
    if (['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind)) return [{ owner: `${o.kind}/${o.metadata.name}`, spec: o.spec.template.spec }];
    return [];
  });
}

/** A pod's containers and init containers (native sidecars are init containers). */
export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** Containers running our image (repository name zeta-provision): the CronJob and every watch sidecar. */
export function zetaContainers(objects: K8sObject[]): { owner: string; spec: PodSpec; container: Container }[] {
  return podSpecs(objects).flatMap(({ owner, spec }) =>
    allContainers(spec)
      .filter((c) => /(^|\/)zeta-provision[:@]/.test(c.image))
      .map((container) => ({ owner, spec, container })),
  );
}

export function volumeOf(spec: PodSpec, mountName: string): any {
  return spec.volumes.find((v: { name: string }) => v.name === mountName);
}

/** The mount of `container` whose mountPath contains `file` (longest match). */
export function mountFor(container: Container, file: string): any {
  return (container.volumeMounts ?? [])
    .filter((m: { mountPath: string }) => file === m.mountPath || file.startsWith(m.mountPath.replace(/\/?$/, '/')))
    .sort((a: { mountPath: string }, b: { mountPath: string }) => b.mountPath.length - a.mountPath.length)[0];
}
