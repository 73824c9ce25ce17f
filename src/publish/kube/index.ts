/**
 * The Kubernetes API as a Target: ConfigMaps (and Secrets for sensitive files) by server-side apply
 * with field manager `zeta-provision`, opt-in prune, rollouts of consumers whose inputs changed, and
 * the status ConfigMap with its Events.
 *
 * Observing costs one label-selected LIST of our ConfigMaps (it returns their data, which is hashed
 * here, and the status ConfigMap) plus one GET per Secret target (listing Secrets would need the right
 * to read every Secret in the namespace). Nothing else is requested and nothing is written by an
 * up-to-date run. Requests retry within a deadline; a partial failure lists what was applied and what
 * not. Secret contents never reach a log line, an error or the report.
 */
import { PublishError, type EventReason } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DesiredOutputs } from '../../process/types.js';
import { MANAGER } from '../manifest.js';
import type { AppliedRecord } from '../record.js';
import type { DriftItem, Observed, RollbackSource, RunStatus, Target, TargetApplied, TargetPlan } from '../target.js';
import { loadConnection, type Connection, type ConnectionOptions } from './connection.js';
import { decide, type KubePlan, type LiveObject } from './decide.js';
import { ApiRequestError, KubeHttp } from './http.js';
import { kubeDrift, liveOf } from './live.js';
import { buildDesiredObject, secretValues, selectorFor, type DesiredObject, type ObjectKind, type TargetSpec } from './objects.js';
import type { KubeObjectRef, KubePublishReport } from './report.js';
import { runPlan } from './run.js';
import { eventBody, nextStatusDoc, parseStatusDoc, sameStatus, statusBody, statusName, type KubeDetail, type KubeStatusDoc } from './status.js';
import type { ApiObject } from './api-object.js';
import { describeApiError } from './api-error.js';

export { parseWorkloadRef, type TargetSpec, type WorkloadRef } from './objects.js';
export { loadConnection } from './connection.js';
export type { KubeObjectRef, KubePublishReport } from './report.js';

export interface KubeOptions extends ConnectionOptions {
  namespace?: string;
  instance: string;
  targets: TargetSpec[];
  prune: boolean;
  forceConflicts: boolean;
  deadlineSeconds: number;
  log: Logger;
  random?: () => number;
}

/** Exit 5 with the report of what was applied and what is pending; the next run converges. */
import { KubePublishError } from './report.js';

export { KubePublishError };

export interface KubeLive {
  /** `Kind/name` → live object, for ConfigMaps from the LIST and Secrets by GET. */
  objects: Map<string, LiveObject>;
  status?: { doc?: KubeStatusDoc; uid?: string };
}

export interface KubePlanDetail {
  desired: DesiredObject[];
  plan: KubePlan;
  previous?: KubeDetail;
}

const PATHS: Record<string, string> = { ConfigMap: '/api/v1/namespaces/%ns/configmaps', Secret: '/api/v1/namespaces/%ns/secrets' };
export const APPLY = 'application/apply-patch+yaml';
/** The status record and its event get their own short budget, so a failure can still be recorded. */
const STATUS_BUDGET_MS = 5_000;
const ID = 'kube';

export class KubeTarget implements Target<KubeLive, KubePlanDetail, KubePublishReport> {
  readonly id = ID;
  readonly namespace: string;
  readonly http: KubeHttp;

  static async open(options: KubeOptions): Promise<KubeTarget> {
    return new KubeTarget(options, await loadConnection(options));
  }

  private constructor(
    readonly options: KubeOptions,
    connection: Connection,
  ) {
    this.namespace = options.namespace ?? connection.namespace ?? 'default';
    this.http = new KubeHttp(connection, {
      deadline: Date.now() + options.deadlineSeconds * 1000,
      random: options.random,
      onSecret: (s) => options.log.redactor.add(s),
      onRetry: (r) =>
        options.log.warn('API request failed, retrying', { method: r.method, path: r.path, attempt: r.attempt + 1, delayMs: r.delayMs, error: r.why }),
    });
  }

  get origin(): string {
    return this.http.connection.origin;
  }

  get where(): string {
    return `${this.namespace} (${this.origin})`;
  }

  startPhase(ms = this.options.deadlineSeconds * 1000): void {
    this.http.options.deadline = Date.now() + ms;
  }

  path(kind: string, name?: string): string {
    return PATHS[kind]!.replace('%ns', encodeURIComponent(this.namespace)) + (name ? `/${encodeURIComponent(name)}` : '');
  }

  async observe(): Promise<Observed<KubeLive>> {
    this.startPhase();
    const list = await this.http
      .request<{ items?: ApiObject[] }>({ method: 'GET', path: this.path('ConfigMap'), query: { labelSelector: selectorFor(this.options.instance) } })
      .catch((err) => {
        const failure = this.failure(err, 'list ConfigMaps');
        const pending = this.options.targets.map((t) => ({ kind: t.kind, name: t.name, step: 'apply' as const, error: `not attempted: ${failure.message}` }));
        throw new KubePublishError(failure.message, failure.hint, { ...this.emptyReport(), pending, requests: this.http.requests });
      });
    const objects = new Map<string, LiveObject>();
    let status: KubeLive['status'];
    const statusCm = statusName(this.options.instance);
    for (const item of list.items ?? []) {
      const name = String(item.metadata?.name);
      if (name === statusCm) status = { doc: parseStatusDoc(item.data, this.namespace, `ConfigMap ${this.namespace}/${name}`), uid: item.metadata?.uid };
      else objects.set(`ConfigMap/${name}`, liveOf('ConfigMap', item));
    }
    for (const t of this.options.targets.filter((x) => x.kind === 'Secret')) {
      const l = await this.getLive('Secret', t.name);
      if (l) objects.set(`Secret/${t.name}`, l);
    }
    return { record: status?.doc?.applied, stale: status?.doc?.upgradedFrom !== undefined, live: { objects, status } };
  }

  check(record: AppliedRecord, live: KubeLive): DriftItem[] {
    return kubeDrift(record.targets[ID] as KubeDetail | undefined, live.objects, this.options.targets, this.namespace);
  }

  async getLive(kind: ObjectKind, name: string): Promise<LiveObject | undefined> {
    const obj = await this.getObject(kind, name);
    return obj ? liveOf(kind, obj) : undefined;
  }

  async getObject(kind: ObjectKind, name: string): Promise<ApiObject | undefined> {
    try {
      return await this.http.request<ApiObject>({ method: 'GET', path: this.path(kind, name) });
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) return undefined;
      throw this.failure(err, `get ${kind} ${name}`);
    }
  }

  plan(desired: DesiredOutputs, observed: Observed<KubeLive>, meta?: Pick<AppliedRecord, 'source' | 'digest' | 'revision'>): TargetPlan<KubePlanDetail> {
    const { log } = this.options;
    const provenance = meta ?? { source: '', digest: '' };
    const objects: DesiredObject[] = desired.configMaps.map((cm) => {
      const spec = this.spec(cm.name);
      if (spec.kind === 'Secret') for (const v of secretValues(cm)) log.redactor.add(v);
      return buildDesiredObject(cm, spec, this.namespace, this.options.instance, provenance);
    });
    const previous = observed.record?.targets[ID] as KubeDetail | undefined;
    const plan = decide(objects, observed.live.objects, this.options.targets, previous, {
      prune: this.options.prune,
      statusName: statusName(this.options.instance),
    });
    const drift = observed.record ? this.check(observed.record, observed.live).filter((d) => d.what !== 'not applied yet') : [];
    const actions = [
      ...plan.apply.map((a) => `${a.action} ${a.object.kind}/${a.object.name}`),
      ...plan.prune.map((p) => `prune ${p.kind}/${p.name}`),
      ...plan.restart.map((r) => `rollout ${r.ref} (inputs ${r.inputs.join(', ')})`),
    ];
    const objectsPlan = [
      ...plan.apply.map((a) => ({ name: a.object.name, action: a.action })),
      ...plan.unchanged.map((u) => ({ name: u.name, action: 'unchanged' as const })),
    ];
    return { target: ID, changes: actions.length > 0, drift, actions, detail: { desired: objects, plan, previous }, objects: objectsPlan };
  }

  async apply(plan: TargetPlan<KubePlanDetail>, record: AppliedRecord, opts: { dryRun: boolean }): Promise<TargetApplied<KubePublishReport>> {
    // Bodies carry the run's provenance annotations (the plan was made before the record existed).
    const desired = plan.detail.desired.map((d) => buildDesiredObject(d.cm, this.spec(d.name), this.namespace, this.options.instance, record));
    const byName = new Map(desired.map((d) => [`${d.kind}/${d.name}`, d]));
    const kplan: KubePlan = {
      ...plan.detail.plan,
      apply: plan.detail.plan.apply.map((a) => ({ ...a, object: byName.get(`${a.object.kind}/${a.object.name}`)! })),
    };
    const { report, consumers } = await runPlan(this, kplan, opts.dryRun, this.emptyReport());
    const details: KubeDetail = {
      namespace: this.namespace,
      objects: managedObjects(plan.detail.previous, desired, report),
      consumers: {
        ...Object.fromEntries(
          Object.entries(plan.detail.previous?.consumers ?? {}).filter(([ref]) => this.options.targets.some((t) => t.consumers.some((c) => c.ref === ref))),
        ),
        ...consumers,
      },
    };
    return { wrote: report.applied.length + report.pruned.length + report.restarted.length > 0, details, report };
  }

  /**
   * Writes the status ConfigMap and one Event — only when the status would say something new. A
   * failed run records its conditions the same way; the same failure an hour later writes nothing.
   */
  async record(record: AppliedRecord | undefined, run: RunStatus, observed: Observed<KubeLive> | undefined): Promise<boolean> {
    const previous = observed?.live.status?.doc;
    const mine = record ? { ...record, targets: { [ID]: record.targets[ID] } } : previous?.applied;
    const doc = nextStatusDoc(previous, mine, run, new Date());
    if (sameStatus(previous, doc)) return false;
    const reason = reasonOf(run);
    this.startPhase(Math.min(STATUS_BUDGET_MS, this.options.deadlineSeconds * 1000));
    const name = statusName(this.options.instance);
    try {
      const applied = await this.http.request<ApiObject>({
        method: 'PATCH',
        path: this.path('ConfigMap', name),
        query: { fieldManager: MANAGER, force: 'true' },
        contentType: APPLY,
        body: JSON.stringify(statusBody(this.options.instance, this.namespace, doc)),
      });
      const event = eventBody(
        { name, namespace: this.namespace, uid: applied?.metadata?.uid, resourceVersion: applied?.metadata?.resourceVersion },
        reason,
        run.message,
        new Date(),
      );
      await this.http.request({ method: 'POST', path: `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/events`, body: JSON.stringify(event) });
      return true;
    } catch (err) {
      this.options.log.warn(`could not record the run in ConfigMap ${name}`, { error: this.failure(err, 'record status').message });
      return false;
    }
  }

  async tidy(): Promise<string[]> {
    return [];
  }

  /** Secrets are never kept anywhere, so a rollback that needs other Secret data is refused. */
  rollbackProblem(to: RollbackSource, observed: Observed<KubeLive>): string | undefined {
    const then = (to.record.targets[ID] as KubeDetail | undefined)?.objects ?? [];
    const now = (observed.record?.targets[ID] as KubeDetail | undefined)?.objects ?? [];
    const kept = new Set(to.configMaps.map((c) => c.name));
    const problems: string[] = [];
    for (const o of then) {
      if (o.kind === 'Secret' && now.find((n) => n.kind === 'Secret' && n.name === o.name)?.contentHash !== o.contentHash)
        problems.push(`Secret ${o.name} (Secret data is never stored)`);
      if (o.kind === 'ConfigMap' && !kept.has(o.name)) problems.push(`ConfigMap ${o.name} (not kept with that payload)`);
    }
    return problems.length ? `cannot restore ${problems.join(', ')}` : undefined;
  }

  async rollback(to: RollbackSource, observed: Observed<KubeLive>): Promise<TargetApplied<KubePublishReport>> {
    const then = (to.record.targets[ID] as KubeDetail | undefined)?.objects ?? [];
    const configMaps = to.configMaps.filter((c) => then.some((o) => o.kind === 'ConfigMap' && o.name === c.name));
    const plan = this.plan({ volumeFiles: [], configMaps, warnings: [] }, { ...observed, record: observed.record }, to.record);
    // Secrets unchanged between the two payloads stay as they are; the rest was refused above.
    plan.detail.plan.apply = plan.detail.plan.apply.filter((a) => a.object.kind === 'ConfigMap');
    plan.detail.plan.prune = [];
    return this.apply(plan, to.record, { dryRun: false });
  }

  emptyReport(): KubePublishReport {
    return {
      server: this.origin,
      namespace: this.namespace,
      applied: [],
      unchanged: [],
      pruned: [],
      restarted: [],
      pending: [],
      statusWritten: false,
      requests: 0,
    };
  }

  spec(name: string): TargetSpec {
    const spec = this.options.targets.find((t) => t.name === name);
    if (!spec) throw new PublishError(`internal: no API target named ${name}`);
    return spec;
  }

  /** One line an operator can act on; API messages name verb, resource and namespace themselves. */
  failure(err: unknown, what: string): PublishError {
    if (err instanceof PublishError) return err;
    const { detail, hint } = this.describe(err);
    return new PublishError(`${what}: ${detail}`, hint);
  }

  describe(err: unknown): { detail: string; hint?: string } {
    return describeApiError(err, {
      where: `(${this.origin}, namespace ${this.namespace})`,
      unreachableHint: `check connectivity; gave up after the ${this.options.deadlineSeconds} s deadline`,
      forbiddenHint: 'grant it in the Role (manifests/base/rbac.yaml)',
      conflictHint: 'another field manager owns these fields; pass --force-conflicts to take them over',
      namespace: this.namespace,
    });
  }

  close(): void {
    this.http.close();
  }
}

/** What this instance manages after the apply: earlier objects not pruned (a later --prune may delete them) plus this run's. */
function managedObjects(previous: KubeDetail | undefined, desired: DesiredObject[], report: KubePublishReport): KubeDetail['objects'] {
  const key = (o: { kind: string; name: string }): string => `${o.kind}/${o.name}`;
  const pruned = new Set(report.pruned.map(key));
  const objects = new Map((previous?.objects ?? []).filter((o) => !pruned.has(key(o))).map((o) => [key(o), o]));
  for (const d of desired) objects.set(key(d), { kind: d.kind, name: d.name, contentHash: d.contentHash });
  return [...objects.values()].sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

function reasonOf(run: RunStatus): EventReason {
  if (run.outcome === 'failed') return (run.conditions.find((c) => c.status === 'False')?.reason as EventReason | undefined) ?? 'PublishFailed';
  return run.outcome === 'drift-corrected' ? 'DriftCorrected' : run.outcome === 'rolled-back' ? 'RolledBack' : 'Provisioned';
}

export { isFieldConflict } from './api-error.js';

export function ref(o: { kind: string; name: string }): KubeObjectRef {
  return { kind: o.kind, name: o.name };
}

export { chooseKubeTarget, kubeTargetFactory, targetSpecs } from './open.js';
