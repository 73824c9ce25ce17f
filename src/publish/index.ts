/**
 * Publish stage: the only door the pipeline uses to its targets. Every step runs over the list of
 * targets in order (targets.ts); nothing here knows which targets exist.
 */
import type { Settings } from '../config/index.js';
import type { Logger } from '../log.js';
import { combinePlans, type Plan, type VolumePlan } from '../plan/index.js';
import type { DesiredOutputs } from '../process/types.js';
import type { CocoReport } from './coco/index.js';
import type { KubePublishReport } from './kube/index.js';
import { samePayload, type AppliedRecord } from './record.js';
import type { DriftItem, Observed, RollbackSource, RunStatus, Target, TargetPlan } from './target.js';
import { FACTORIES } from './targets.js';
import type { VolumePublishResult } from './volume/index.js';

export { newRecord, RECORD_VERSION, type AppliedRecord } from './record.js';
export type { Condition, DriftItem, RollbackSource, RunStatus, Target, TargetFactory, TargetPlan } from './target.js';
export { KubePublishError } from './kube/report.js';
export { GENERATION_PATTERN } from './volume/layout.js';

export type Observations = Map<string, Observed>;

export async function openTargets(
  settings: Settings,
  log: Logger,
  warnings: string[],
  purpose: 'run' | 'rollback' = 'run',
  only?: string[],
): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    for (const f of FACTORIES.filter((x) => !only || only.includes(x.id))) {
      const t = await f.open(settings, log, warnings, purpose);
      if (t) targets.push(t);
    }
  } catch (err) {
    closeTargets(targets);
    throw err;
  }
  return targets;
}

export async function observeTargets(targets: Target[]): Promise<Observations> {
  const out: Observations = new Map();
  for (const t of targets) out.set(t.id, await t.observe());
  return out;
}

export interface Convergence {
  upToDate: boolean;
  /** The applied record the targets agree on (the first one found), for freshness and revision. */
  record?: AppliedRecord;
  drift: DriftItem[];
  /** Why the run is not up to date, in words (for the log). */
  why: string[];
}

/** Pure: up to date means the same payload and config AND every target's live state holds it. */
export function convergence(targets: Target[], observed: Observations, digest: string, configHash: string): Convergence {
  const why: string[] = [];
  const drift: DriftItem[] = [];
  let record: AppliedRecord | undefined;
  for (const t of targets) {
    const o = observed.get(t.id);
    const r = o?.record;
    if (!o || !r) {
      why.push(`${t.id}: nothing applied yet`);
      continue;
    }
    record ??= r;
    if (!samePayload(r, digest, configHash)) {
      why.push(`${t.id}: holds ${r.digest}${r.configHash !== configHash ? ' with another config' : ''}`);
      continue;
    }
    const d = t.check(r, o.live);
    drift.push(...d);
    if (d.length) why.push(`${t.id}: ${d.map((x) => `${x.object} ${x.what}`).join(', ')}`);
  }
  return { upToDate: targets.length > 0 && why.length === 0, record, drift, why };
}

/** The run's plan for the report, and each target's own plan for apply (never reported: it holds the data). */
export interface TargetsPlan {
  plan: Plan;
  parts: TargetPlan[];
}

export function planTargets(
  targets: Target[],
  desired: DesiredOutputs,
  observed: Observations,
  meta: Pick<AppliedRecord, 'source' | 'digest' | 'revision'>,
): TargetsPlan {
  const parts: TargetPlan[] = targets.map((t) =>
    (t.plan as (d: DesiredOutputs, o: Observed, m: typeof meta) => TargetPlan)(desired, observed.get(t.id)!, meta),
  );
  const volume = parts.find((p) => p.target === 'volume')?.detail as { volume?: VolumePlan } | undefined;
  return { plan: combinePlans(desired, parts, volume?.volume), parts };
}

export interface PublishResult {
  volume?: VolumePublishResult;
  configMapsWritten: string[];
  statusWritten: boolean;
  kube?: KubePublishReport;
  /** What killed runs had left and this run removed. */
  tidied?: string[];
  /** The CoCo initdata target's outcome (current and overlapping reference values, consumers written). */
  initdata?: CocoReport;
  /** Whether any target wrote anything (a dry run: would have). */
  changed?: boolean;
}

/** Each target applies its part in order, adding its details to the record. */
export async function applyTargets(targets: Target[], plan: TargetsPlan, record: AppliedRecord, opts: { dryRun: boolean }): Promise<PublishResult> {
  const result: PublishResult = { configMapsWritten: [], statusWritten: false };
  for (const t of targets) {
    const part = plan.parts.find((p) => p.target === t.id);
    if (!part) continue;
    const applied = await t.apply(part, record, opts);
    if (applied.details !== undefined) record.targets[t.id] = applied.details;
    result.changed ||= applied.wrote;
    collect(result, t.id, applied.report);
  }
  return result;
}

function collect(result: PublishResult, id: string, report: unknown): void {
  if (id === 'volume' && (report as VolumePublishResult).changed) result.volume = report as VolumePublishResult;
  if (id === 'volume') result.statusWritten ||= (report as VolumePublishResult).recordWritten ?? false;
  if (id === 'kube-out') result.configMapsWritten.push(...(report as { written: string[] }).written);
  if (id === 'coco-initdata') result.initdata = report as CocoReport;
  if (id === 'kube') {
    result.kube = report as KubePublishReport;
    result.configMapsWritten.push(...result.kube.applied.map((a) => a.name));
  }
}

/** Store the record beside every target; a target that already holds exactly it writes nothing. */
export async function recordTargets(
  targets: Target[],
  record: AppliedRecord | undefined,
  run: RunStatus,
  observed: Observations | undefined,
): Promise<boolean> {
  let wrote = false;
  for (const t of targets) {
    try {
      wrote = (await t.record(record, run, observed?.get(t.id))) || wrote;
    } catch (err) {
      // Only a failure is recorded best effort; a successful run's record must be written.
      if (record) throw err;
    }
  }
  return wrote;
}

export async function tidyTargets(targets: Target[], observed: Observations): Promise<string[]> {
  const out: string[] = [];
  for (const t of targets) out.push(...(await t.tidy(observed.get(t.id))).map((x) => `${t.id}: ${x}`));
  return out;
}

export interface RollbackPlan {
  to: RollbackSource;
  /** Targets that cannot restore it, each with the reason: then nothing is changed. */
  problems: string[];
}

/** The earlier payload to go back to (`to` = a generation name, default the previous one), and who cannot. */
export async function planRollback(targets: Target[], observed: Observations, to?: string): Promise<RollbackPlan | undefined> {
  let sources: RollbackSource[] = [];
  for (const t of targets) if (t.rollbackSources) sources = sources.concat(await t.rollbackSources());
  const source = to ? sources.find((s) => s.ref === to) : sources[0];
  if (!source) return undefined;
  const problems = targets
    .map((t) => ({ t, p: t.rollbackProblem(source, observed.get(t.id)!) }))
    .filter((x) => x.p)
    .map((x) => `${x.t.id}: ${x.p}`);
  return { to: source, problems };
}

export async function rollbackTargets(
  targets: Target[],
  observed: Observations,
  to: RollbackSource,
): Promise<{ record: AppliedRecord; results: Record<string, unknown> }> {
  const from = [...observed.values()].find((o) => o.record)?.record;
  const record: AppliedRecord = {
    ...to.record,
    targets: { ...to.record.targets },
    rollback: { fromDigest: from?.digest ?? '', ...(from ? { fromConfigHash: from.configHash } : {}), at: new Date().toISOString() },
  };
  const results: Record<string, unknown> = {};
  for (const t of targets) {
    const r = await t.rollback(to, observed.get(t.id)!);
    if (r.details !== undefined) record.targets[t.id] = r.details;
    results[t.id] = r.report;
  }
  return { record, results };
}

export function closeTargets(targets: Target[]): void {
  for (const t of targets) t.close();
}
