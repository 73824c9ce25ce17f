/**
 * The status ConfigMap (`<instance>-status`, `zeta-provision-status` by default) and the Events on
 * it. The record says what the last run did and remembers what this instance manages (objects and
 * consumer input hashes), so later runs can prune Secrets without listing them and restart a
 * consumer only when its inputs changed.
 */
import { hostname } from 'node:os';
import { MANAGED_BY_LABEL, MANAGER } from '../manifest.js';
import type { AppliedRecord } from '../status.js';
import { labelsFor, type ObjectKind } from './objects.js';

export const STATUS_KEY = 'status.json';

export type KubeOutcome = 'applied' | 'no-changes' | 'up-to-date' | 'failed' | 'partial';

export type { AppliedRecord } from '../status.js';

export interface KubeStatusRecord {
  version: 1;
  outcome: KubeOutcome;
  time: string;
  source?: string;
  digest?: string;
  revision?: string;
  counts: { applied: number; unchanged: number; pruned: number; restarted: number; pending: number };
  /** The last run that converged completely; the up-to-date check reads only this. */
  lastApplied?: AppliedRecord;
  /** Objects this instance manages (what a later prune may delete). */
  objects: { kind: ObjectKind; name: string; contentHash: string }[];
  /** Consumer → hash of the inputs it was last rolled out for. */
  consumers: Record<string, string>;
  earliestCertificateExpiry?: string;
  tslNextUpdate?: string;
  error?: string;
}

export function statusName(instance: string): string {
  return `${instance}-status`;
}

export function parseStatusRecord(data: Record<string, string> | undefined): KubeStatusRecord | undefined {
  try {
    const r = JSON.parse(data?.[STATUS_KEY] ?? '') as Partial<KubeStatusRecord>;
    // A record we cannot trust counts as absent: the worst outcome is one re-apply and one rollout.
    if (r.version !== 1 || !Array.isArray(r.objects) || typeof r.consumers !== 'object' || r.consumers === null) return undefined;
    return r as KubeStatusRecord;
  } catch {
    return undefined;
  }
}

export function statusBody(instance: string, namespace: string, record: KubeStatusRecord): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: statusName(instance), namespace, labels: labelsFor(instance) },
    data: { [STATUS_KEY]: JSON.stringify(record, null, 2) + '\n' },
  };
}

export type EventReason = 'Provisioned' | 'UpToDate' | 'VerificationFailed' | 'PublishFailed';

export function eventBody(statusObject: { name: string; namespace: string; uid?: string; resourceVersion?: string }, reason: EventReason, message: string, now: Date): Record<string, unknown> {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${statusObject.name}.`, namespace: statusObject.namespace, labels: { [MANAGED_BY_LABEL]: MANAGER } },
    involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name: statusObject.name, namespace: statusObject.namespace, uid: statusObject.uid, resourceVersion: statusObject.resourceVersion },
    reason,
    // Events are capped at 1 KiB of message by convention (kubectl describe truncates too).
    message: message.length > 1024 ? message.slice(0, 1021) + '...' : message,
    type: reason === 'Provisioned' || reason === 'UpToDate' ? 'Normal' : 'Warning',
    source: { component: MANAGER, host: hostname() },
    reportingComponent: MANAGER,
    reportingInstance: hostname().slice(0, 128),
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}
