/**
 * What a publish did, for the run report, and the status record it leaves (pure). The record keeps
 * the last converged run, so after a partial failure the next run is not "up to date" and retries
 * exactly what is pending.
 */
import type { ProvenanceMeta } from '../manifest.js';
import type { DesiredObject } from './objects.js';
import type { KubeOutcome, KubeStatusRecord } from './status.js';

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

/** What a publish records about the payload: its provenance, config hash and freshness. */
export type PublishMeta = ProvenanceMeta & { configHash?: string } & Pick<KubeStatusRecord, 'earliestCertificateExpiry' | 'tslNextUpdate'>;

/** The status record after a publish: previous knowledge plus what this run converged. */
export function nextStatusRecord(
previous: KubeStatusRecord | undefined,
desired: DesiredObject[],
report: KubePublishReport,
restarted: Record<string, string>,
meta: PublishMeta,
): KubeStatusRecord {
  // Freshness of what this run applied (certificate expiry, TSL next update), as the pipeline derived it.
  const freshness = { earliestCertificateExpiry: meta.earliestCertificateExpiry, tslNextUpdate: meta.tslNextUpdate };
  const pendingNames = new Set(report.pending.filter((p) => p.step === 'apply').map((p) => `${p.kind}/${p.name}`));
  const pruned = new Set(report.pruned.map((p) => `${p.kind}/${p.name}`));
  const objects = new Map((previous?.objects ?? []).filter((o) => !pruned.has(`${o.kind}/${o.name}`)).map((o) => [`${o.kind}/${o.name}`, o]));
  for (const d of desired) if (!pendingNames.has(`${d.kind}/${d.name}`)) objects.set(`${d.kind}/${d.name}`, { kind: d.kind, name: d.name, contentHash: d.contentHash });
  const now = new Date().toISOString();
  const complete = report.pending.length === 0;
  const outcome: KubeOutcome = !complete ? 'partial' : report.applied.length + report.pruned.length + report.restarted.length > 0 ? 'applied' : 'no-changes';
  return {
    version: 1,
    outcome,
    time: now,
    source: meta.source,
    digest: meta.digest,
    revision: meta.revision,
    counts: { applied: report.applied.length, unchanged: report.unchanged.length, pruned: report.pruned.length, restarted: report.restarted.length, pending: report.pending.length },
    lastApplied: complete && meta.configHash ? { source: meta.source, digest: meta.digest, revision: meta.revision, configHash: meta.configHash, appliedAt: now, ...freshness } : previous?.lastApplied,
    objects: [...objects.values()].sort((a, b) => (`${a.kind}/${a.name}` < `${b.kind}/${b.name}` ? -1 : 1)),
    consumers: { ...(previous?.consumers ?? {}), ...restarted },
    ...freshness,
  };
}

/** One line for the Event on the status record. */
export function summary(r: KubePublishReport, meta: ProvenanceMeta): string {
  const what = `applied ${r.applied.length}, unchanged ${r.unchanged.length}, pruned ${r.pruned.length}, rolled out ${r.restarted.length}`;
  const pending = r.pending.length > 0 ? `; ${r.pending.length} pending: ${r.pending.map((p) => `${p.step} ${p.kind}/${p.name}`).join(', ')}` : '';
  return `${what}${pending} (source ${meta.source}@${meta.digest}${meta.revision ? ` revision ${meta.revision}` : ''})`;
}
