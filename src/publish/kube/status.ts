/**
 * The status ConfigMap (`<instance>-status`, `zeta-provision-status` by default) and the Events on it.
 * It holds the applied record (with what this instance manages: objects and consumer input hashes, so
 * later runs can prune Secrets without listing them and roll a consumer out only when its inputs
 * changed) and a condition per stage (Fetched, Verified, Published), as Flux does. It is written only
 * when something changed — an up-to-date run writes nothing — and an Event goes with each write.
 */
import { hostname } from 'node:os';
import type { EventReason } from '../../errors.js';
import { MANAGED_BY_LABEL, MANAGER } from '../manifest.js';
import { RECORD_VERSION, parseRecord, storedVersion, type AppliedRecord } from '../record.js';
import type { Condition, DriftItem, RunStatus } from '../target.js';
import { kubeFromV1 } from '../upgrade.js';
import { labelsFor, type ObjectKind } from './objects.js';

export const STATUS_KEY = 'status.json';

/** What record.targets.kube holds. */
export interface KubeDetail {
  namespace: string;
  /** Objects this instance manages (what a later prune may delete). */
  objects: { kind: ObjectKind; name: string; contentHash: string }[];
  /** Consumer → hash of the inputs it was last rolled out for. */
  consumers: Record<string, string>;
}

export interface KubeStatusDoc {
  version: typeof RECORD_VERSION;
  /** The last run that converged completely; the up-to-date check compares the live state with it. */
  applied?: AppliedRecord;
  outcome: RunStatus['outcome'];
  message: string;
  conditions: (Condition & { lastTransitionTime: string })[];
  /** What the last run repaired. */
  drift?: DriftItem[];
  /** Read from an older format (rewritten by the next write). */
  upgradedFrom?: number;
}

export function statusName(instance: string): string {
  return `${instance}-status`;
}

/** Throws for a newer format; undefined for anything unreadable (counts as absent: one re-apply). */
export function parseStatusDoc(data: Record<string, string> | undefined, namespace: string, where: string): KubeStatusDoc | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(data?.[STATUS_KEY] ?? '');
  } catch {
    return undefined;
  }
  const version = storedVersion(doc, where);
  if (version === 1) {
    const applied = kubeFromV1(doc as Record<string, unknown>, namespace);
    return {
      version: RECORD_VERSION,
      ...(applied ? { applied } : {}),
      outcome: 'applied',
      message: 'recorded by release 0.1.0',
      conditions: [],
      upgradedFrom: 1,
    };
  }
  if (version !== RECORD_VERSION) return undefined;
  const d = doc as Partial<KubeStatusDoc>;
  const applied = parseRecord(d.applied);
  return {
    version: RECORD_VERSION,
    ...(applied ? { applied } : {}),
    outcome: d.outcome ?? 'applied',
    message: typeof d.message === 'string' ? d.message : '',
    conditions: Array.isArray(d.conditions) ? d.conditions : [],
    ...(Array.isArray(d.drift) ? { drift: d.drift } : {}),
  };
}

/** The next status document; lastTransitionTime moves only when a condition's status changes. */
export function nextStatusDoc(previous: KubeStatusDoc | undefined, applied: AppliedRecord | undefined, run: RunStatus, now: Date): KubeStatusDoc {
  const at = now.toISOString();
  const conditions = run.conditions.map((c) => {
    const before = previous?.conditions.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: before && before.status === c.status ? before.lastTransitionTime : at };
  });
  return {
    version: RECORD_VERSION,
    ...(applied ? { applied } : {}),
    outcome: run.outcome,
    message: run.message,
    conditions,
    ...(run.drift.length ? { drift: run.drift } : {}),
  };
}

/** Same content apart from times: then nothing is written (and no Event sent). */
export function sameStatus(a: KubeStatusDoc | undefined, b: KubeStatusDoc): boolean {
  if (!a || a.upgradedFrom !== undefined) return false;
  const strip = (d: KubeStatusDoc): string =>
    JSON.stringify({
      ...d,
      applied: d.applied ? { ...d.applied, appliedAt: undefined } : undefined,
      conditions: d.conditions.map((c) => ({ ...c, lastTransitionTime: undefined })),
    });
  return strip(a) === strip(b);
}

export function statusBody(instance: string, namespace: string, doc: KubeStatusDoc): Record<string, unknown> {
  const { upgradedFrom: _u, ...stored } = doc;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: statusName(instance), namespace, labels: labelsFor(instance) },
    data: { [STATUS_KEY]: JSON.stringify(stored, null, 2) + '\n' },
  };
}

const NORMAL = new Set<EventReason>(['Provisioned', 'DriftCorrected', 'RolledBack']);

export function eventBody(
  statusObject: { name: string; namespace: string; uid?: string; resourceVersion?: string },
  reason: EventReason,
  message: string,
  now: Date,
): Record<string, unknown> {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${statusObject.name}.`, namespace: statusObject.namespace, labels: { [MANAGED_BY_LABEL]: MANAGER } },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: statusObject.name,
      namespace: statusObject.namespace,
      uid: statusObject.uid,
      resourceVersion: statusObject.resourceVersion,
    },
    reason,
    // Events are capped at 1 KiB of message by convention (kubectl describe truncates too).
    message: message.length > 1024 ? message.slice(0, 1021) + '...' : message,
    type: NORMAL.has(reason) ? 'Normal' : 'Warning',
    source: { component: MANAGER, host: hostname() },
    reportingComponent: MANAGER,
    reportingInstance: hostname().slice(0, 128),
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}
