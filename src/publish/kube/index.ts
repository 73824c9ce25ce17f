/**
 * Publishing through the Kubernetes API: ConfigMaps (and Secrets for sensitive files) by server-side
 * apply with field manager `zeta-provision`, skipped when their content hash is unchanged (one LIST
 * per namespace), opt-in prune, rollouts of consumers whose inputs changed, a status ConfigMap and
 * Events. Requests retry within a deadline; a partial failure lists what was applied and what not.
 * Secret contents never reach a log line, an error or the report.
 */
import { PublishError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ConfigMapObject } from '../../process/types.js';
import { ANNOTATION, MANAGED_BY_LABEL, MANAGER, type ProvenanceMeta } from '../manifest.js';
import type { StatusRecord } from '../status.js';
import { loadConnection, type Connection, type ConnectionOptions } from './connection.js';
import { decide, type LiveObject } from './decide.js';
import { ApiRequestError, KubeHttp } from './http.js';
import { buildDesiredObject, INPUTS_HASH_ANNOTATION, secretValues, selectorFor, type DesiredObject, type ObjectKind, type TargetSpec } from './objects.js';
import { nextStatusRecord, summary, type KubeObjectRef, type KubePublishReport, type PublishMeta } from './report.js';
import { eventBody, parseStatusRecord, statusBody, statusName, type EventReason, type KubeStatusRecord } from './status.js';

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
export class KubePublishError extends PublishError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly report: KubePublishReport,
  ) {
    super(message, hint);
  }
}

const PATHS: Record<string, string> = { ConfigMap: '/api/v1/namespaces/%ns/configmaps', Secret: '/api/v1/namespaces/%ns/secrets' };
const APPLY = 'application/apply-patch+yaml';
/** The status record and its event get their own short budget, so a failure can still be recorded. */
const STATUS_BUDGET_MS = 5_000;

export class KubeTarget {
  readonly namespace: string;
  readonly http: KubeHttp;
  private listed: { live: Map<string, LiveObject>; status?: { record?: KubeStatusRecord; uid?: string } } | undefined;
  private secretsRead: Map<string, LiveObject> | undefined;
  private listFailure: KubePublishError | undefined;

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
      onRetry: (r) => options.log.warn('API request failed, retrying', { method: r.method, path: r.path, attempt: r.attempt + 1, delayMs: r.delayMs, error: r.why }),
    });
  }

  get origin(): string {
    return this.http.connection.origin;
  }

  private startPhase(ms = this.options.deadlineSeconds * 1000): void {
    this.http.options.deadline = Date.now() + ms;
  }

  private path(kind: string, name?: string): string {
    return PATHS[kind]!.replace('%ns', encodeURIComponent(this.namespace)) + (name ? `/${encodeURIComponent(name)}` : '');
  }

  /** One LIST of our labelled ConfigMaps (targets and the status record together), cached per run. */
  private async list(): Promise<NonNullable<KubeTarget['listed']>> {
    if (this.listed) return this.listed;
    if (this.listFailure) throw this.listFailure;
    this.startPhase();
    const list = await this.http
      .request<{ items?: Obj[] }>({ method: 'GET', path: this.path('ConfigMap'), query: { labelSelector: selectorFor(this.options.instance) } })
      .catch((err) => {
        // Without the live state nothing can be applied: every target is pending, and the report says so.
        const failure = this.failure(err, 'list ConfigMaps');
        const pending = this.options.targets.map((t) => ({ kind: t.kind, name: t.name, step: 'apply' as const, error: `not attempted: ${failure.message}` }));
        this.listFailure = new KubePublishError(failure.message, failure.hint, { ...this.emptyReport(), pending, requests: this.http.requests });
        throw this.listFailure;
      });
    const live = new Map<string, LiveObject>();
    let status: { record?: KubeStatusRecord; uid?: string } | undefined;
    for (const item of list.items ?? []) {
      const name = String(item.metadata?.name);
      if (name === statusName(this.options.instance)) status = { record: parseStatusRecord(item.data), uid: item.metadata?.uid };
      else live.set(`ConfigMap/${name}`, liveOf('ConfigMap', item));
    }
    this.listed = { live, status };
    return this.listed;
  }

  /** The last completely converged run, in the shape the up-to-date check compares. */
  async lastApplied(): Promise<StatusRecord | undefined> {
    const a = (await this.list()).status?.record?.lastApplied;
    if (!a) return undefined;
    const fresh = { earliestCertificateExpiry: a.earliestCertificateExpiry, tslNextUpdate: a.tslNextUpdate };
    return { version: 1, source: a.source, digest: a.digest, revision: a.revision, configHash: a.configHash, appliedAt: a.appliedAt, ...fresh };
  }

  /** Target name → content hash of the live object (undefined: exists but not ours). Absent = missing. */
  async currentHashes(): Promise<Map<string, string | undefined>> {
    const { live } = await this.list();
    const secrets = await this.readSecrets();
    const out = new Map<string, string | undefined>();
    for (const t of this.options.targets) {
      const l = (t.kind === 'Secret' ? secrets : live).get(`${t.kind}/${t.name}`);
      if (l) out.set(t.name, l.contentHash);
    }
    return out;
  }

  /** Secrets are read one by one by name: listing them would need the right to read every Secret. */
  private async readSecrets(): Promise<Map<string, LiveObject>> {
    if (this.secretsRead) return this.secretsRead;
    const out = new Map<string, LiveObject>();
    for (const t of this.options.targets.filter((x) => x.kind === 'Secret')) {
      const l = await this.getLive('Secret', t.name);
      if (l) out.set(`Secret/${t.name}`, l);
    }
    this.secretsRead = out;
    return out;
  }

  private async getLive(kind: ObjectKind, name: string): Promise<LiveObject | undefined> {
    try {
      return liveOf(kind, await this.http.request<Obj>({ method: 'GET', path: this.path(kind, name) }));
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) return undefined;
      throw this.failure(err, `get ${kind} ${name}`);
    }
  }

  async publish(objects: ConfigMapObject[], meta: PublishMeta, opts: { dryRun: boolean }): Promise<KubePublishReport> {
    const { log } = this.options;
    const desired: DesiredObject[] = objects.map((cm) => {
      const spec = this.spec(cm.name);
      if (spec.kind === 'Secret') secretValues(cm).forEach((v) => log.redactor.add(v));
      return buildDesiredObject(cm, spec, this.namespace, this.options.instance, meta);
    });
    const { live, status } = await this.list();
    await this.readSecrets();
    const allLive = new Map([...live, ...this.secretsRead!]);
    const plan = decide(desired, allLive, this.options.targets, status?.record, { prune: this.options.prune, statusName: statusName(this.options.instance) });
    const report: KubePublishReport = { ...this.emptyReport(), ...(opts.dryRun ? { dryRun: 'server' as const } : {}), unchanged: plan.unchanged.map(ref) };
    this.startPhase();
    const hints: string[] = [];
    const dryRun = opts.dryRun ? 'All' : undefined;
    for (const step of plan.apply) {
      try {
        const action = await this.applyObject(step.object, step.resourceVersion, dryRun);
        if (action === 'unchanged') report.unchanged.push(ref(step.object));
        else report.applied.push({ ...ref(step.object), action });
        log.info(`${opts.dryRun ? 'would apply' : 'applied'} ${step.object.kind} ${step.object.name}`, { action, namespace: this.namespace, keys: step.object.keys, bytes: step.object.bytes });
      } catch (err) {
        report.pending.push({ ...ref(step.object), step: 'apply', error: this.note(hints, err) });
      }
    }
    const failedInputs = new Set(report.pending.map((p) => p.name));
    // Never delete while something failed: the run is not a consistent picture of what it manages.
    for (const p of plan.prune) {
      if (failedInputs.size > 0) {
        report.pending.push({ ...p, step: 'prune', error: 'not pruned because an apply failed' });
        continue;
      }
      try {
        await this.http.request({ method: 'DELETE', path: this.path(p.kind, p.name), query: { dryRun } }).catch((err) => {
          if (!(err instanceof ApiRequestError && err.status === 404)) throw err;
        });
        report.pruned.push(p);
        log.info(`${opts.dryRun ? 'would prune' : 'pruned'} ${p.kind} ${p.name}`, { namespace: this.namespace });
      } catch (err) {
        report.pending.push({ ...p, step: 'prune', error: this.note(hints, err) });
      }
    }
    const restartedHashes: Record<string, string> = {};
    for (const r of plan.restart) {
      const w = this.options.targets.flatMap((t) => t.consumers).find((c) => c.ref === r.ref)!;
      const wref = { kind: w.kind, name: w.name };
      // A consumer rolls out only onto complete inputs; otherwise the next run does it.
      if (r.inputs.some((i) => failedInputs.has(i))) {
        report.pending.push({ ...wref, step: 'restart', error: `inputs ${r.inputs.join(', ')} not all applied` });
        continue;
      }
      const workloadPath = `/apis/apps/v1/namespaces/${encodeURIComponent(this.namespace)}/${w.resource}/${encodeURIComponent(w.name)}`;
      try {
        // Ask the workload itself: if the record was lost (or never written) the annotation still
        // says what it runs with, and a lost record must not mean a rollout on every run.
        const current = await this.http.request<Obj>({ method: 'GET', path: workloadPath });
        if (current?.spec?.template?.metadata?.annotations?.[INPUTS_HASH_ANNOTATION] === r.hash) {
          restartedHashes[r.ref] = r.hash;
          continue;
        }
        await this.http.request({
          method: 'PATCH',
          path: workloadPath,
          query: { fieldManager: MANAGER, dryRun },
          contentType: 'application/merge-patch+json',
          body: JSON.stringify({ spec: { template: { metadata: { annotations: { [INPUTS_HASH_ANNOTATION]: r.hash } } } } }),
        });
        restartedHashes[r.ref] = r.hash;
        report.restarted.push({ workload: r.ref, inputs: r.inputs });
        log.info(`${opts.dryRun ? 'would roll out' : 'rolling out'} ${r.ref}: its inputs changed`, { inputs: r.inputs, namespace: this.namespace });
      } catch (err) {
        report.pending.push({ ...wref, step: 'restart', error: this.note(hints, err) });
      }
    }
    if (!opts.dryRun) {
      const record = nextStatusRecord(status?.record, desired, report, restartedHashes, meta);
      report.statusWritten = await this.writeStatus(record, report.pending.length > 0 ? 'PublishFailed' : report.applied.length + report.pruned.length + report.restarted.length > 0 ? 'Provisioned' : 'UpToDate', summary(report, meta));
    }
    report.requests = this.http.requests;
    if (report.pending.length > 0) {
      const first = report.pending[0]!;
      throw new KubePublishError(
        `${report.pending.length} of ${plan.apply.length + plan.prune.length + plan.restart.length} API change(s) not made (first: ${first.step} ${first.kind}/${first.name}: ${first.error}); applied ${report.applied.length}`,
        [hints[0], 'the next run retries what is pending; see the report for each object'].filter(Boolean).join('; '),
        report,
      );
    }
    return report;
  }

  /** Server-side apply; a 409 from a concurrent writer means re-read and decide again. */
  private async applyObject(d: DesiredObject, resourceVersion: string | undefined, dryRun: string | undefined): Promise<'create' | 'update' | 'unchanged'> {
    let rv = resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const body = rv ? { ...d.body, metadata: { ...(d.body.metadata as Obj), resourceVersion: rv } } : d.body;
      try {
        await this.http.request({
          method: 'PATCH',
          path: this.path(d.kind, d.name),
          query: { fieldManager: MANAGER, force: String(this.options.forceConflicts), dryRun },
          contentType: APPLY,
          body: JSON.stringify(body),
        });
        return rv ? 'update' : 'create';
      } catch (err) {
        if (!(err instanceof ApiRequestError) || err.status !== 409 || isFieldConflict(err) || attempt >= 3) throw err;
        const now = await this.getLive(d.kind, d.name);
        if (now?.contentHash === d.contentHash) return 'unchanged';
        rv = now?.resourceVersion;
      }
    }
  }

  /**
   * A run that changed nothing or failed before publishing: record it (status + Event), keeping
   * what the previous record says about managed objects and consumers. Best effort.
   */
  async recordOutcome(outcome: 'up-to-date' | 'failed', reason: EventReason, message: string, meta?: ProvenanceMeta): Promise<boolean> {
    let previous: KubeStatusRecord | undefined;
    try {
      previous = (await this.list()).status?.record;
    } catch {
      // Without the previous record a write would forget what this instance manages.
      return false;
    }
    const record: KubeStatusRecord = {
      version: 1,
      outcome,
      time: new Date().toISOString(),
      source: meta?.source,
      digest: meta?.digest,
      revision: meta?.revision,
      counts: { applied: 0, unchanged: previous?.objects.length ?? 0, pruned: 0, restarted: 0, pending: 0 },
      lastApplied: previous?.lastApplied,
      objects: previous?.objects ?? [],
      consumers: previous?.consumers ?? {},
      ...(outcome === 'failed' ? { error: message } : {}),
      // Nothing was applied: what consumers have is still the previously applied payload, so its
      // freshness stays on record (not that of a payload this run derived and then failed on).
      earliestCertificateExpiry: previous?.earliestCertificateExpiry,
      tslNextUpdate: previous?.tslNextUpdate,
    };
    return this.writeStatus(record, reason, message);
  }

  private async writeStatus(record: KubeStatusRecord, reason: EventReason, message: string): Promise<boolean> {
    this.startPhase(Math.min(STATUS_BUDGET_MS, this.options.deadlineSeconds * 1000));
    const name = statusName(this.options.instance);
    try {
      const applied = await this.http.request<Obj>({
        method: 'PATCH',
        path: this.path('ConfigMap', name),
        query: { fieldManager: MANAGER, force: 'true' },
        contentType: APPLY,
        body: JSON.stringify(statusBody(this.options.instance, this.namespace, record)),
      });
      const event = eventBody({ name, namespace: this.namespace, uid: applied?.metadata?.uid, resourceVersion: applied?.metadata?.resourceVersion }, reason, message, new Date());
      await this.http.request({ method: 'POST', path: `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/events`, body: JSON.stringify(event) });
      return true;
    } catch (err) {
      this.options.log.warn(`could not record the run in ConfigMap ${name}`, { error: this.failure(err, 'record status').message });
      return false;
    }
  }

  /** The reason for a pending entry (the entry names step and object); its hint is kept for the error. */
  private note(hints: string[], err: unknown): string {
    const { detail, hint } = this.describe(err);
    if (hint) hints.push(hint);
    return detail;
  }

  private emptyReport(): KubePublishReport {
    return { server: this.origin, namespace: this.namespace, applied: [], unchanged: [], pruned: [], restarted: [], pending: [], statusWritten: false, requests: 0 };
  }

  private spec(name: string): TargetSpec {
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

  private describe(err: unknown): { detail: string; hint?: string } {
    if (err instanceof PublishError) return { detail: err.message, hint: err.hint };
    if (!(err instanceof ApiRequestError)) return { detail: errorMessage(err) };
    const where = `(${this.origin}, namespace ${this.namespace})`;
    if (err.status === 0) return { detail: `no answer from the API server ${where}: ${err.message}`, hint: `check connectivity; gave up after the ${this.options.deadlineSeconds} s deadline` };
    if (err.status === 401) return { detail: `401 Unauthorized ${where}`, hint: 'the token or client certificate was refused' };
    if (err.status === 403) return { detail: err.apiStatus?.message ?? '403 Forbidden', hint: 'grant it in the Role (manifests/base/rbac.yaml)' };
    if (isFieldConflict(err)) return { detail: err.apiStatus?.message ?? 'conflict', hint: 'another field manager owns these fields; pass --force-conflicts to take them over' };
    return { detail: `${err.status} ${err.reason ?? ''}: ${err.apiStatus?.message ?? err.message}` };
  }

  close(): void {
    this.http.close();
  }
}

type Obj = Record<string, any>;

function liveOf(kind: ObjectKind, item: Obj): LiveObject {
  const labels = item.metadata?.labels ?? {};
  const ours = labels[MANAGED_BY_LABEL] === MANAGER;
  return { kind, name: String(item.metadata?.name), contentHash: ours ? item.metadata?.annotations?.[ANNOTATION.contentHash] : undefined, resourceVersion: item.metadata?.resourceVersion };
}

function isFieldConflict(err: ApiRequestError): boolean {
  return err.status === 409 && (err.apiStatus?.details?.causes ?? []).some((c) => c.reason === 'FieldManagerConflict');
}

function ref(o: { kind: string; name: string }): KubeObjectRef {
  return { kind: o.kind, name: o.name };
}

export { chooseKubeTarget, targetSpecs } from './open.js';
