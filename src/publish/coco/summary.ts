/**
 * The CoCo initdata outside the API: the report's summary of the document, and --kube-out, where
 * the same objects are written as manifests by a target of their own (CocoKubeOutTarget).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { InitdataConfig } from '../../config/initdata.js';
import type { InitdataOutput } from '../../process/initdata/index.js';
import type { TargetPlan } from '../target.js';
import type { CocoPlanDetail, CocoReport } from './index.js';
import type { KubeOutPlanDetail } from './kube-out.js';
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

/** The report of a planned run: what the target's plan does with this initdata. */
export function initdataPlanReport(config: InitdataConfig, out: InitdataOutput, part: TargetPlan | undefined): InitdataRunReport {
  const detail = part?.detail as CocoPlanDetail | KubeOutPlanDetail | undefined;
  const overlapping =
    detail && 'decision' in detail ? detail.decision.overlapping.map(({ id, values, until, waitingFor }) => ({ id, values, until, waitingFor })) : undefined;
  return {
    ...summarizeInitdata(out, config),
    actions: part?.actions ?? [],
    ...(overlapping ? { overlapping } : {}),
    ...(detail && 'where' in detail ? { where: detail.where } : {}),
  };
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
  const entries = config.platforms.map((p) =>
    config.referenceValues.format === 'hash-value'
      ? { name: names[p], expiration, 'hash-value': [{ alg: p === 'azure-vtpm' ? 'sha256' : out.algorithm, value: out.values[p] }] }
      : { name: names[p], expiration, value: [out.values[p]] },
  );
  files.push(['1-reference-values.entries.json', JSON.stringify(entries, null, 2) + '\n']);
  if (config.peerPodsConfigMap) {
    const p = config.peerPodsConfigMap;
    files.push([
      '2-peer-pods-cm.yaml',
      toYaml({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: p.name, namespace: p.namespace, annotations: { [INITDATA_ID_ANNOTATION]: out.id } },
        data: { [p.key]: out.encoded },
      }),
    ]);
  }
  for (const d of config.deployments) {
    const annotations: Record<string, string> = { [INITDATA_ID_ANNOTATION]: out.id };
    for (const k of config.annotations) annotations[k] = out.encoded;
    files.push([
      `2-deployment-${d.namespace}-${d.name}.yaml`,
      toYaml({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: d.name, namespace: d.namespace },
        spec: { template: { metadata: { annotations } } },
      }),
    ]);
  }
  for (const [name, text] of files) await writeFile(path.join(sub, name), text);
  return files.map(([name]) => path.join('coco-initdata', name));
}
