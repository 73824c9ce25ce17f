/**
 * The CoCo initdata target: the RVPS reference values (write 1), then the `INITDATA` key of
 * peer-pods-cm and/or the initdata annotation of named Deployments' pod templates (write 2), in
 * that order, with the overlap rotation of src/plan/initdata.ts.
 *
 * Field ownership in objects that belong to others:
 * - peer-pods-cm (the sandboxed-containers operator's): server-side apply of `data.INITDATA` and
 *   one annotation only, field manager `zeta-provision`, never a label (our managed-by label would
 *   put the object into the API target's label-selected LIST, where prune could delete it). A key
 *   owned by another manager is a conflict, found by a server-side dry run before write 1.
 * - rvps-reference-values (the Trustee admin's): one key holds everyone's entries, so server-side
 *   apply cannot split it; it is a JSON merge patch with a resourceVersion precondition (a
 *   concurrent writer means re-read and decide again), changing only our entries' text.
 * - Deployments: a merge patch of the template annotations, only when the decoded value differs,
 *   so an unchanged initdata never rolls anything out.
 */
import type { InitdataConfig, InitdataPlatform } from '../../config/initdata.js';
import { InternalError, PublishError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { decideRotation, type ConsumerObservation, type LiveEntry, type RotationDecision } from '../../plan/initdata.js';
import { decodeInitdata, parseInitdata, platformValues, tomlId, type InitdataOutput } from '../../process/initdata/index.js';
import type { DesiredOutputs } from '../../process/types.js';
import { ApiRequestError, type KubeHttp } from '../kube/http.js';
import { MANAGER } from '../manifest.js';
import { parseRecord, parseStored, type AppliedRecord } from '../record.js';
import type { DriftItem, Observed, RollbackSource, RunStatus, Target, TargetApplied, TargetPlan } from '../target.js';
import { cmPath, observeCoco, type CocoLive, type ConsumerLive } from './observe.js';
import { initdataRequest, rvpsRequest, type Write } from './requests.js';
import type { ApiObject } from '../kube/api-object.js';
import { COCO_TARGET_ID } from './open.js';
import { describeApiError } from '../kube/api-error.js';

const HOUR = 3600_000;
const ROLLBACK_PROBLEM = 'the earlier record holds no initdata document (written before this target kept one); apply that payload again instead';
const DAY = 24 * HOUR;

export interface CocoPlanDetail {
  initdata: InitdataOutput;
  decision: RotationDecision;
  /** The list the decision was made on: the splice must edit exactly that text. */
  rvps: CocoLive['rvps'];
  where: string;
}

export interface CocoReport {
  /** The initdata now current (sha256 of the TOML) and its reference values. */
  id: string;
  values: Record<string, string>;
  referenceValues?: { written: boolean; why: string[] };
  /** Consumers whose initdata was (or would be) written. */
  updated: string[];
  /** Replaced values still listed beside the current one. */
  overlapping: { id: string; values: Record<string, string>; until: string; waitingFor: string[] }[];
}

/** What record.targets['coco-initdata'] holds. */
export interface CocoDetails {
  id: string;
  /** Reference value name → value. */
  values: Record<string, string>;
  overlapping: string[];
  /** The document as published (gzip + base64, ≤ 96 KiB): what a rollback restores. */
  encoded?: string;
}

const RECORD_KEY = 'record.json';

export interface CocoOptions {
  config: InitdataConfig;
  /** Where the applied record is kept: `<instance>-initdata` in zeta-provision's namespace. */
  recordObject: { namespace: string; name: string };
  forceConflicts: boolean;
  log: Logger;
  now?: () => Date;
}

export class CocoInitdataTarget implements Target<CocoLive, CocoPlanDetail, CocoReport> {
  readonly id = COCO_TARGET_ID;
  readonly where: string;

  constructor(
    readonly http: KubeHttp,
    readonly options: CocoOptions,
  ) {
    const c = options.config;
    const to = [
      c.peerPodsConfigMap ? `ConfigMap ${c.peerPodsConfigMap.namespace}/${c.peerPodsConfigMap.name}` : undefined,
      c.deployments.length ? `${c.deployments.length} Deployment(s)` : undefined,
    ].filter(Boolean);
    this.where = `RVPS ${c.referenceValues.namespace}/${c.referenceValues.name}, then ${to.join(' and ')} (${http.connection.origin})`;
  }

  async observe(): Promise<Observed<CocoLive>> {
    const live = await observeCoco(this.http, this.options.config, (err, what) => this.failure(err, what));
    const stored = await this.readRecord();
    return { live: { ...live, ...(stored ? { recordText: stored.text } : {}) }, ...(stored?.record ? { record: stored.record } : {}) };
  }

  /**
   * The applied record, in a ConfigMap of our own namespace (`<instance>-initdata`): the objects this
   * target writes belong to other operators, and a record there would change them on every payload.
   * Not labelled managed-by: the API target's label-selected LIST (and --prune) must not see it.
   */
  private async readRecord(): Promise<{ record?: AppliedRecord; text: string } | undefined> {
    const { namespace, name } = this.options.recordObject;
    let cm: ApiObject;
    try {
      cm = await this.http.request<ApiObject>({ method: 'GET', path: cmPath(namespace, name) });
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) return undefined;
      throw this.failure(err, `get ConfigMap ${namespace}/${name}`);
    }
    const text = cm.data?.[RECORD_KEY];
    if (typeof text !== 'string' || text.length > 256 * 1024) return undefined;
    const stored = parseStored(text, `ConfigMap ${namespace}/${name}`);
    return { ...(stored ? { record: parseRecord(stored.doc) } : {}), text };
  }

  /**
   * Drift, and what falls due on an unchanged payload: the recorded initdata stands in for the
   * payload's, and the target's own plan says whether anything must be written (a consumer changed,
   * an entry edited or deleted, an expiration to refresh, an overlapping value to remove).
   */
  check(record: AppliedRecord, live: CocoLive): DriftItem[] {
    const applied = record.targets[this.id] as CocoDetails | undefined;
    if (!applied?.id || !applied.values) return [{ target: this.id, object: 'initdata', what: 'not in the record' }];
    const c = this.options.config;
    const byPlatform = Object.fromEntries(c.platforms.map((p) => [p, applied.values[c.referenceValues.names[p]]]));
    if (c.platforms.some((p) => byPlatform[p] === undefined)) return [{ target: this.id, object: 'initdata', what: 'platforms changed' }];
    const recorded: InitdataOutput = { id: applied.id, algorithm: c.algorithm, toml: Buffer.alloc(0), encoded: '', values: byPlatform, parts: [] };
    let decision: RotationDecision;
    try {
      decision = this.decide(recorded, live);
    } catch (err) {
      return [{ target: this.id, object: `ConfigMap/${c.referenceValues.namespace}/${c.referenceValues.name}`, what: errorMessage(err) }];
    }
    const out: DriftItem[] = decision.update.map((ref) => ({ target: this.id, object: ref, what: 'initdata differs from the applied one' }));
    if (decision.rvps)
      out.push({ target: this.id, object: `ConfigMap/${c.referenceValues.namespace}/${c.referenceValues.name}`, what: decision.rvps.why.join('; ') });
    return out;
  }

  plan(desired: DesiredOutputs, observed: Observed<CocoLive>): TargetPlan<CocoPlanDetail> {
    const initdata = desired.initdata;
    if (!initdata) throw new InternalError('initdata is configured but the process stage produced none');
    const decision = this.decide(initdata, observed.live);
    const rv = this.options.config.referenceValues;
    const actions: string[] = [];
    if (decision.rvps) {
      const listed = Object.keys(this.desiredValues(initdata)).map((n) => `${n} ${initdata.values[this.platformOf(n)!]!.slice(0, 16)}…`);
      actions.push(
        `update ConfigMap ${rv.namespace}/${rv.name} ${rv.key}: ${listed.join(', ')}${decision.overlapping.length ? ` (+${decision.overlapping.length} overlapping)` : ''} — ${decision.rvps.why.join('; ')}`,
      );
    }
    for (const ref of decision.update)
      actions.push(
        ref.startsWith('Deployment/')
          ? `annotate ${ref} with initdata ${initdata.id} (rollout)`
          : `set ${this.options.config.peerPodsConfigMap!.key} of ${ref} to initdata ${initdata.id}`,
      );
    const drift = decision.drift.map((what) => ({ target: this.id, object: `ConfigMap/${rv.namespace}/${rv.name}`, what }));
    return { target: this.id, changes: actions.length > 0, drift, actions, detail: { initdata, decision, rvps: observed.live.rvps, where: this.where } };
  }

  async apply(plan: TargetPlan<CocoPlanDetail>, _record: AppliedRecord, opts: { dryRun: boolean }): Promise<TargetApplied<CocoReport>> {
    const { initdata } = plan.detail;
    let { decision, rvps } = plan.detail;
    const writes2 = decision.update.map((ref) => initdataRequest(this.options, ref, initdata));
    // Server-side dry run of every write first: a conflict on peer-pods-cm or an RBAC denial is
    // found before write 1, so a predictable failure leaves nothing half-applied. Not needed when
    // the run is a dry run itself (every request below is one), or when a single write is all there is.
    const writeCount = writes2.length + (decision.rvps ? 1 : 0);
    if (!opts.dryRun && writeCount > 1) for (const req of writes2) await this.send(req, true, `preflight ${req.what}`);
    let rvpsWritten = false;
    if (decision.rvps) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.send(rvpsRequest(this.options.config, decision, rvps), opts.dryRun, 'update the RVPS reference values');
          rvpsWritten = !opts.dryRun;
          break;
        } catch (err) {
          // 409 on the precondition: someone wrote the ConfigMap since observe(). Re-read, decide again.
          if (!(err instanceof ConflictRetry) || attempt >= 3) throw err instanceof ConflictRetry ? err.publishError : err;
          const fresh = (await this.observe()).live;
          decision = this.decide(initdata, fresh);
          rvps = fresh.rvps;
          if (!decision.rvps) break;
        }
      }
    }
    const updated: string[] = [];
    for (const req of writes2) {
      try {
        await this.send(req, opts.dryRun, req.what);
        updated.push(req.ref);
      } catch (err) {
        const e = err instanceof PublishError ? err : this.failure(err, req.what);
        const done = rvpsWritten ? 'the reference values already list the new initdata beside the old one, so pods keep attesting; ' : '';
        throw new PublishError(
          `${e.message} (${done}${updated.length} of ${writes2.length} initdata write(s) done)`,
          [e.hint, 'the next run retries'].filter(Boolean).join('; '),
        );
      }
    }
    const report: CocoReport = {
      id: initdata.id,
      values: this.desiredValues(initdata),
      ...(decision.rvps ? { referenceValues: { written: !opts.dryRun, why: decision.rvps.why } } : {}),
      updated,
      overlapping: decision.overlapping.map(({ id, values, until, waitingFor }) => ({ id, values, until, waitingFor })),
    };
    for (const line of plan.actions) this.options.log.info(`${opts.dryRun ? 'would ' : ''}${line}`);
    return {
      wrote: decision.rvps !== undefined || updated.length > 0,
      details: { id: initdata.id, values: report.values, overlapping: report.overlapping.map((o) => o.id), encoded: initdata.encoded } satisfies CocoDetails,
      report,
    };
  }

  /** The rotation state lives with the entries (written in apply): nothing else to record. */
  /** Writes the record only when it differs from the stored one (a converged run writes nothing). */
  async record(record: AppliedRecord | undefined, _run: RunStatus, observed: Observed<CocoLive> | undefined): Promise<boolean> {
    if (!record?.targets[this.id]) return false;
    const text = JSON.stringify(record);
    if (observed?.live.recordText === text) return false;
    const { namespace, name } = this.options.recordObject;
    await this.send(
      {
        ref: `ConfigMap/${namespace}/${name}`,
        what: `record the applied initdata in ConfigMap ${namespace}/${name}`,
        spec: {
          method: 'PATCH',
          path: cmPath(namespace, name),
          query: { fieldManager: MANAGER, force: 'true' },
          contentType: 'application/apply-patch+yaml',
          body: JSON.stringify({
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': MANAGER } },
            data: { [RECORD_KEY]: text },
          }),
        },
      },
      false,
      'record the applied initdata',
    );
    return true;
  }

  async tidy(): Promise<string[]> {
    return [];
  }

  rollbackProblem(to: RollbackSource): string | undefined {
    return this.earlierInitdata(to) ? undefined : ROLLBACK_PROBLEM;
  }

  /**
   * Back to the initdata an earlier payload had, through the same rotation: its reference value is
   * listed again first, then INITDATA and the annotations change, and the newer value overlaps.
   */
  async rollback(to: RollbackSource, observed: Observed<CocoLive>): Promise<TargetApplied<CocoReport>> {
    const initdata = this.earlierInitdata(to);
    if (!initdata) throw new PublishError(ROLLBACK_PROBLEM);
    const plan = this.plan({ volumeFiles: [], configMaps: [], warnings: [], initdata }, observed);
    return this.apply(plan, to.record, { dryRun: false });
  }

  /** The document kept in an earlier record (encoded as it was published), checked like a live value. */
  private earlierInitdata(to: RollbackSource): InitdataOutput | undefined {
    const d = to.record.targets[this.id] as CocoDetails | undefined;
    const toml = typeof d?.encoded === 'string' ? decodeInitdata(d.encoded) : undefined;
    if (!d?.encoded || !toml) return undefined;
    const doc = parseInitdata(toml, 'the initdata of the earlier record');
    const c = this.options.config;
    return { id: tomlId(toml), algorithm: doc.algorithm, toml, encoded: d.encoded, values: platformValues(c.platforms, doc.algorithm, toml), parts: [] };
  }

  close(): void {
    this.http.close();
  }

  private decide(initdata: InitdataOutput, live: CocoLive): RotationDecision {
    const c = this.options.config;
    const desired = { id: initdata.id, values: this.desiredValues(initdata) };
    const entries = new Map<string, LiveEntry>();
    for (const el of live.rvps.list.elements) {
      if (el.name === undefined || !(el.name in desired.values)) continue;
      const seen = entries.get(el.name);
      entries.set(el.name, { raw: seen?.raw ?? el.value, count: (seen?.count ?? 0) + 1 });
    }
    const consumers: ConsumerObservation[] = live.consumers.map((k) => ({
      ref: refOf(k),
      current: k.ids.every((id) => id === initdata.id),
      checkable: k.kind === 'Deployment',
      settled: k.settled,
    }));
    const algs = Object.fromEntries(Object.keys(desired.values).map((n) => [n, this.platformOf(n) === 'azure-vtpm' ? 'sha256' : initdata.algorithm]));
    const decision = decideRotation({
      now: this.options.now?.() ?? new Date(),
      desired,
      algs,
      format: c.referenceValues.format,
      state: live.rvps.state,
      live: entries,
      consumers,
      overlapMs: c.overlapHours * HOUR,
      validMs: c.referenceValues.validDays * DAY,
      refreshMs: c.referenceValues.refreshDays * DAY,
      force: this.options.forceConflicts,
    });
    if (decision.conflicts.length > 0) {
      throw new PublishError(
        `ConfigMap ${c.referenceValues.namespace}/${c.referenceValues.name}: ${decision.conflicts.join('; ')}; nothing was written`,
        'check who edits the reference values; pass --force-conflicts to take the entries over (their values stay listed for the overlap time)',
      );
    }
    return decision;
  }

  private desiredValues(initdata: InitdataOutput): Record<string, string> {
    const names = this.options.config.referenceValues.names;
    return Object.fromEntries(this.options.config.platforms.map((p) => [names[p], initdata.values[p]!]));
  }

  private platformOf(name: string): InitdataPlatform | undefined {
    return this.options.config.platforms.find((p) => this.options.config.referenceValues.names[p] === name);
  }

  private async send(w: Write, dryRun: boolean, what: string): Promise<void> {
    try {
      await this.http.request({ ...w.spec, query: { ...w.spec.query, ...(dryRun ? { dryRun: 'All' } : {}) } });
    } catch (err) {
      const e = this.failure(err, what);
      if (w.retryOnConflict && err instanceof ApiRequestError && err.status === 409) throw new ConflictRetry(e);
      throw e;
    }
  }

  /** One line an operator can act on (the mapping the API target uses, with this target's hints). */
  failure(err: unknown, what: string): PublishError {
    if (err instanceof PublishError) return err;
    const { detail, hint } = describeApiError(err, {
      where: `(${this.http.connection.origin})`,
      unreachableHint: 'check connectivity and --kube-deadline',
      forbiddenHint: 'grant it in the Roles of manifests/overlays/coco/rbac.yaml',
      conflictHint: 'another field manager owns this key; pass --force-conflicts to take it over',
    });
    return new PublishError(`${what}: ${detail}`, hint);
  }
}

class ConflictRetry extends Error {
  constructor(readonly publishError: PublishError) {
    super(publishError.message);
  }
}

function refOf(c: ConsumerLive): string {
  return `${c.kind}/${c.namespace}/${c.name}`;
}
