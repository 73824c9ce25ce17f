/**
 * Pure validation of the parsed YAML: every error names the key path, and the line when the caller
 * can locate it. Payload paths are checked here so that `../x` in a config is refused long before a
 * file could be read or written through it.
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { OUTPUT_IDS, producedOutputs, validateProcessSection, type OutputId } from './process.js';
import type { Config, ConfigMapTarget, VerifyRule } from './types.js';

export type Locate = (keyPath: (string | number)[]) => number | undefined;

const TOP_KEYS = ['source', 'namespace', 'image', 'trust', 'verify', 'volume', 'configMaps', 'process'];
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
    for (const k of Object.keys(rule)) if (!['files', 'kind', 'signature', 'trust', 'required'].includes(k)) fail([...at, k], 'unknown key');
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
    return { files, kind, signature, trust: trustNames, required } as VerifyRule;
  });

  const processConfig = validateProcessSection(obj.process, baseDir, { fail, str, strList, payloadPath });
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
    for (const k of Object.keys(v)) if (!['dir', 'files', 'outputs'].includes(k)) fail(['volume', k], 'unknown key');
    volume = {
      dir: v.dir === undefined ? undefined : path.resolve(baseDir, str(['volume', 'dir'], v.dir)),
      files: v.files === undefined ? [] : strList(['volume', 'files'], v.files).map((g, j) => payloadPath(['volume', 'files', j], g)),
      outputs: v.outputs === undefined ? [] : strList(['volume', 'outputs'], v.outputs).map((o, j) => outputId(['volume', 'outputs', j], o)),
    };
  }

  const seen = new Set<string>();
  const configMaps: ConfigMapTarget[] = listOf(obj.configMaps, ['configMaps'], fail).map((cm, i) => {
    const at = ['configMaps', i];
    if (!isPlainObject(cm)) return fail(at, 'expected a mapping with name and files');
    for (const k of Object.keys(cm)) if (!['name', 'files'].includes(k)) fail([...at, k], 'unknown key');
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
      return { path: p, key };
    });
    if (files.length === 0) fail([...at, 'files'], 'a ConfigMap needs at least one file');
    return { name, files };
  });

  const image: Config['image'] = {};
  if (obj.image !== undefined) {
    if (!isPlainObject(obj.image)) fail(['image'], 'expected a mapping with signature, trustChain, identity');
    const im = obj.image as Record<string, unknown>;
    for (const k of Object.keys(im)) if (!['signature', 'trustChain', 'identity'].includes(k)) fail(['image', k], 'unknown key');
    if (im.signature !== undefined) {
      if (im.signature !== 'required' && im.signature !== 'optional' && im.signature !== 'off') fail(['image', 'signature'], `expected "required", "optional" or "off", got "${String(im.signature)}"`);
      image.signature = im.signature as 'required' | 'optional' | 'off';
    }
    if (im.trustChain !== undefined) image.trustChain = path.resolve(baseDir, str(['image', 'trustChain'], im.trustChain));
    if (im.identity !== undefined) image.identity = str(['image', 'identity'], im.identity);
  }

  return { origin, baseDir, source, namespace, trust, verify, volume, configMaps, image, ...(processConfig ? { process: processConfig } : {}) };
}

/** Trust sets that ship with the tool (certificates under config/trust/). */
export const BUILTIN_TRUST_SETS = ['microsoft'];

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
