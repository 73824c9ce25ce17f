/**
 * Pure: the objects a run wants in the cluster, as server-side apply bodies. Keys and sizes are
 * checked here, before any request, with the API server's own rules — so an oversize or badly
 * keyed target fails with the file names instead of a 422 halfway through a run.
 */
import { createHash } from 'node:crypto';
import { PublishError } from '../../errors.js';
import type { ConfigMapObject } from '../../process/types.js';
import { MANAGED_BY_LABEL, MANAGER, provenanceAnnotations, type ProvenanceMeta } from '../manifest.js';

export const NAME_LABEL = 'app.kubernetes.io/name';
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';
export const INPUTS_HASH_ANNOTATION = 'zeta-provision/inputs-hash';
/** The API server's limit for ConfigMap data + binaryData and for Secret data (decoded bytes). */
export const MAX_OBJECT_DATA_BYTES = 1024 * 1024;
const KEY = /^[-._a-zA-Z0-9]+$/;

export type ObjectKind = 'ConfigMap' | 'Secret';

export interface WorkloadRef {
  /** As written in the config: `deployment/opa`. */
  ref: string;
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  resource: 'deployments' | 'statefulsets' | 'daemonsets';
  name: string;
}

/** What the config says about one API target (the process stage builds its contents). */
export interface TargetSpec {
  name: string;
  kind: ObjectKind;
  files: { path: string; key: string }[];
  consumers: WorkloadRef[];
}

export interface DesiredObject {
  kind: ObjectKind;
  name: string;
  contentHash: string;
  keys: string[];
  bytes: number;
  body: Record<string, unknown>;
  /** What it was built from (to rebuild it with another payload's provenance). */
  cm: ConfigMapObject;
}

const WORKLOADS: Record<string, Pick<WorkloadRef, 'kind' | 'resource'>> = {
  deployment: { kind: 'Deployment', resource: 'deployments' },
  statefulset: { kind: 'StatefulSet', resource: 'statefulsets' },
  daemonset: { kind: 'DaemonSet', resource: 'daemonsets' },
};

/** `deployment/opa` → a workload reference, or a message saying what is wrong. */
export function parseWorkloadRef(ref: string): WorkloadRef | string {
  const m = /^([a-z]+)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(ref);
  if (!m || m[2]!.length > 253) return `"${ref}" is not KIND/NAME (e.g. deployment/opa)`;
  const w = WORKLOADS[m[1]!];
  if (!w) return `"${ref}": kind must be deployment, statefulset or daemonset`;
  return { ref, ...w, name: m[2]! };
}

export function labelsFor(instance: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGER, [NAME_LABEL]: MANAGER, [INSTANCE_LABEL]: instance };
}

export function selectorFor(instance: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGER},${INSTANCE_LABEL}=${instance}`;
}

export function buildDesiredObject(cm: ConfigMapObject, spec: TargetSpec, namespace: string, instance: string, meta: ProvenanceMeta): DesiredObject {
  const sizes = new Map<string, number>();
  for (const [k, v] of Object.entries(cm.data)) sizes.set(k, Buffer.byteLength(v));
  for (const [k, v] of Object.entries(cm.binaryData)) sizes.set(k, Buffer.from(v, 'base64').length);
  const pathOf = (key: string): string => spec.files.find((f) => f.key === key)?.path ?? key;
  for (const key of sizes.keys()) {
    if (!KEY.test(key) || key.length > 253 || key === '.' || key === '..') {
      throw new PublishError(
        `${spec.kind} ${spec.name}: key "${key}" (from ${pathOf(key)}) is not a valid key ([-._a-zA-Z0-9]+, at most 253 characters)`,
        'set files[].key in the config to a valid name',
      );
    }
  }
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  if (total > MAX_OBJECT_DATA_BYTES) {
    const list = [...sizes]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${pathOf(k)} ${n} B`)
      .join(', ');
    throw new PublishError(
      `${spec.kind} ${spec.name} would hold ${total} bytes, over the API limit of ${MAX_OBJECT_DATA_BYTES} (${list})`,
      'publish large files through the volume target (volume.files) instead',
    );
  }
  const annotations = provenanceAnnotations(cm.contentHash, meta);
  const metadata = { name: spec.name, namespace, labels: labelsFor(instance), annotations };
  let body: Record<string, unknown>;
  if (spec.kind === 'Secret') {
    // A Secret has no binaryData: every value is base64, UTF-8 or not.
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(cm.data)) data[k] = Buffer.from(v, 'utf8').toString('base64');
    Object.assign(data, cm.binaryData);
    body = { apiVersion: 'v1', kind: 'Secret', metadata, type: 'Opaque', data: sortKeys(data) };
  } else {
    body = { apiVersion: 'v1', kind: 'ConfigMap', metadata };
    if (Object.keys(cm.data).length > 0) body.data = sortKeys(cm.data);
    if (Object.keys(cm.binaryData).length > 0) body.binaryData = sortKeys(cm.binaryData);
  }
  return { kind: spec.kind, name: spec.name, contentHash: cm.contentHash, keys: [...sizes.keys()].sort(), bytes: total, body, cm };
}

/** Every value a Secret carries, in the forms that could leak (text and base64). */
export function secretValues(cm: ConfigMapObject): string[] {
  return [...Object.values(cm.data), ...Object.values(cm.data).map((v) => Buffer.from(v).toString('base64')), ...Object.values(cm.binaryData)];
}

/**
 * Hash of everything a consumer reads: the content hashes of the targets that name it. A consumer
 * rolls out only when this changes, so one provisioning change means at most one rollout.
 */
export function inputsHashes(targets: TargetSpec[], contentHashes: Map<string, string>): Map<string, string> {
  const inputs = new Map<string, string[]>();
  for (const t of targets) {
    for (const c of t.consumers) inputs.set(c.ref, [...(inputs.get(c.ref) ?? []), `${t.kind}/${t.name}=${contentHashes.get(t.name) ?? ''}`]);
  }
  return new Map([...inputs].map(([ref, list]) => [ref, 'sha256:' + createHash('sha256').update(list.sort().join('\n')).digest('hex')]));
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}
