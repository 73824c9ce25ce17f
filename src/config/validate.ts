/**
 * Pure validation of the parsed YAML: every error names the key path, and the line when the caller
 * can locate it. Payload paths are checked here so that `../x` in a config is refused long before a
 * file could be read or written through it.
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { validateInitdataSection } from './initdata.js';
import { OUTPUT_IDS, producedOutputs, validateProcessSection, type OutputId } from './process.js';
import type { Config, ConfigMapTarget, VerifyRule } from './types.js';

export type Locate = (keyPath: (string | number)[]) => number | undefined;

const TOP_KEYS = [
  'source',
  'namespace',
  'instance',
  'image',
  'trust',
  'verify',
  'volume',
  'configMaps',
  'manifest',
  'expiryWarningDays',
  'process',
  'initdata',
];
/** extendedKeyUsage purposes a rule may name (RFC 5280 §4.2.1.12); dotted OIDs are accepted too. */
export const EKU_PURPOSES: Record<string, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
};
const DOTTED_OID = /^[0-2](\.(0|[1-9][0-9]{0,8})){1,20}$/;
/** Default of expiryWarningDays: a month leaves time to rotate a certificate before runs start failing. */
export const DEFAULT_EXPIRY_WARNING_DAYS = 30;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

export function validateConfig(raw: unknown, origin: string, baseDir: string, locate: Locate = () => undefined): Config {
  const fail = (keyPath: (string | number)[], msg: string): never => {
    const line = locate(keyPath);
    const where = keyPath.length ? keyPath.join('.') : '(top level)';
    throw new ConfigError(`${origin}${line ? `:${line}` : ''}: ${where}: ${msg}`);
  };
  const obj = raw ?? {};
  if (!isPlainObject(obj)) return fail([], 'expected a mapping');
  for (const k of Object.keys(obj)) if (!TOP_KEYS.includes(k)) fail([k], `unknown key (expected one of ${TOP_KEYS.join(', ')})`);

  const str = (keyPath: (string | number)[], v: unknown): string =>
    typeof v === 'string' && v.trim() !== '' ? v : fail(keyPath, 'expected a non-empty string');
  const strList = (keyPath: (string | number)[], v: unknown): string[] => {
    if (typeof v === 'string') return [str(keyPath, v)];
    if (!Array.isArray(v) || v.length === 0) return fail(keyPath, 'expected a string or a non-empty list of strings');
    return v.map((item, i) => str([...keyPath, i], item));
  };
  const payloadPath = (keyPath: (string | number)[], v: unknown): string => {
    const p = str(keyPath, v);
    const problem = payloadPathProblem(p);
    return problem ? fail(keyPath, `${JSON.stringify(p)}: ${problem}`) : p;
  };

  const source = obj.source === undefined ? undefined : str(['source'], obj.source);
  let namespace: string | undefined;
  if (obj.namespace !== undefined) {
    namespace = str(['namespace'], obj.namespace);
    if (!DNS_LABEL.test(namespace) || namespace.length > 63) fail(['namespace'], `"${namespace}" is not a valid namespace name`);
  }

  let instance: string | undefined;
  if (obj.instance !== undefined) {
    instance = str(['instance'], obj.instance);
    // Used as a label value and in the status ConfigMap's name (<instance>-status).
    if (!DNS_LABEL.test(instance) || instance.length > 56) fail(['instance'], `"${instance}" must be a DNS label of at most 56 characters`);
  }

  const trust: Record<string, string[]> = {};
  if (obj.trust !== undefined) {
    if (!isPlainObject(obj.trust)) fail(['trust'], 'expected a mapping of trust-set name to certificate files');
    for (const [name, files] of Object.entries(obj.trust as Record<string, unknown>)) {
      if (!/^[a-z0-9][-a-z0-9_.]*$/i.test(name)) fail(['trust', name], 'trust-set names use letters, digits, -, _ and .');
      trust[name] = strList(['trust', name], files).map((f) => path.resolve(baseDir, f));
    }
  }

  const verify: VerifyRule[] = listOf(obj.verify, ['verify'], fail).map((rule, i) => {
    const at = ['verify', i];
    if (!isPlainObject(rule)) return fail(at, 'expected a mapping');
    for (const k of Object.keys(rule)) if (!['files', 'kind', 'signature', 'trust', 'required', 'eku'].includes(k)) fail([...at, k], 'unknown key');
    const files = strList([...at, 'files'], rule.files).map((g, j) => payloadPath([...at, 'files', j], g));
    const kind = rule.kind ?? 'cms';
    if (kind !== 'cms' && kind !== 'authenticode') fail([...at, 'kind'], `expected "cms" or "authenticode", got "${String(kind)}"`);
    const signature = rule.signature ?? 'detached';
    if (signature !== 'detached' && signature !== 'attached') fail([...at, 'signature'], `expected "detached" or "attached", got "${String(signature)}"`);
    if (kind === 'authenticode' && rule.signature !== undefined) fail([...at, 'signature'], 'only cms rules have a signature form');
    const trustNames = strList([...at, 'trust'], rule.trust);
    trustNames.forEach((t, j) => {
      if (!(t in trust) && !BUILTIN_TRUST_SETS.includes(t)) fail([...at, 'trust', j], `unknown trust set "${t}" (define it under trust:)`);
    });
    const required = rule.required ?? true;
    if (typeof required !== 'boolean') fail([...at, 'required'], 'expected true or false');
    const eku = (rule.eku === undefined ? [] : strList([...at, 'eku'], rule.eku)).map((p, j) => {
      if (p in EKU_PURPOSES) return { oid: EKU_PURPOSES[p]!, name: p };
      if (DOTTED_OID.test(p)) return { oid: p, name: p };
      return fail([...at, 'eku', j], `unknown extendedKeyUsage "${p}" (expected ${Object.keys(EKU_PURPOSES).join(', ')} or a dotted OID)`);
    });
    // Authenticode means code signing (Windows requires the purpose); a rule can add to it, not drop it.
    if (kind === 'authenticode' && !eku.some((e) => e.oid === EKU_PURPOSES.codeSigning)) eku.unshift({ oid: EKU_PURPOSES.codeSigning!, name: 'codeSigning' });
    return { files, kind, signature, trust: trustNames, required, eku } as VerifyRule;
  });

  const processConfig = validateProcessSection(obj.process, baseDir, { fail, str, strList, payloadPath });
  processConfig?.tsl?.trust.forEach((t, j) => {
    if (!(t in trust) && !BUILTIN_TRUST_SETS.includes(t))
      fail(['process', 'tsl', 'trust', j], `unknown trust set "${t}" (built in: ${BUILTIN_TRUST_SETS.join(', ')}; or define it under trust:)`);
  });
  const produced = producedOutputs(processConfig);
  const outputId = (keyPath: (string | number)[], v: unknown): OutputId => {
    const id = str(keyPath, v);
    if (!(OUTPUT_IDS as readonly string[]).includes(id)) fail(keyPath, `unknown output "${id}" (expected one of ${OUTPUT_IDS.join(', ')})`);
    if (!produced.includes(id as OutputId)) fail(keyPath, `output "${id}" is not produced: configure its processor under process:`);
    return id as OutputId;
  };

  let volume: Config['volume'] = { files: [], outputs: [] };
  if (obj.volume !== undefined) {
    if (!isPlainObject(obj.volume)) fail(['volume'], 'expected a mapping with dir and files');
    const v = obj.volume as Record<string, unknown>;
    for (const k of Object.keys(v))
      if (!['dir', 'files', 'outputs', 'fileMode', 'dirMode', 'group', 'keep', 'lockStale', 'lockTimeout'].includes(k)) fail(['volume', k], 'unknown key');
    // Modes as quoted octal strings only: YAML reads an unquoted 0640 as the decimal number 640.
    const mode = (k: string, needed: number, what: string): number | undefined => {
      if (v[k] === undefined) return undefined;
      const m = typeof v[k] === 'string' ? /^0?([0-7]{3})$/.exec(v[k]) : null;
      if (!m) return fail(['volume', k], 'expected an octal mode as a quoted string, like "0640"');
      const bits = parseInt(m[1]!, 8);
      return (bits & needed) === needed ? bits : fail(['volume', k], `${v[k]} must give the owner ${what}`);
    };
    const int = (k: string, min: number, max: number): number | undefined => {
      if (v[k] === undefined) return undefined;
      return Number.isInteger(v[k]) && (v[k] as number) >= min && (v[k] as number) <= max
        ? (v[k] as number)
        : fail(['volume', k], `expected an integer from ${min} to ${max}`);
    };
    volume = {
      dir: v.dir === undefined ? undefined : path.resolve(baseDir, str(['volume', 'dir'], v.dir)),
      files: v.files === undefined ? [] : strList(['volume', 'files'], v.files).map((g, j) => payloadPath(['volume', 'files', j], g)),
      outputs: v.outputs === undefined ? [] : strList(['volume', 'outputs'], v.outputs).map((o, j) => outputId(['volume', 'outputs', j], o)),
      fileMode: mode('fileMode', 0o400, 'read permission (r--)'),
      dirMode: mode('dirMode', 0o700, 'full permission (rwx)'),
      group: int('group', 0, 2 ** 31 - 1),
      keep: int('keep', 1, 100),
      lockStale: int('lockStale', 10, 86_400),
      lockTimeout: int('lockTimeout', 0, 3_600),
    };
  }

  const seen = new Set<string>();
  const configMaps: ConfigMapTarget[] = listOf(obj.configMaps, ['configMaps'], fail).map((cm, i) => {
    const at = ['configMaps', i];
    if (!isPlainObject(cm)) return fail(at, 'expected a mapping with name and files');
    for (const k of Object.keys(cm)) if (!['name', 'files', 'consumers'].includes(k)) fail([...at, k], 'unknown key');
    const name = str([...at, 'name'], cm.name);
    if (!DNS_SUBDOMAIN.test(name) || name.length > 253) fail([...at, 'name'], `"${name}" is not a valid ConfigMap name (lower-case DNS subdomain)`);
    if (seen.has(name)) fail([...at, 'name'], `ConfigMap "${name}" is defined twice`);
    seen.add(name);
    const keys = new Set<string>();
    const files = listOf(cm.files, [...at, 'files'], fail).map((f, j) => {
      const fat = [...at, 'files', j];
      const entry = typeof f === 'string' ? { path: f } : isPlainObject(f) ? f : fail(fat, 'expected a path, {path, key} or {output, key}');
      if (entry.output !== undefined) {
        if (entry.path !== undefined) fail(fat, 'give either path or output, not both');
        const id = outputId([...fat, 'output'], entry.output);
        // The key follows the output's file name unless given; decided at run time (names can be renamed by env).
        const key = entry.key === undefined ? '' : str([...fat, 'key'], entry.key);
        if (key !== '' && (!CONFIGMAP_KEY.test(key) || key.length > 253)) fail(fat, `"${key}" is not a valid ConfigMap key ([-._a-zA-Z0-9]+, at most 253)`);
        if (key !== '' && keys.has(key)) fail(fat, `key "${key}" appears twice in ConfigMap "${name}"`);
        keys.add(key || `output:${id}`);
        return { output: id, key };
      }
      const p = payloadPath([...fat, 'path'], entry.path);
      if (/[*?[\]{}]/.test(p)) fail([...fat, 'path'], 'ConfigMap files are exact paths, not globs');
      const key = entry.key === undefined ? path.posix.basename(p) : str([...fat, 'key'], entry.key);
      if (!CONFIGMAP_KEY.test(key) || key.length > 253) fail(fat, `"${key}" is not a valid ConfigMap key ([-._a-zA-Z0-9]+, at most 253)`);
      if (keys.has(key)) fail(fat, `key "${key}" appears twice in ConfigMap "${name}"`);
      keys.add(key);
      const sensitive = entry.sensitive ?? false;
      if (typeof sensitive !== 'boolean') fail([...fat, 'sensitive'], 'expected true or false');
      for (const k of Object.keys(entry)) if (!['path', 'key', 'sensitive'].includes(k)) fail([...fat, k], 'unknown key');
      return { path: p, key, sensitive: sensitive as boolean };
    });
    if (files.length === 0) fail([...at, 'files'], 'a ConfigMap needs at least one file');
    const consumers = cm.consumers === undefined ? [] : strList([...at, 'consumers'], cm.consumers);
    consumers.forEach((c, j) => {
      if (!/^(deployment|statefulset|daemonset)\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(c))
        fail([...at, 'consumers', j], `"${c}" is not deployment/NAME, statefulset/NAME or daemonset/NAME`);
    });
    // One sensitive file makes the whole target a Secret: a secret never lands in a ConfigMap.
    return {
      name,
      files: files.map((f) => ('output' in f ? f : { path: f.path, key: f.key })),
      secret: files.some((f) => 'sensitive' in f && f.sensitive),
      consumers,
    };
  });

  const image: Config['image'] = {};
  if (obj.image !== undefined) {
    if (!isPlainObject(obj.image)) fail(['image'], 'expected a mapping with signature, trustChain, identity');
    const im = obj.image as Record<string, unknown>;
    for (const k of Object.keys(im)) if (!['signature', 'trustChain', 'identity'].includes(k)) fail(['image', k], 'unknown key');
    if (im.signature !== undefined) {
      if (im.signature !== 'required' && im.signature !== 'optional' && im.signature !== 'off')
        fail(['image', 'signature'], `expected "required", "optional" or "off", got "${String(im.signature)}"`);
      image.signature = im.signature as 'required' | 'optional' | 'off';
    }
    if (im.trustChain !== undefined) image.trustChain = path.resolve(baseDir, str(['image', 'trustChain'], im.trustChain));
    if (im.identity !== undefined) image.identity = str(['image', 'identity'], im.identity);
  }

  const manifest: Config['manifest'] = { check: 'off', unlisted: 'warn' };
  if (obj.manifest !== undefined) {
    if (!isPlainObject(obj.manifest)) fail(['manifest'], 'expected a mapping with check and unlisted');
    const m = obj.manifest as Record<string, unknown>;
    for (const k of Object.keys(m)) if (!['check', 'unlisted'].includes(k)) fail(['manifest', k], 'unknown key (expected check, unlisted)');
    if (m.check !== undefined) {
      if (m.check !== 'required' && m.check !== 'optional' && m.check !== 'off')
        fail(['manifest', 'check'], `expected "required", "optional" or "off", got "${String(m.check)}"`);
      manifest.check = m.check as Config['manifest']['check'];
    }
    if (m.unlisted !== undefined) {
      if (m.unlisted !== 'error' && m.unlisted !== 'warn') fail(['manifest', 'unlisted'], `expected "error" or "warn", got "${String(m.unlisted)}"`);
      manifest.unlisted = m.unlisted as Config['manifest']['unlisted'];
    }
  }

  let expiryWarningDays = DEFAULT_EXPIRY_WARNING_DAYS;
  if (obj.expiryWarningDays !== undefined) {
    const d = obj.expiryWarningDays;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 3650) fail(['expiryWarningDays'], 'expected a whole number of days from 0 to 3650');
    expiryWarningDays = d as number;
  }

  const initdata = validateInitdataSection(obj.initdata, fail);

  return {
    origin,
    baseDir,
    source,
    namespace,
    instance,
    trust,
    verify,
    volume,
    configMaps,
    image,
    manifest,
    expiryWarningDays,
    ...(processConfig ? { process: processConfig } : {}),
    ...(initdata ? { initdata } : {}),
  };
}

/** Trust sets that ship with the tool (certificates under config/trust/). */
export const BUILTIN_TRUST_SETS = ['microsoft', 'gematik-rca', 'gematik-rca-test'];

/**
 * Why a payload-relative path (or glob) is unsafe, or undefined. Absolute paths, `..` segments and
 * backslashes could make a config address files outside the staged payload or the volume.
 */
export function payloadPathProblem(p: string): string | undefined {
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.includes('\\')) return 'contains a backslash (use /)';
  if (p.startsWith('/')) return 'must be relative to the payload root';
  if (p.split('/').some((seg) => seg === '..')) return 'must not contain ".."';
  if (p.split('/').some((seg) => seg.startsWith('..') && seg.length > 2)) return 'names starting with ".." are reserved for the volume layout';
  if (p.length > 4096) return 'is longer than 4096 characters';
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listOf(v: unknown, keyPath: (string | number)[], fail: (k: (string | number)[], m: string) => never): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(keyPath, 'expected a list');
  return v;
}
