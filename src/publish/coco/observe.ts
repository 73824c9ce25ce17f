/**
 * Reads what the CoCo initdata targets need, by name only (one GET per object, never a LIST: the
 * Role grants get/patch on exactly these objects in two namespaces that are not ours). Writes nothing.
 */
import type { InitdataConfig } from '../../config/initdata.js';
import { PublishError } from '../../errors.js';
import { storedVersion } from '../record.js';
import type { RotationState } from '../../plan/initdata.js';
import { decodeInitdata } from '../../process/initdata/render.js';
import { tomlId } from '../../process/initdata/index.js';
import { ApiRequestError, type KubeHttp } from '../kube/http.js';
import { scanReferenceValues, type RvpsList } from './rvps-json.js';
import type { ApiObject } from '../kube/api-object.js';

/** Where the rotation state is stored: beside the entries it describes, so one PATCH changes both. */
export const ROTATION_ANNOTATION = 'zeta-provision.io/initdata-rotation';
/** On peer-pods-cm and pod templates: which initdata (sha256 of the TOML) the value is. */
export const INITDATA_ID_ANNOTATION = 'zeta-provision.io/initdata';
const MAX_STATE_BYTES = 64 * 1024;

export interface RvpsLive {
  resourceVersion: string;
  list: RvpsList;
  state?: RotationState;
}

export interface ConsumerLive {
  kind: 'ConfigMap' | 'Deployment';
  namespace: string;
  name: string;
  /** Initdata id of each configured key (annotation or INITDATA), undefined when absent or not decodable. */
  ids: (string | undefined)[];
  /** Deployments: every pod runs the current template (rollout finished). */
  settled: boolean;
}

export interface CocoLive {
  rvps: RvpsLive;
  consumers: ConsumerLive[];
  /** The stored applied record as text (compared before rewriting it). */
  recordText?: string;
}

export const cmPath = (ns: string, name?: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps${name ? `/${encodeURIComponent(name)}` : ''}`;
export const deploymentPath = (ns: string, name: string) => `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/deployments/${encodeURIComponent(name)}`;

export async function observeCoco(http: KubeHttp, config: InitdataConfig, describe: (err: unknown, what: string) => PublishError): Promise<CocoLive> {
  const get = async (path: string, what: string, hint: string): Promise<ApiObject> => {
    try {
      return await http.request<ApiObject>({ method: 'GET', path });
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) throw new PublishError(`${what} does not exist; zeta-provision does not create it`, hint);
      throw describe(err, `get ${what}`);
    }
  };
  const rv = config.referenceValues;
  const rvps = await get(
    cmPath(rv.namespace, rv.name),
    `ConfigMap ${rv.namespace}/${rv.name}`,
    'create the RVPS ConfigMap (reference-values.json: []) and name it in the KbsConfig (kbsRvpsRefValuesConfigMapName), or set initdata.referenceValues',
  );
  const consumers: ConsumerLive[] = [];
  if (config.peerPodsConfigMap) {
    const p = config.peerPodsConfigMap;
    const cm = await get(
      cmPath(p.namespace, p.name),
      `ConfigMap ${p.namespace}/${p.name}`,
      'install the OpenShift sandboxed containers operator and create peer-pods-cm first (or drop initdata.peerPodsConfigMap)',
    );
    consumers.push({ kind: 'ConfigMap', namespace: p.namespace, name: p.name, ids: [idOf(cm.data?.[p.key])], settled: false });
  }
  for (const d of config.deployments) {
    const dep = await get(deploymentPath(d.namespace, d.name), `Deployment ${d.namespace}/${d.name}`, 'check initdata.deployments in the config');
    const annotations = dep.spec?.template?.metadata?.annotations ?? {};
    consumers.push({
      kind: 'Deployment',
      namespace: d.namespace,
      name: d.name,
      ids: config.annotations.map((k) => idOf(annotations[k])),
      settled: rolledOut(dep),
    });
  }
  return { rvps: readRvps(rvps, config), consumers };
}

export function readRvps(cm: ApiObject, config: InitdataConfig): RvpsLive {
  const rv = config.referenceValues;
  const what = `ConfigMap ${rv.namespace}/${rv.name} key ${rv.key}`;
  const text = cm.data?.[rv.key];
  if (text !== undefined && typeof text !== 'string') throw new PublishError(`${what} is not a string`);
  const list = scanReferenceValues(text ?? '', what);
  return { resourceVersion: String(cm.metadata?.resourceVersion ?? ''), list, state: parseState(cm.metadata?.annotations?.[ROTATION_ANNOTATION], what) };
}

function parseState(raw: unknown, what: string): RotationState | undefined {
  if (raw === undefined) return undefined;
  const bad = (why: string): never => {
    throw new PublishError(
      `${what}: annotation ${ROTATION_ANNOTATION} ${why}; nothing was written`,
      'someone edited it: remove the annotation and re-run with --force-conflicts to take the entries over again',
    );
  };
  if (typeof raw !== 'string' || raw.length > MAX_STATE_BYTES) return bad('is not a bounded string');
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked field by field below
  let doc: any;
  try {
    doc = JSON.parse(raw);
  } catch {
    return bad('is not JSON');
  }
  storedVersion(doc, `${what} annotation ${ROTATION_ANNOTATION}`);
  const values = (v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string' && /^[0-9a-f]{1,256}$/.test(x));
  const isTime = (t: unknown) => typeof t === 'string' && !Number.isNaN(Date.parse(t));
  if (doc?.version !== 1 || !isTime(doc.expiration) || !Array.isArray(doc.previous) || doc.previous.length > 64) return bad('has an unknown shape');
  if (doc.current !== undefined && !(typeof doc.current.id === 'string' && values(doc.current.values) && isTime(doc.current.since)))
    return bad('has an unknown current entry');
  for (const p of doc.previous) if (!(typeof p?.id === 'string' && values(p.values) && isTime(p.retiredAt))) return bad('has an unknown previous entry');
  return doc as RotationState;
}

/** Initdata id of a live value, compared decoded so a different gzip of the same TOML is no change. */
export function idOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const toml = decodeInitdata(value);
  return toml ? tomlId(toml) : undefined;
}

/** The Deployment controller has acted on the latest template and no pod of an older one is left. */
export function rolledOut(dep: ApiObject): boolean {
  const want = dep.spec?.replicas ?? 1;
  const st = dep.status ?? {};
  return (
    (st.observedGeneration ?? 0) >= (dep.metadata?.generation ?? 0) &&
    (st.updatedReplicas ?? 0) === want &&
    (st.replicas ?? 0) === want &&
    (st.unavailableReplicas ?? 0) === 0
  );
}
