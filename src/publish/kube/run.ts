/**
 * Carrying out the API plan: server-side applies, prunes, then rollouts — in that order, and never a
 * delete or a rollout onto inputs that failed to apply. An object of the same name that is not ours
 * (no managed-by label) is never adopted or overwritten without --force-conflicts.
 */
import { PublishError } from '../../errors.js';
import type { KubePlan } from './decide.js';
import { ApiRequestError } from './http.js';
import { APPLY, KubePublishError, isFieldConflict, ref, type KubeTarget } from './index.js';
import { liveOf } from './live.js';
import { MANAGER } from '../manifest.js';
import { INPUTS_HASH_ANNOTATION, type DesiredObject } from './objects.js';
import type { KubePublishReport } from './report.js';
import type { ApiObject } from './api-object.js';

export async function runPlan(
  t: KubeTarget,
  plan: KubePlan,
  dryRun: boolean,
  report: KubePublishReport,
): Promise<{ report: KubePublishReport; consumers: Record<string, string> }> {
  const { log } = t.options;
  if (dryRun) report.dryRun = 'server';
  report.unchanged = plan.unchanged.map(ref);
  t.startPhase();
  const hints: string[] = [];
  const note = (err: unknown): string => {
    const { detail, hint } = t.describe(err);
    if (hint) hints.push(hint);
    return detail;
  };
  const dry = dryRun ? 'All' : undefined;
  for (const step of plan.apply) {
    try {
      const action = await applyObject(t, step.object, step.action, step.resourceVersion, dry);
      if (action === 'unchanged') report.unchanged.push(ref(step.object));
      else report.applied.push({ ...ref(step.object), action });
      log.info(`${dryRun ? 'would apply' : 'applied'} ${step.object.kind} ${step.object.name}`, {
        action,
        namespace: t.namespace,
        keys: step.object.keys,
        bytes: step.object.bytes,
      });
    } catch (err) {
      report.pending.push({ ...ref(step.object), step: 'apply', error: note(err) });
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
      await t.http.request({ method: 'DELETE', path: t.path(p.kind, p.name), query: { dryRun: dry } }).catch((err) => {
        if (!(err instanceof ApiRequestError && err.status === 404)) throw err;
      });
      report.pruned.push(p);
      log.info(`${dryRun ? 'would prune' : 'pruned'} ${p.kind} ${p.name}`, { namespace: t.namespace });
    } catch (err) {
      report.pending.push({ ...p, step: 'prune', error: note(err) });
    }
  }
  const consumers: Record<string, string> = {};
  // Roll-outs get their own phase: retries of one failing object must not use up the time that the
  // consumers of the inputs that did apply need (otherwise they would wait for the next run).
  if (plan.restart.length > 0) t.startPhase();
  for (const r of plan.restart) {
    const w = t.options.targets.flatMap((x) => x.consumers).find((c) => c.ref === r.ref)!;
    const wref = { kind: w.kind, name: w.name };
    // A consumer rolls out only onto complete inputs; otherwise the next run does it.
    if (r.inputs.some((i) => failedInputs.has(i))) {
      report.pending.push({ ...wref, step: 'restart', error: `inputs ${r.inputs.join(', ')} not all applied` });
      continue;
    }
    const workloadPath = `/apis/apps/v1/namespaces/${encodeURIComponent(t.namespace)}/${w.resource}/${encodeURIComponent(w.name)}`;
    try {
      // Ask the workload itself: if the record was lost (or never written) the annotation still
      // says what it runs with, and a lost record must not mean a rollout on every run.
      const current = await t.http.request<ApiObject>({ method: 'GET', path: workloadPath });
      if (current?.spec?.template?.metadata?.annotations?.[INPUTS_HASH_ANNOTATION] !== r.hash) {
        await t.http.request({
          method: 'PATCH',
          path: workloadPath,
          query: { fieldManager: MANAGER, dryRun: dry },
          contentType: 'application/merge-patch+json',
          body: JSON.stringify({ spec: { template: { metadata: { annotations: { [INPUTS_HASH_ANNOTATION]: r.hash } } } } }),
        });
        report.restarted.push({ workload: r.ref, inputs: r.inputs });
        log.info(`${dryRun ? 'would roll out' : 'rolling out'} ${r.ref}: its inputs changed`, { inputs: r.inputs, namespace: t.namespace });
      }
      consumers[r.ref] = r.hash;
    } catch (err) {
      report.pending.push({ ...wref, step: 'restart', error: note(err) });
    }
  }
  report.requests = t.http.requests;
  if (report.pending.length > 0) {
    const first = report.pending[0]!;
    throw new KubePublishError(
      `${report.pending.length} of ${plan.apply.length + plan.prune.length + plan.restart.length} API change(s) not made (first: ${first.step} ${first.kind}/${first.name}: ${first.error}); applied ${report.applied.length}`,
      [hints[0], 'the next run retries what is pending; see the report for each object'].filter(Boolean).join('; '),
      report,
    );
  }
  return { report, consumers };
}

/**
 * Server-side apply; a 409 from a concurrent writer means re-read and decide again. Before creating,
 * the name is looked up: an object there that is not ours was made by someone else, and taking it
 * over is the operator's decision (--force-conflicts), never ours.
 */
async function applyObject(
  t: KubeTarget,
  d: DesiredObject,
  action: 'create' | 'update',
  resourceVersion: string | undefined,
  dryRun: string | undefined,
): Promise<'create' | 'update' | 'unchanged'> {
  let rv = resourceVersion;
  // ConfigMaps the labelled LIST returned are ours; a Secret (read by name) may not be.
  if (action === 'create' || rv === undefined || d.kind === 'Secret') {
    const existing = await t.getObject(d.kind, d.name);
    if (existing) {
      const live = liveOf(d.kind, existing);
      if (!live.ours && !t.options.forceConflicts) {
        const who = live.otherManagers?.length ? `its fields are managed by ${live.otherManagers.join(', ')}` : 'it has no field managers';
        throw new PublishError(
          `${d.kind} ${t.namespace}/${d.name} exists and is not managed by zeta-provision (no app.kubernetes.io/managed-by=zeta-provision label; ${who}); refusing to adopt or overwrite it`,
          'rename the target in the config, remove the object, or pass --force-conflicts to take it over',
        );
      }
      if (live.ours && live.contentHash === d.contentHash) return 'unchanged';
      rv = live.resourceVersion;
    }
  }
  for (let attempt = 0; ; attempt++) {
    const body = rv ? { ...d.body, metadata: { ...(d.body.metadata as ApiObject), resourceVersion: rv } } : d.body;
    try {
      await t.http.request({
        method: 'PATCH',
        path: t.path(d.kind, d.name),
        query: { fieldManager: MANAGER, force: String(t.options.forceConflicts), dryRun },
        contentType: APPLY,
        body: JSON.stringify(body),
      });
      return rv ? 'update' : 'create';
    } catch (err) {
      if (!(err instanceof ApiRequestError) || err.status !== 409 || isFieldConflict(err) || attempt >= 3) throw err;
      const now = await t.getLive(d.kind, d.name);
      if (now?.contentHash === d.contentHash) return 'unchanged';
      rv = now?.resourceVersion;
    }
  }
}
