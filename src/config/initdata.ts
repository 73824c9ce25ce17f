/**
 * The `initdata:` section: Confidential Containers initdata for peer pods (OpenShift sandboxed
 * containers), rendered from payload files, published to the peer-pods ConfigMap and/or pod-template
 * annotations, with its reference value in Trustee's RVPS ConfigMap. Formats matched, and where
 * they come from, are listed in the README section "Confidential Containers initdata".
 */
import { payloadPathProblem } from './validate.js';

export const INITDATA_ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;
export type InitdataAlgorithm = (typeof INITDATA_ALGORITHMS)[number];
export const INITDATA_PLATFORMS = ['azure-vtpm', 'tdx', 'snp'] as const;
export type InitdataPlatform = (typeof INITDATA_PLATFORMS)[number];

/**
 * Pod annotations Kata reads the initdata from. kata-types (runtime-rs) and cloud-api-adaptor read
 * `io.katacontainers.config.hypervisor.cc_init_data`; the OpenShift sandboxed containers 1.9–1.11
 * guides write `io.katacontainers.config.runtime.cc_init_data`. Both are written by default.
 */
export const INITDATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';
export const INITDATA_ANNOTATION_LEGACY = 'io.katacontainers.config.runtime.cc_init_data';

/** Defaults of the OpenShift sandboxed containers operator and the Trustee operator. */
export const PEER_PODS_DEFAULT = { namespace: 'openshift-sandboxed-containers-operator', name: 'peer-pods-cm', key: 'INITDATA' };
export const RVPS_DEFAULT = { namespace: 'trustee-operator-system', name: 'rvps-reference-values', key: 'reference-values.json' };
/** Reference value names per platform: pcr08 is the OSC documentation's; the other two are ours (used only by a policy that queries them). */
export const RVPS_DEFAULT_NAMES: Record<InitdataPlatform, string> = { 'azure-vtpm': 'pcr08', tdx: 'mr_config_id', snp: 'snp_host_data' };

export type InitdataPart = { key: string } & ({ file: string } | { template: string });

export interface InitdataConfig {
  algorithm: InitdataAlgorithm;
  platforms: InitdataPlatform[];
  /** Data keys (`aa.toml`, `cdh.toml`, `policy.rego`) in the order given; rendering sorts them. */
  parts: InitdataPart[];
  peerPodsConfigMap?: { namespace: string; name: string; key: string };
  deployments: { namespace: string; name: string }[];
  annotations: string[];
  referenceValues: {
    namespace: string;
    name: string;
    key: string;
    names: Record<InitdataPlatform, string>;
    /** `hash-value`: `[{alg, value}]` (OSC 1.9+ guides, RVPS ReferenceValue); `value`: `["hex"]` (older guides). */
    format: 'hash-value' | 'value';
    validDays: number;
    refreshDays: number;
  };
  /** How long a replaced reference value stays when its consumers cannot be checked (peer-pods-cm). */
  overlapHours: number;
}

type Fail = (keyPath: (string | number)[], msg: string) => never;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
/** Initdata data keys become TOML keys and, in the guest, file names: plain names only. */
const PART_KEY = /^[A-Za-z0-9_][-._A-Za-z0-9]{0,127}$/;
const ANNOTATION_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-._A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;
const MAX_PARTS = 16;
const MAX_DEPLOYMENTS = 64;

export function validateInitdataSection(raw: unknown, fail: Fail): InitdataConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const at = (...k: (string | number)[]) => ['initdata', ...k];
  if (!isObj(raw)) return fail(at(), 'expected a mapping (algorithm, platforms, parts, peerPodsConfigMap, deployments, referenceValues, overlapHours)');
  const allowed = ['algorithm', 'platforms', 'parts', 'peerPodsConfigMap', 'deployments', 'annotations', 'referenceValues', 'overlapHours'];
  for (const k of Object.keys(raw)) if (!allowed.includes(k)) fail(at(k), `unknown key (expected one of ${allowed.join(', ')})`);
  const str = (k: (string | number)[], v: unknown): string => (typeof v === 'string' && v.trim() !== '' ? v : fail(k, 'expected a non-empty string'));
  const int = (k: (string | number)[], v: unknown, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    return Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fail(k, `expected a whole number from ${min} to ${max}`);
  };
  const name = (k: (string | number)[], v: unknown, re: RegExp, what: string): string => {
    const s = str(k, v);
    return re.test(s) && s.length <= 253 ? s : fail(k, `"${s}" is not a valid ${what}`);
  };

  const platforms =
    raw.platforms === undefined
      ? (['azure-vtpm'] as InitdataPlatform[])
      : listOf(raw.platforms, at('platforms'), fail).map((p, i) => {
          if (!(INITDATA_PLATFORMS as readonly unknown[]).includes(p))
            fail(at('platforms', i), `unknown platform ${JSON.stringify(p)} (expected ${INITDATA_PLATFORMS.join(', ')})`);
          return p as InitdataPlatform;
        });
  if (platforms.length === 0) fail(at('platforms'), 'name at least one platform');
  if (new Set(platforms).size !== platforms.length) fail(at('platforms'), 'a platform is listed twice');
  const algorithm = (raw.algorithm ?? (platforms.includes('azure-vtpm') ? 'sha256' : 'sha384')) as InitdataAlgorithm;
  if (!INITDATA_ALGORITHMS.includes(algorithm)) fail(at('algorithm'), `expected one of ${INITDATA_ALGORITHMS.join(', ')}`);
  // Two published PCR8 rules exist: the OSC guides' `sha256sum initdata.toml` one-liner and
  // cloud-api-adaptor's (the `algorithm` digest cut to 32 bytes). They agree only for sha256, so
  // anything else would publish a reference value that one of them would not match.
  if (platforms.includes('azure-vtpm') && algorithm !== 'sha256')
    fail(at('algorithm'), `azure-vtpm needs algorithm sha256 (got ${algorithm}): the documented PCR 8 rules agree only then`);

  if (!isObj(raw.parts) || Object.keys(raw.parts).length === 0)
    fail(at('parts'), 'expected a mapping of data key (aa.toml, cdh.toml, policy.rego) to {file: PATH} or {template: PATH}');
  const partsRaw = raw.parts as Record<string, unknown>;
  if (Object.keys(partsRaw).length > MAX_PARTS) fail(at('parts'), `at most ${MAX_PARTS} parts`);
  const parts: InitdataPart[] = Object.entries(partsRaw).map(([key, v]) => {
    if (!PART_KEY.test(key)) fail(at('parts', key), 'data keys are plain file names (letters, digits, ., -, _)');
    if (!isObj(v)) return fail(at('parts', key), 'expected {file: PATH} or {template: PATH}');
    for (const k of Object.keys(v)) if (k !== 'file' && k !== 'template') fail(at('parts', key, k), 'unknown key (expected file or template)');
    if ((v.file === undefined) === (v.template === undefined)) fail(at('parts', key), 'give exactly one of file and template');
    const field = v.file !== undefined ? 'file' : 'template';
    const p = str(at('parts', key, field), v[field]);
    const problem = payloadPathProblem(p);
    if (problem) fail(at('parts', key, field), `${JSON.stringify(p)}: ${problem}`);
    if (/[*?[\]{}]/.test(p)) fail(at('parts', key, field), 'initdata parts are exact payload paths, not globs');
    return field === 'file' ? { key, file: p } : { key, template: p };
  });

  let peerPodsConfigMap: InitdataConfig['peerPodsConfigMap'];
  if (raw.peerPodsConfigMap !== undefined && raw.peerPodsConfigMap !== false) {
    const v = raw.peerPodsConfigMap === true ? {} : raw.peerPodsConfigMap;
    if (!isObj(v)) fail(at('peerPodsConfigMap'), 'expected true or a mapping with namespace, name, key');
    const m = v as Record<string, unknown>;
    for (const k of Object.keys(m))
      if (!['namespace', 'name', 'key'].includes(k)) fail(at('peerPodsConfigMap', k), 'unknown key (expected namespace, name, key)');
    peerPodsConfigMap = {
      namespace: m.namespace === undefined ? PEER_PODS_DEFAULT.namespace : name(at('peerPodsConfigMap', 'namespace'), m.namespace, DNS_LABEL, 'namespace name'),
      name: m.name === undefined ? PEER_PODS_DEFAULT.name : name(at('peerPodsConfigMap', 'name'), m.name, DNS_SUBDOMAIN, 'ConfigMap name'),
      key: m.key === undefined ? PEER_PODS_DEFAULT.key : name(at('peerPodsConfigMap', 'key'), m.key, CONFIGMAP_KEY, 'ConfigMap key'),
    };
  }

  const deployments = listOf(raw.deployments, at('deployments'), fail).map((d, i) => {
    // `namespace/name`: the consumers live in the workload namespaces, not in ours.
    const s = str(at('deployments', i), d);
    const m = /^([^/]+)\/([^/]+)$/.exec(s);
    if (!m || !DNS_LABEL.test(m[1]!) || m[1]!.length > 63 || !DNS_SUBDOMAIN.test(m[2]!))
      return fail(at('deployments', i), `"${s}" is not NAMESPACE/DEPLOYMENT`);
    return { namespace: m[1]!, name: m[2]! };
  });
  if (deployments.length > MAX_DEPLOYMENTS) fail(at('deployments'), `at most ${MAX_DEPLOYMENTS} deployments`);
  const seen = new Set(deployments.map((d) => `${d.namespace}/${d.name}`));
  if (seen.size !== deployments.length) fail(at('deployments'), 'a deployment is listed twice');
  if (!peerPodsConfigMap && deployments.length === 0) fail(at(), 'name a target: peerPodsConfigMap and/or deployments');

  const annotations =
    raw.annotations === undefined
      ? [INITDATA_ANNOTATION, INITDATA_ANNOTATION_LEGACY]
      : listOf(raw.annotations, at('annotations'), fail).map((a, i) => name(at('annotations', i), a, ANNOTATION_KEY, 'annotation key'));
  if (annotations.length === 0) fail(at('annotations'), 'name at least one annotation key');

  const rv = raw.referenceValues === undefined ? {} : raw.referenceValues;
  if (!isObj(rv)) return fail(at('referenceValues'), 'expected a mapping with namespace, name, key, names, format, validDays, refreshDays');
  for (const k of Object.keys(rv))
    if (!['namespace', 'name', 'key', 'names', 'format', 'validDays', 'refreshDays'].includes(k)) fail(at('referenceValues', k), 'unknown key');
  const names = { ...RVPS_DEFAULT_NAMES };
  if (rv.names !== undefined) {
    if (!isObj(rv.names)) fail(at('referenceValues', 'names'), 'expected a mapping of platform to reference value name');
    for (const [p, n] of Object.entries(rv.names as Record<string, unknown>)) {
      if (!(INITDATA_PLATFORMS as readonly string[]).includes(p))
        fail(at('referenceValues', 'names', p), `unknown platform (expected ${INITDATA_PLATFORMS.join(', ')})`);
      names[p as InitdataPlatform] = name(at('referenceValues', 'names', p), n, /^[A-Za-z0-9_][-._A-Za-z0-9]{0,127}$/, 'reference value name');
    }
  }
  const used = platforms.map((p) => names[p]);
  if (new Set(used).size !== used.length) fail(at('referenceValues', 'names'), 'two platforms share a reference value name');
  const format = rv.format ?? 'hash-value';
  if (format !== 'hash-value' && format !== 'value') fail(at('referenceValues', 'format'), 'expected "hash-value" or "value"');
  const validDays = int(at('referenceValues', 'validDays'), rv.validDays, 365, 2, 3650);
  const refreshDays = int(at('referenceValues', 'refreshDays'), rv.refreshDays, 30, 1, 3650);
  if (refreshDays >= validDays) fail(at('referenceValues', 'refreshDays'), `must be less than validDays (${validDays}), or every run would rewrite the entry`);

  return {
    algorithm,
    platforms,
    parts,
    ...(peerPodsConfigMap ? { peerPodsConfigMap } : {}),
    deployments,
    annotations,
    referenceValues: {
      namespace: rv.namespace === undefined ? RVPS_DEFAULT.namespace : name(at('referenceValues', 'namespace'), rv.namespace, DNS_LABEL, 'namespace name'),
      name: rv.name === undefined ? RVPS_DEFAULT.name : name(at('referenceValues', 'name'), rv.name, DNS_SUBDOMAIN, 'ConfigMap name'),
      key: rv.key === undefined ? RVPS_DEFAULT.key : name(at('referenceValues', 'key'), rv.key, CONFIGMAP_KEY, 'ConfigMap key'),
      names,
      format: format as 'hash-value' | 'value',
      validDays,
      refreshDays,
    },
    overlapHours: int(at('overlapHours'), raw.overlapHours, 24, 0, 24 * 365),
  };
}

function listOf(v: unknown, keyPath: (string | number)[], fail: Fail): unknown[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return fail(keyPath, 'expected a list');
  return v;
}
