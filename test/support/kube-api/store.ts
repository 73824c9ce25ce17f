/**
 * Objects of the double and the write semantics of the real API server: a global resourceVersion
 * that increments on every write (and not on a no-op), `generation` bumped when a workload's spec
 * changes (that is a rollout), and server-side apply with per-manager field ownership:
 * fields set by another manager to a different value conflict unless `force`; fields the applier
 * owned before and no longer sends are removed.
 */
import { isDeepStrictEqual } from 'node:util';
import { randomUUID } from 'node:crypto';
import { status, type StatusCause, type Target } from './status.js';
import { validateObject } from './validate.js';

type Obj = Record<string, any>;

export interface ResourceType {
  group: string;
  version: string;
  resource: string;
  kind: string;
  /** Kinds with a spec get `metadata.generation`. */
  hasSpec: boolean;
}

export const RESOURCES: ResourceType[] = [
  { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', hasSpec: false },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', hasSpec: false },
  { group: '', version: 'v1', resource: 'events', kind: 'Event', hasSpec: false },
  { group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', hasSpec: true },
  { group: 'apps', version: 'v1', resource: 'statefulsets', kind: 'StatefulSet', hasSpec: true },
  { group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', hasSpec: true },
];

/** Fields that identify an object or are managed by the server; never owned by a field manager. */
const IDENTITY = new Set([
  'apiVersion',
  'kind',
  'metadata.name',
  'metadata.namespace',
  'metadata.resourceVersion',
  'metadata.uid',
  'metadata.creationTimestamp',
  'metadata.generation',
  'metadata.managedFields',
  'metadata.generateName',
]);

interface Stored {
  obj: Obj;
  /** field manager → leaf field paths it owns (JSON-encoded path arrays). */
  owners: Map<string, Set<string>>;
  /** field manager → how it last wrote (server-side apply or a plain update/patch). */
  operations?: Map<string, 'Apply' | 'Update'>;
}

export interface WriteOptions {
  dryRun: boolean;
  fieldManager?: string;
  force?: boolean;
}

export class Store {
  private readonly objects = new Map<string, Stored>();
  private revision = 100;

  private key(rt: ResourceType, ns: string, name: string): string {
    return `${rt.group}/${rt.resource}/${ns}/${name}`;
  }

  get(rt: ResourceType, ns: string, name: string): Obj {
    const s = this.objects.get(this.key(rt, ns, name));
    if (!s) throw status.notFound(target(rt, name));
    return clone(s.obj);
  }

  /** Raw read for test assertions (undefined when absent). */
  peek(rt: ResourceType, ns: string, name: string): Obj | undefined {
    const s = this.objects.get(this.key(rt, ns, name));
    return s ? clone(s.obj) : undefined;
  }

  list(rt: ResourceType, ns: string, selector: string | undefined): Obj {
    const match = parseSelector(selector);
    const items = [...this.objects.entries()]
      .filter(([k]) => k.startsWith(`${rt.group}/${rt.resource}/${ns}/`))
      .map(([, s]) => s.obj)
      .filter((o) => match(o.metadata?.labels ?? {}))
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map((o) => {
        const { apiVersion: _a, kind: _k, ...rest } = clone(o);
        return rest;
      });
    return {
      kind: `${rt.kind}List`,
      apiVersion: rt.group ? `${rt.group}/${rt.version}` : rt.version,
      metadata: { resourceVersion: String(this.revision) },
      items,
    };
  }

  create(rt: ResourceType, ns: string, body: Obj, opts: WriteOptions): Obj {
    checkKind(rt, body);
    const obj = clone(body);
    obj.metadata ??= {};
    if (!obj.metadata.name && typeof obj.metadata.generateName === 'string') obj.metadata.name = obj.metadata.generateName + randomUUID().slice(0, 5);
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns)
      throw status.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (obj.metadata.resourceVersion) throw status.badRequest('resourceVersion should not be set on objects to be created');
    const name = obj.metadata.name;
    if (typeof name === 'string' && this.objects.has(this.key(rt, ns, name))) throw status.alreadyExists(target(rt, name));
    obj.metadata.namespace = ns;
    this.check(rt, ns, obj);
    const owners = new Map([[opts.fieldManager ?? 'unknown', new Set(leafPaths(obj))]]);
    return this.store(rt, ns, { obj, owners, operations: new Map([[opts.fieldManager ?? 'unknown', 'Update' as const]]) }, undefined, opts.dryRun);
  }

  /** Server-side apply (PATCH application/apply-patch+yaml). Creates the object when absent. */
  apply(rt: ResourceType, ns: string, name: string, body: Obj, opts: WriteOptions & { fieldManager: string }): { obj: Obj; created: boolean } {
    checkKind(rt, body);
    if (body.metadata?.name !== name) throw status.badRequest(`the name of the object (${body.metadata?.name}) does not match the name on the URL (${name})`);
    if (body.metadata.namespace !== undefined && body.metadata.namespace !== ns)
      throw status.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    const existing = this.objects.get(this.key(rt, ns, name));
    if (existing && body.metadata.resourceVersion && body.metadata.resourceVersion !== existing.obj.metadata.resourceVersion)
      throw status.modified(target(rt, name));
    const live: Obj = existing ? clone(existing.obj) : { apiVersion: body.apiVersion, kind: body.kind, metadata: { name, namespace: ns } };
    const owners = new Map([...(existing?.owners ?? new Map<string, Set<string>>())].map(([m, s]) => [m, new Set(s)]));
    const applied = leafPaths(body);
    const conflicts: StatusCause[] = [];
    for (const p of applied) {
      for (const [manager, fields] of owners) {
        if (manager === opts.fieldManager || !fields.has(p)) continue;
        if (isDeepStrictEqual(getPath(live, p), getPath(body, p))) continue; // same value: shared ownership
        if (opts.force) fields.delete(p);
        else conflicts.push({ reason: 'FieldManagerConflict', message: `conflict with "${manager}"`, field: '.' + JSON.parse(p).join('.') });
      }
    }
    if (conflicts.length > 0) throw status.applyConflict(target(rt, name), conflicts);
    const before = owners.get(opts.fieldManager) ?? new Set<string>();
    for (const p of before) {
      if (applied.includes(p)) continue;
      const ownedByOthers = [...owners].some(([m, s]) => m !== opts.fieldManager && s.has(p));
      if (!ownedByOthers) deletePath(live, p);
    }
    for (const p of applied) setPath(live, p, getPath(body, p));
    owners.set(opts.fieldManager, new Set(applied));
    this.check(rt, ns, live);
    const operations = new Map(existing?.operations ?? []).set(opts.fieldManager, 'Apply');
    return { obj: this.store(rt, ns, { obj: live, owners, operations }, existing, opts.dryRun), created: !existing };
  }

  /** JSON merge patch (RFC 7386), as `kubectl patch --type merge` and rollout restarts send. */
  mergePatch(rt: ResourceType, ns: string, name: string, patch: Obj, opts: WriteOptions): Obj {
    const existing = this.objects.get(this.key(rt, ns, name));
    if (!existing) throw status.notFound(target(rt, name));
    if (patch.metadata?.resourceVersion && patch.metadata.resourceVersion !== existing.obj.metadata.resourceVersion) throw status.modified(target(rt, name));
    const next = mergeInto(clone(existing.obj), patch);
    if (next.metadata?.name !== name) throw status.badRequest('the name of the object may not be changed');
    const owners = new Map([...existing.owners].map(([m, s]) => [m, new Set(s)]));
    const manager = opts.fieldManager ?? 'unknown';
    const changed = leafPaths(patch).filter((p) => getPath(next, p) !== undefined);
    for (const [, s] of owners) for (const p of changed) s.delete(p);
    owners.set(manager, new Set([...(owners.get(manager) ?? []), ...changed]));
    this.check(rt, ns, next);
    const operations = new Map(existing.operations ?? []).set(manager, 'Update');
    return this.store(rt, ns, { obj: next, owners, operations }, existing, opts.dryRun);
  }

  delete(rt: ResourceType, ns: string, name: string, dryRun: boolean): void {
    const k = this.key(rt, ns, name);
    if (!this.objects.has(k)) throw status.notFound(target(rt, name));
    if (!dryRun) {
      this.objects.delete(k);
      this.revision++;
    }
  }

  /** Update rules of the real server: a Secret's type and an immutable object's data never change. */
  private checkUpdate(rt: ResourceType, before: Obj, after: Obj): void {
    const causes: StatusCause[] = [];
    if (after.metadata?.namespace !== before.metadata.namespace)
      causes.push({ reason: 'FieldValueInvalid', message: 'field is immutable', field: 'metadata.namespace' });
    if (rt.resource === 'secrets' && (after.type ?? 'Opaque') !== (before.type ?? 'Opaque'))
      causes.push({ reason: 'FieldValueInvalid', message: 'field is immutable', field: 'type' });
    if ((rt.resource === 'secrets' || rt.resource === 'configmaps') && before.immutable === true) {
      if (!isDeepStrictEqual(after.data, before.data) || !isDeepStrictEqual(after.binaryData, before.binaryData) || after.immutable !== true) {
        causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: field is immutable when `immutable` is set', field: 'data' });
      }
    }
    if (causes.length > 0) throw status.invalid(rt.kind, target(rt, before.metadata.name), causes);
  }

  private check(rt: ResourceType, ns: string, obj: Obj): void {
    const causes = validateObject(rt.resource, obj, ns);
    if (causes.length > 0) throw status.invalid(rt.kind, target(rt, obj.metadata?.name), causes);
  }

  /** Stores unless dry run; a write that changes nothing keeps the resourceVersion, as etcd does. */
  private store(rt: ResourceType, ns: string, next: Stored, previous: Stored | undefined, dryRun: boolean): Obj {
    const obj = next.obj;
    if (previous) this.checkUpdate(rt, previous.obj, obj);
    if (previous && isDeepStrictEqual(stripServerFields(previous.obj), stripServerFields(obj))) return clone(previous.obj);
    obj.metadata.uid = previous?.obj.metadata.uid ?? randomUUID();
    obj.metadata.creationTimestamp = previous?.obj.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (rt.hasSpec) {
      const prevGen = previous?.obj.metadata.generation ?? 0;
      obj.metadata.generation = previous && isDeepStrictEqual(previous.obj.spec, obj.spec) ? prevGen : prevGen + 1;
    }
    // As the API server shows them: one entry per manager with its operation and the fields it owns (FieldsV1).
    obj.metadata.managedFields = [...next.owners]
      .filter(([, s]) => s.size > 0)
      .map(([manager, fields]) => ({
        manager,
        operation: next.operations?.get(manager) ?? 'Update',
        apiVersion: obj.apiVersion,
        fieldsType: 'FieldsV1',
        fieldsV1: fieldsV1(fields),
      }));
    if (dryRun) {
      obj.metadata.resourceVersion = previous?.obj.metadata.resourceVersion ?? '';
      return clone(obj);
    }
    obj.metadata.resourceVersion = String(++this.revision);
    this.objects.set(this.key(rt, ns, obj.metadata.name), next);
    return clone(obj);
  }
}

function target(rt: ResourceType, name: string | undefined): Target {
  return { group: rt.group, resource: rt.resource, name };
}

function checkKind(rt: ResourceType, body: Obj): void {
  const apiVersion = rt.group ? `${rt.group}/${rt.version}` : rt.version;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw status.badRequest('the body must be an object');
  if (body.apiVersion !== apiVersion || body.kind !== rt.kind) {
    throw status.badRequest(`the API version in the data (${body.apiVersion}) / kind (${body.kind}) does not match the expected ${apiVersion} ${rt.kind}`);
  }
}

function stripServerFields(o: Obj): Obj {
  const c = clone(o);
  for (const f of ['resourceVersion', 'managedFields', 'generation', 'uid', 'creationTimestamp']) delete c.metadata?.[f];
  return c;
}

/** Owned leaf paths in the API's FieldsV1 shape: `{"f:data": {"f:nginx.conf": {}}}`. */
function fieldsV1(paths: Set<string>): Obj {
  const out: Obj = {};
  for (const p of paths) {
    let cur = out;
    for (const k of JSON.parse(p) as string[]) cur = cur[`f:${k}`] ??= {};
  }
  return out;
}

/** Leaf field paths of an object (arrays are atomic leaves), without identity fields. */
export function leafPaths(o: Obj, prefix: string[] = []): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const p = [...prefix, k];
    if (IDENTITY.has(p.join('.'))) continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) out.push(...leafPaths(v, p));
    else out.push(JSON.stringify(p));
  }
  return out;
}

function getPath(o: Obj, p: string): unknown {
  return (JSON.parse(p) as string[]).reduce<any>((cur, k) => (cur && typeof cur === 'object' ? cur[k] : undefined), o);
}

function setPath(o: Obj, p: string, v: unknown): void {
  const keys = JSON.parse(p) as string[];
  let cur = o;
  for (const k of keys.slice(0, -1)) cur = cur[k] && typeof cur[k] === 'object' ? cur[k] : (cur[k] = {});
  cur[keys.at(-1)!] = clone(v);
}

function deletePath(o: Obj, p: string): void {
  const keys = JSON.parse(p) as string[];
  const parents: Obj[] = [o];
  for (const k of keys.slice(0, -1)) {
    const next = parents.at(-1)![k];
    if (!next || typeof next !== 'object') return;
    parents.push(next);
  }
  delete parents.at(-1)![keys.at(-1)!];
  // Empty maps left behind disappear, as they do in a real apply.
  for (let i = parents.length - 1; i > 0; i--) if (Object.keys(parents[i]!).length === 0) delete parents[i - 1]![keys[i - 1]!];
}

function mergeInto(target: Obj, patch: Obj): Obj {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else if (typeof v === 'object' && !Array.isArray(v))
      target[k] = mergeInto(target[k] && typeof target[k] === 'object' && !Array.isArray(target[k]) ? target[k] : {}, v);
    else target[k] = clone(v);
  }
  return target;
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated (ANDed). */
export function parseSelector(selector: string | undefined): (labels: Record<string, string>) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(',').map((t) => t.trim());
  const tests = terms.map((t) => {
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(\S*)$/.exec(t))) return (l: Record<string, string>) => l[m![1]!] !== m![2];
    if ((m = /^([^!=\s]+)\s*==?\s*(\S*)$/.exec(t))) return (l: Record<string, string>) => l[m![1]!] === m![2];
    if ((m = /^!([^!=\s]+)$/.exec(t))) return (l: Record<string, string>) => !(m![1]! in l);
    if ((m = /^([^!=\s]+)$/.exec(t))) return (l: Record<string, string>) => m![1]! in l;
    throw status.badRequest(`unable to parse requirement: ${JSON.stringify(t)}`);
  });
  return (labels) => tests.every((f) => f(labels));
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}
