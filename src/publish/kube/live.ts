/**
 * Pure: what a live object from the API holds, and whether it still matches what was applied. The hash
 * is computed from the live data itself — never read from our own annotation — so an edit by anyone
 * (kubectl edit, another field manager, a restore) is seen as drift by the LIST the run makes anyway.
 */
import { contentHash } from '../../process/content-hash.js';
import { MANAGED_BY_LABEL, MANAGER } from '../manifest.js';
import type { DriftItem } from '../target.js';
import type { LiveObject } from './decide.js';
import { inputsHashes, type ObjectKind, type TargetSpec } from './objects.js';
import type { KubeDetail } from './status.js';
import type { ApiObject } from './api-object.js';

/**
 * The same hash the process stage gives a ConfigMapObject (sorted keys; key, length and bytes), over
 * the decoded bytes: ConfigMap `data` as UTF-8, `binaryData` and every Secret value from base64.
 */
export function liveDataHash(kind: ObjectKind, item: ApiObject): string {
  const entries: { key: string; bytes: Buffer }[] = [];
  for (const [key, v] of Object.entries((item.data ?? {}) as Record<string, string>))
    entries.push({ key, bytes: kind === 'Secret' ? Buffer.from(String(v), 'base64') : Buffer.from(String(v), 'utf8') });
  if (kind === 'ConfigMap')
    for (const [key, v] of Object.entries((item.binaryData ?? {}) as Record<string, string>)) entries.push({ key, bytes: Buffer.from(String(v), 'base64') });
  return contentHash(entries);
}

export function liveOf(kind: ObjectKind, item: ApiObject): LiveObject {
  const ours = item.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGER;
  const managers = ((item.metadata?.managedFields ?? []) as { manager?: string }[]).map((m) => String(m.manager ?? 'unknown')).filter((m) => m !== MANAGER);
  return {
    kind,
    name: String(item.metadata?.name),
    contentHash: ours ? liveDataHash(kind, item) : undefined,
    resourceVersion: item.metadata?.resourceVersion,
    otherManagers: [...new Set(managers)].sort(),
    ours,
  };
}

/**
 * Does the live state hold what the record says this instance applied? Deleted and changed objects,
 * and consumers not yet rolled out onto the recorded inputs, each become one DriftItem.
 */
export function kubeDrift(detail: KubeDetail | undefined, live: Map<string, LiveObject>, targets: TargetSpec[], namespace: string): DriftItem[] {
  if (!detail) return [{ target: 'kube', object: `namespace ${namespace}`, what: 'no record of what was applied' }];
  if (detail.namespace !== namespace) return [{ target: 'kube', object: `namespace ${namespace}`, what: `the record is for namespace ${detail.namespace}` }];
  const drift: DriftItem[] = [];
  const recorded = new Map(detail.objects.map((o) => [`${o.kind}/${o.name}`, o]));
  for (const t of targets) {
    const key = `${t.kind}/${t.name}`;
    const r = recorded.get(key);
    const l = live.get(key);
    if (!r) drift.push({ target: 'kube', object: key, what: 'not applied yet' });
    else if (!l) drift.push({ target: 'kube', object: key, what: 'deleted' });
    else if (!l.ours) drift.push({ target: 'kube', object: key, what: 'managed-by label removed' });
    else if (l.contentHash !== r.contentHash)
      drift.push({ target: 'kube', object: key, what: `data changed${l.otherManagers?.length ? ` (field managers: ${l.otherManagers.join(', ')})` : ''}` });
  }
  const hashes = inputsHashes(targets, new Map(detail.objects.map((o) => [o.name, o.contentHash])));
  for (const [ref, hash] of hashes) if (detail.consumers[ref] !== hash) drift.push({ target: 'kube', object: ref, what: 'rollout pending' });
  return drift;
}
