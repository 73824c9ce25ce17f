/**
 * Pure: how a run ended as the status records it — the outcome, one line, and a condition per stage
 * (Fetched, Verified, Published) with the reason from the one table in errors.ts.
 */
import { SUCCESS_REASONS, failureOf, type Stage, type ZetaError } from '../errors.js';
import type { RunStatus } from '../publish/target.js';
import type { Plan } from './index.js';

/** Conditions of a run that got through every stage. */
export function runStatus(outcome: RunStatus['outcome'], plan: Plan, meta: { source: string; digest: string; revision?: string }): RunStatus {
  const at = `${meta.source}@${meta.digest}${meta.revision ? ` revision ${meta.revision}` : ''}`;
  const drift = plan.drift ?? [];
  const changes = (plan.targets ?? []).flatMap((p) => p.actions.map((a) => `${p.target}: ${a}`));
  const message =
    outcome === 'drift-corrected'
      ? `drift corrected: ${drift.map((d) => `${d.target} ${d.object} (${d.what})`).join(', ')} (${at})`
      : `applied ${at}${changes.length ? `: ${changes.join(', ')}` : ''}`;
  return {
    outcome,
    message,
    drift,
    conditions: [
      { type: 'Fetched', status: 'True', reason: 'Fetched', message: `resolved ${meta.digest}` },
      { type: 'Verified', status: 'True', reason: 'Verified', message: 'every required check passed' },
      { type: 'Published', status: 'True', reason: SUCCESS_REASONS[outcome === 'failed' ? 'applied' : outcome], message },
    ],
  };
}

/** The failed stage is False with the reason from the one table; earlier stages True, later Unknown. */
export function failedStatus(err: ZetaError, digest: string | undefined): RunStatus {
  const f = failureOf(err);
  const stages: Stage[] = ['Fetched', 'Verified', 'Published'];
  const failedAt = stages.indexOf(f.stage);
  const conditions = stages.map((type, i) => ({
    type,
    status: i < failedAt ? ('True' as const) : i === failedAt ? ('False' as const) : ('Unknown' as const),
    reason: i < failedAt ? type : i === failedAt ? f.reason : 'NotReached',
    message: i === failedAt ? err.message : i < failedAt ? (type === 'Fetched' ? `resolved ${digest ?? ''}` : 'every required check passed') : '',
  }));
  return { outcome: 'failed', message: err.message, drift: [], conditions };
}
