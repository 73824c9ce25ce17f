/**
 * ConfigMap objects in the shape `kubectl create configmap NAME --from-file=… --dry-run=client -o yaml`
 * prints (keys sorted, `creationTimestamp: null`), plus our labels and annotations.
 */
import { stringify } from 'yaml';
import type { ConfigMapObject } from '../process/types.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGER = 'zeta-provision';
export const ANNOTATION = {
  source: 'zeta-provision/source',
  digest: 'zeta-provision/source-digest',
  revision: 'zeta-provision/revision',
  contentHash: 'zeta-provision/content-hash',
} as const;

export interface ProvenanceMeta {
  source: string;
  digest: string;
  revision?: string;
}

/** Where an object's content came from (payload reference, digest, revision) and its content hash. */
export function provenanceAnnotations(contentHash: string, meta: ProvenanceMeta): Record<string, string> {
  const annotations: Record<string, string> = {
    [ANNOTATION.contentHash]: contentHash,
    [ANNOTATION.source]: meta.source,
    [ANNOTATION.digest]: meta.digest,
  };
  if (meta.revision) annotations[ANNOTATION.revision] = meta.revision;
  return annotations;
}

export function configMapManifest(cm: ConfigMapObject, meta: ProvenanceMeta): Record<string, unknown> {
  const annotations = provenanceAnnotations(cm.contentHash, meta);
  const manifest: Record<string, unknown> = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      annotations,
      creationTimestamp: null,
      labels: { [MANAGED_BY_LABEL]: MANAGER, 'app.kubernetes.io/name': MANAGER },
      name: cm.name,
      ...(cm.namespace ? { namespace: cm.namespace } : {}),
    },
  };
  if (Object.keys(cm.data).length > 0) manifest.data = cm.data;
  if (Object.keys(cm.binaryData).length > 0) manifest.binaryData = cm.binaryData;
  return manifest;
}

export function toYaml(manifest: Record<string, unknown>): string {
  // Sorted keys like kubectl; literal blocks and no folding, so file contents stay byte-exact.
  return stringify(manifest, { sortMapEntries: true, blockQuote: 'literal', lineWidth: 0 });
}
