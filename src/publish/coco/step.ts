/**
 * The CoCo initdata step for the current pipeline: one call per run after the API objects, until
 * the target list of src/publish/target.ts drives every target (then this file reduces to the
 * factory in ./index.ts plus the report summary). Also the --kube-out form and the cheap check
 * the hourly up-to-date run makes, so an expiration refresh or an overlap cleanup that falls due
 * on an unchanged payload is not skipped.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { Settings } from '../../config/index.js';
import type { InitdataConfig } from '../../config/initdata.js';
import { ConfigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { InitdataOutput } from '../../process/initdata/index.js';
import type { DesiredOutputs } from '../../process/types.js';
import { newRecord } from '../record.js';
import { openCocoTarget, type CocoReport } from './index.js';
import { INITDATA_ID_ANNOTATION } from './observe.js';

export interface InitdataSummary {
  /** `sha256:` of the TOML document. */
  id: string;
  algorithm: string;
  /** The document as the guest receives it, decoded (it holds no secrets: initdata is not confidential). */
  toml: string;
  encodedBytes: number;
  /** Reference value name → value (`pcr08` → hex). */
  values: Record<string, string>;
  parts: { key: string; sources: string[] }[];
}

export interface InitdataRunReport extends InitdataSummary {
  where?: string;
  /** What the run would do / did, one line each. */
  actions: string[];
  applied?: CocoReport;
  /** Replaced values still listed beside the current ones (also when nothing changed). */
  overlapping?: CocoReport['overlapping'];
  /** --kube-out: files written. */
  files?: string[];
  note?: string;
}

export function summarizeInitdata(out: InitdataOutput, config: InitdataConfig): InitdataSummary {
  const names = config.referenceValues.names;
  return {
    id: out.id,
    algorithm: out.algorithm,
    toml: out.toml.toString('utf8'),
    encodedBytes: out.encoded.length,
    values: Object.fromEntries(config.platforms.map((p) => [names[p], out.values[p]!])),
    parts: out.parts,
  };
}

/**
 * Runs the target: `client` plans against the live objects (reads only), `server` also sends every
 * write with dryRun=All, `apply` writes. Without a cluster a client dry run shows the document only.
 */
export async function publishInitdata(settings: Settings, log: Logger, desired: DesiredOutputs, mode: 'apply' | 'client' | 'server'): Promise<InitdataRunReport | undefined> {
  const config = settings.config.initdata;
  if (!config || !desired.initdata) return undefined;
  const summary = summarizeInitdata(desired.initdata, config);
  if (settings.kubeOut) {
    const files = mode === 'apply' ? await writeInitdataManifests(settings.kubeOut, config, desired.initdata) : [];
    return { ...summary, actions: [], files, note: 'manifests only: merge the reference value entries into the RVPS ConfigMap before applying the INITDATA and annotation manifests' };
  }
  let target;
  try {
    target = await openCocoTarget(settings, log);
  } catch (err) {
    if (err instanceof ConfigError && mode === 'client') return { ...summary, actions: [], note: `no cluster: ${err.message}` };
    throw err;
  }
  if (!target) return { ...summary, actions: [] };
  try {
    const observed = await target.observe();
    const plan = target.plan(desired, observed);
    const overlapping = plan.detail.decision.overlapping.map(({ id, values, until, waitingFor }) => ({ id, values, until, waitingFor }));
    const report: InitdataRunReport = { ...summary, where: target.where, actions: plan.actions, overlapping };
    if (plan.changes && mode !== 'client') {
      const record = newRecord({ source: settings.source ?? '', digest: '', configHash: settings.configHash, freshness: {} });
      report.applied = (await target.apply(plan, record, { dryRun: mode === 'server' })).report;
    }
    return report;
  } finally {
    target.close();
  }
}

/**
 * For the up-to-date run: why the CoCo target must run although the payload is unchanged
 * (undefined: it need not). Reads only (one GET per object).
 */
export async function initdataDue(settings: Settings, log: Logger): Promise<string | undefined> {
  const config = settings.config.initdata;
  if (!config || settings.kubeOut) return undefined;
  let target;
  try {
    target = await openCocoTarget(settings, log);
  } catch (err) {
    // A client dry run without a cluster plans without live state; the full run says so.
    if (err instanceof ConfigError && settings.dryRun === 'client') return undefined;
    throw err;
  }
  if (!target) return undefined;
  try {
    const observed = await target.observe();
    const state = observed.live.rvps.state;
    if (!state?.current) return 'no reference values recorded yet';
    // The recorded initdata stands in for the payload's (same payload): the target's own plan says
    // whether anything is due, with the rules of src/plan/initdata.ts and no copy of them here.
    const names = config.referenceValues.names;
    const values = Object.fromEntries(config.platforms.map((p) => [p, state.current!.values[names[p]]]));
    if (config.platforms.some((p) => values[p] === undefined)) return 'the configured platforms differ from the recorded reference values';
    const recorded: InitdataOutput = { id: state.current.id, algorithm: config.algorithm, toml: Buffer.alloc(0), encoded: '', values, parts: [] };
    const plan = target.plan({ volumeFiles: [], configMaps: [], warnings: [], initdata: recorded }, observed);
    return plan.changes ? plan.actions.join('; ') : undefined;
  } finally {
    target.close();
  }
}

/**
 * --kube-out: the same objects as manifests, for `kubectl apply --server-side --field-manager
 * zeta-provision`. Partial objects on purpose: peer-pods-cm with only its INITDATA key, each
 * Deployment with only the annotations (server-side apply merges them into the live objects).
 * The RVPS list cannot be a manifest without overwriting the Trustee admin's entries, so our
 * entries are written as JSON to merge, and the order is in the README: reference values first.
 */
export async function writeInitdataManifests(dir: string, config: InitdataConfig, out: InitdataOutput): Promise<string[]> {
  const sub = path.join(dir, 'coco-initdata');
  await mkdir(sub, { recursive: true });
  const files: [string, string][] = [['initdata.toml', out.toml.toString('utf8')]];
  const names = config.referenceValues.names;
  const expiration = new Date(Date.now() + config.referenceValues.validDays * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const entries = config.platforms.map((p) => (config.referenceValues.format === 'hash-value' ? { name: names[p], expiration, 'hash-value': [{ alg: p === 'azure-vtpm' ? 'sha256' : out.algorithm, value: out.values[p] }] } : { name: names[p], expiration, value: [out.values[p]] }));
  files.push(['1-reference-values.entries.json', JSON.stringify(entries, null, 2) + '\n']);
  if (config.peerPodsConfigMap) {
    const p = config.peerPodsConfigMap;
    files.push(['2-peer-pods-cm.yaml', toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: p.name, namespace: p.namespace, annotations: { [INITDATA_ID_ANNOTATION]: out.id } }, data: { [p.key]: out.encoded } })]);
  }
  for (const d of config.deployments) {
    const annotations: Record<string, string> = { [INITDATA_ID_ANNOTATION]: out.id };
    for (const k of config.annotations) annotations[k] = out.encoded;
    files.push([`2-deployment-${d.namespace}-${d.name}.yaml`, toYaml({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: d.name, namespace: d.namespace }, spec: { template: { metadata: { annotations } } } })]);
  }
  for (const [name, text] of files) await writeFile(path.join(sub, name), text);
  return files.map(([name]) => path.join('coco-initdata', name));
}
