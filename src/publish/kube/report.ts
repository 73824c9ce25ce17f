/** What a publish through the API did, for the run report and the Event. */
import { PublishError } from '../../errors.js';
import type { ProvenanceMeta } from '../manifest.js';

export interface KubeObjectRef {
  kind: string;
  name: string;
}

export interface KubePublishReport {
  server: string;
  namespace: string;
  dryRun?: 'server';
  applied: (KubeObjectRef & { action: 'create' | 'update' })[];
  unchanged: KubeObjectRef[];
  pruned: KubeObjectRef[];
  restarted: { workload: string; inputs: string[] }[];
  /** What this run should have done and did not (each with the reason). */
  pending: (KubeObjectRef & { step: 'apply' | 'prune' | 'restart'; error: string })[];
  statusWritten: boolean;
  requests: number;
}

/** One line for the Event on the status record. */
export function summary(r: KubePublishReport, meta: ProvenanceMeta): string {
  const what = `applied ${r.applied.length}, unchanged ${r.unchanged.length}, pruned ${r.pruned.length}, rolled out ${r.restarted.length}`;
  const pending = r.pending.length > 0 ? `; ${r.pending.length} pending: ${r.pending.map((p) => `${p.step} ${p.kind}/${p.name}`).join(', ')}` : '';
  return `${what}${pending} (source ${meta.source}@${meta.digest}${meta.revision ? ` revision ${meta.revision}` : ''})`;
}

/** A publish that failed part-way: the report says what was applied and what is pending. */
export class KubePublishError extends PublishError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly report: KubePublishReport,
  ) {
    super(message, hint);
  }
}
