/**
 * The publish plug-in point: everything the pipeline can write to is a Target, held in a list. The
 * pipeline never knows which targets exist; it talks to publish/index.ts, which runs each step over
 * the list in order (volume first, then API objects and manifests, as DESIGN.md fixes).
 *
 * Adding a target (the CoCo initdata targets are next) means:
 *   1. one new file under src/publish/ exporting a TargetFactory (`open` returns undefined when the
 *      settings do not ask for this target), implementing the methods below;
 *   2. one line in FACTORIES in src/publish/targets.ts (the order there is the apply order).
 * The factory gets the run's settings and logger; anything it needs from the config it reads there.
 *
 * Contract of each method (in the order the pipeline calls them):
 *   observe()   cheap read of the live state and of the record this target keeps (for the API: one
 *               label-selected LIST; for a directory: readlink/stat, no hashing of large files). It
 *               must write nothing: an up-to-date run consists of observe() and check() only.
 *   check()     pure: does the live state still hold what the record says this target applied? Each
 *               difference is a DriftItem (deleted, changed by someone else, missing file, …).
 *   plan()      pure: desired outputs vs the observation → what apply would do, as report lines.
 *   apply()     make the live state match the plan (server-side dry run: validate, store nothing) and
 *               return the details to keep in the record under `record.targets[id]`.
 *   record()    store the run's record beside the target; write nothing if it already says exactly
 *               this (a converged run writes nothing anywhere).
 *   tidy()      remove what killed runs left (temp files, stale locks, extra generations); cheap when
 *               there is nothing to tidy. Runs on every real run, also an up-to-date one.
 *   rollbackProblem()/rollback()  move back to an earlier applied record; a target that cannot
 *               restore it says so first, so the pipeline refuses before any target changes.
 *   close()     release connections.
 */
import type { Settings } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ConfigMapObject, DesiredOutputs } from '../process/types.js';
import type { AppliedRecord } from './record.js';

/** A difference between what was applied and what is live now, for the report, the status and the Event. */
export interface DriftItem {
  target: string;
  /** `ConfigMap/nginx-config`, `keycloak-data/realm.json`, `deployment/opa`. */
  object: string;
  /** What differs: `deleted`, `data changed (by kubectl-edit)`, `missing`, `rollout pending`. */
  what: string;
}

export interface Observed<Live = unknown> {
  /** The record this target keeps, when there is one it can read (newer formats throw). */
  record?: AppliedRecord;
  /** The stored record is in an older format: the next run that applies rewrites it. */
  stale?: boolean;
  live: Live;
}

export interface TargetPlan<Detail = unknown> {
  target: string;
  /** Would apply write anything? */
  changes: boolean;
  /** Part of the changes: repairs of drift (the same payload, live state differs). */
  drift: DriftItem[];
  /** One line per change: `create ConfigMap/x`, `update ConfigMap/y (drift: deleted)`, `rollout deployment/opa`. */
  actions: string[];
  /** Target-specific plan, passed back to apply(). */
  detail: Detail;
  /** Per published object (ConfigMap/Secret name), for the report's object list. */
  objects?: { name: string; action: 'create' | 'update' | 'unchanged' }[];
}

export interface ApplyOptions {
  /** Server-side dry run: validate and answer, store nothing. Client-side dry runs never call apply. */
  dryRun: boolean;
}

export interface TargetApplied<Report = unknown> {
  /** Whether anything was written (a dry run: would be). */
  wrote: boolean;
  /** What to keep under record.targets[id] (never secret values). */
  details: unknown;
  /** For the run report. */
  report: Report;
}

/** What a rollback restores: an earlier applied record and the outputs that were kept for it. */
export interface RollbackSource {
  record: AppliedRecord;
  /** The non-secret API objects that payload produced (Secret data is never kept anywhere). */
  configMaps: ConfigMapObject[];
  /** Target-specific handle (the volume: the generation name). */
  ref: string;
}

/** How the run ended, for record(): the status keeps a condition per stage, as Flux does. */
export interface RunStatus {
  outcome: 'applied' | 'drift-corrected' | 'rolled-back' | 'failed';
  conditions: Condition[];
  /** One line: what changed, what drifted, or why it failed. */
  message: string;
  drift: DriftItem[];
}

export interface Condition {
  type: 'Fetched' | 'Verified' | 'Published';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface Target<Live = unknown, Detail = unknown, Report = unknown> {
  /** Key in record.targets and in reports: `volume`, `kube`, `kube-out`. */
  readonly id: string;
  /** Where it writes, for the report: a path or `namespace zeta (in-cluster)`. */
  readonly where: string;
  observe(): Promise<Observed<Live>>;
  check(record: AppliedRecord, live: Live): DriftItem[];
  plan(desired: DesiredOutputs, observed: Observed<Live>): TargetPlan<Detail>;
  apply(plan: TargetPlan<Detail>, record: AppliedRecord, opts: ApplyOptions): Promise<TargetApplied<Report>>;
  /** `record` is undefined for a failed run: then only the run's conditions are recorded. */
  record(record: AppliedRecord | undefined, run: RunStatus, observed: Observed<Live> | undefined): Promise<boolean>;
  tidy(observed: Observed<Live> | undefined): Promise<string[]>;
  /** Earlier applied payloads this target can go back to (only targets that keep history). */
  rollbackSources?(): Promise<RollbackSource[]>;
  /** Why this target cannot restore `to` (undefined: it can). Must not write. */
  rollbackProblem(to: RollbackSource, observed: Observed<Live>): string | undefined;
  rollback(to: RollbackSource, observed: Observed<Live>): Promise<TargetApplied<Report>>;
  close(): void;
}

/** Opens a target when the settings ask for it. `warnings` are reported (e.g. a dry run without a cluster). */
export interface TargetFactory {
  id: string;
  /** `purpose` rollback: open whatever holds history even when the config publishes nothing to it. */
  open(settings: Settings, log: Logger, warnings: string[], purpose?: 'run' | 'rollback'): Promise<Target | undefined>;
}
