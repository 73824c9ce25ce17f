/**
 * Pure decisions of the API publisher: which objects to write, which to prune, which consumers to
 * roll out. No I/O, so "a run with no change makes no write and no rollout" is a unit-testable fact.
 */
import type { DesiredObject, ObjectKind, TargetSpec } from './objects.js';
import { inputsHashes } from './objects.js';
import type { KubeDetail } from './status.js';

export interface LiveObject {
  kind: ObjectKind;
  name: string;
  /** Hash of the live data (computed, not read from our annotation), when the object is ours. */
  contentHash?: string;
  /** Field managers other than ours that own fields of the object (from managedFields). */
  otherManagers?: string[];
  /** Whether it carries our managed-by label. */
  ours?: boolean;
  resourceVersion?: string;
}

export interface KubePlan {
  apply: { object: DesiredObject; action: 'create' | 'update'; resourceVersion?: string }[];
  unchanged: DesiredObject[];
  prune: { kind: ObjectKind; name: string }[];
  /** Consumers whose inputs hash differs from the one they were last rolled out for. */
  restart: { ref: string; hash: string; inputs: string[] }[];
}

const key = (kind: string, name: string): string => `${kind}/${name}`;

export function decide(
  desired: DesiredObject[],
  live: Map<string, LiveObject>,
  targets: TargetSpec[],
  previous: Pick<KubeDetail, 'objects' | 'consumers'> | undefined,
  opts: { prune: boolean; statusName: string },
): KubePlan {
  const plan: KubePlan = { apply: [], unchanged: [], prune: [], restart: [] };
  for (const object of desired) {
    const now = live.get(key(object.kind, object.name));
    if (now && now.contentHash === object.contentHash) plan.unchanged.push(object);
    else plan.apply.push({ object, action: now ? 'update' : 'create', resourceVersion: now?.resourceVersion });
  }
  if (opts.prune) {
    const wanted = new Set(desired.map((d) => key(d.kind, d.name)));
    const candidates = new Map<string, { kind: ObjectKind; name: string }>();
    // Live ConfigMaps come from the labelled LIST; Secrets are never listed (list = read every
    // Secret in the namespace), so they are pruned from the record of what this instance made.
    for (const l of live.values()) if (l.kind === 'ConfigMap') candidates.set(key(l.kind, l.name), l);
    for (const o of previous?.objects ?? []) candidates.set(key(o.kind, o.name), o);
    for (const [k, c] of candidates)
      if (!wanted.has(k) && !(c.kind === 'ConfigMap' && c.name === opts.statusName)) plan.prune.push({ kind: c.kind, name: c.name });
    plan.prune.sort((a, b) => (key(a.kind, a.name) < key(b.kind, b.name) ? -1 : 1));
  }
  const hashes = inputsHashes(targets, new Map(desired.map((d) => [d.name, d.contentHash])));
  for (const [ref, hash] of [...hashes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (previous?.consumers[ref] === hash) continue;
    const inputs = targets.filter((t) => t.consumers.some((c) => c.ref === ref)).map((t) => t.name);
    plan.restart.push({ ref, hash, inputs });
  }
  return plan;
}
