/** Pure parts of the API publisher: retry timing, objects, and the write/prune/rollout decisions. */
import { describe, expect, it } from 'vitest';
import { buildConfigMap } from '../../src/process/index.js';
import { decide, type LiveObject } from '../../src/publish/kube/decide.js';
import { buildDesiredObject, inputsHashes, parseWorkloadRef, type TargetSpec, type WorkloadRef } from '../../src/publish/kube/objects.js';
import { parseRetryAfter, retryDelay } from '../../src/publish/kube/retry.js';

const meta = { source: 'dir:/p', digest: 'sha256:' + 'a'.repeat(64), revision: 'r1' };
const w = (ref: string) => parseWorkloadRef(ref) as WorkloadRef;
const spec = (name: string, consumers: string[] = [], kind: 'ConfigMap' | 'Secret' = 'ConfigMap'): TargetSpec => ({
  name,
  kind,
  files: [{ path: `dir/${name}.txt`, key: `${name}.txt` }],
  consumers: consumers.map(w),
});
const obj = (name: string, text: string, s = spec(name)) =>
  buildDesiredObject(buildConfigMap(name, 'ns', [{ key: `${name}.txt`, path: `dir/${name}.txt`, bytes: Buffer.from(text) }]), s, 'ns', 'zeta-provision', meta);

describe('retry policy', () => {
  const policy = { baseMs: 100, capMs: 1000, maxAttempts: 5 };
  it('backs off exponentially with jitter between half and the full step, capped', () => {
    expect([0, 1, 2, 3].map((a) => retryDelay({ kind: 'transport' }, a, 60_000, 0, policy))).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map((a) => retryDelay({ kind: 'status', status: 503 }, a, 60_000, 0.999999, policy))).toEqual([100, 200, 400, 800]);
    expect(retryDelay({ kind: 'status', status: 500 }, 4, 60_000, 0, policy)).toBeUndefined();
  });
  it('honours Retry-After on 429 up to the cap, and never sleeps past the deadline', () => {
    expect(retryDelay({ kind: 'status', status: 429, retryAfterSeconds: 0.5 }, 0, 60_000, 0, policy)).toBe(500);
    expect(retryDelay({ kind: 'status', status: 429, retryAfterSeconds: 120 }, 0, 60_000, 0, policy)).toBe(1000);
    expect(retryDelay({ kind: 'transport' }, 3, 300, 0, policy)).toBeUndefined();
  });
  it('does not retry answers: 400, 403, 404, 409, 422', () => {
    for (const status of [400, 403, 404, 409, 422]) expect(retryDelay({ kind: 'status', status }, 0, 60_000, 0.5, policy)).toBeUndefined();
  });
  it('parses only the delta-seconds form of Retry-After', () => {
    expect([
      parseRetryAfter('3'),
      parseRetryAfter(' 10 '),
      parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'),
      parseRetryAfter('-1'),
      parseRetryAfter(undefined),
    ]).toEqual([3, 10, undefined, undefined, undefined]);
  });
});

describe('API objects', () => {
  it('builds a ConfigMap apply body with labels, provenance and content hash', () => {
    const d = obj('nginx', 'events {}\n');
    expect(d.body).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'nginx',
        namespace: 'ns',
        labels: {
          'app.kubernetes.io/managed-by': 'zeta-provision',
          'app.kubernetes.io/name': 'zeta-provision',
          'app.kubernetes.io/instance': 'zeta-provision',
        },
        annotations: {
          'zeta-provision/content-hash': d.contentHash,
          'zeta-provision/source': 'dir:/p',
          'zeta-provision/source-digest': meta.digest,
          'zeta-provision/revision': 'r1',
        },
      },
      data: { 'nginx.txt': 'events {}\n' },
    });
  });
  it('a Secret carries every value base64 in data, text and binary alike', () => {
    const cm = buildConfigMap('s', 'ns', [
      { key: 'a.txt', path: 'a.txt', bytes: Buffer.from('text') },
      { key: 'b.bin', path: 'b.bin', bytes: Buffer.from([0, 1, 2]) },
    ]);
    const d = buildDesiredObject(cm, { name: 's', kind: 'Secret', files: [], consumers: [] }, 'ns', 'i', meta);
    expect(d.body).toMatchObject({ kind: 'Secret', type: 'Opaque', data: { 'a.txt': 'dGV4dA==', 'b.bin': 'AAEC' } });
    expect(d.body).not.toHaveProperty('binaryData');
  });
  it('refuses an invalid key naming the file, and counts binary files by decoded size as the API does', () => {
    const cm = buildConfigMap('x', 'ns', [{ key: 'ok', path: 'p', bytes: Buffer.from('v') }]);
    cm.data = { 'bad/key': 'v' };
    expect(() =>
      buildDesiredObject(cm, { name: 'x', kind: 'ConfigMap', files: [{ path: 'dir/file', key: 'bad/key' }], consumers: [] }, 'ns', 'i', meta),
    ).toThrow('ConfigMap x: key "bad/key" (from dir/file) is not a valid key ([-._a-zA-Z0-9]+, at most 253 characters)');
    const big = buildConfigMap('y', 'ns', [{ key: 'k', path: 'p', bytes: Buffer.alloc(700 * 1024, 0xff) }]);
    expect(buildDesiredObject(big, spec('y'), 'ns', 'i', meta).bytes).toBe(700 * 1024);
    big.binaryData.k2 = Buffer.alloc(400 * 1024).toString('base64');
    expect(() => buildDesiredObject(big, { ...spec('y'), files: [{ path: 'second.bin', key: 'k2' }] }, 'ns', 'i', meta)).toThrow(
      /over the API limit of 1048576 \(k 716800 B, second\.bin 409600 B\)/,
    );
  });
  it('parses consumer references', () => {
    expect(parseWorkloadRef('statefulset/keycloak')).toEqual({ ref: 'statefulset/keycloak', kind: 'StatefulSet', resource: 'statefulsets', name: 'keycloak' });
    expect(parseWorkloadRef('pod/x')).toMatch(/kind must be/);
    expect(parseWorkloadRef('deployment/Bad')).toMatch(/not KIND\/NAME/);
  });
});

describe('decide', () => {
  const targets = [spec('a', ['deployment/x']), spec('b', ['deployment/x', 'deployment/y']), spec('c')];
  const desired = [obj('a', '1'), obj('b', '2'), obj('c', '3')];
  const live = (entries: [string, string | undefined][]) =>
    new Map<string, LiveObject>(entries.map(([n, h]) => [`ConfigMap/${n}`, { kind: 'ConfigMap', name: n, contentHash: h, resourceVersion: '7' }]));
  const consumers = inputsHashes(targets, new Map(desired.map((d) => [d.name, d.contentHash])));
  const record = (objects = desired) => ({
    version: 1 as const,
    outcome: 'applied' as const,
    time: '',
    counts: { applied: 0, unchanged: 0, pruned: 0, restarted: 0, pending: 0 },
    objects: objects.map((d) => ({ kind: d.kind, name: d.name, contentHash: d.contentHash })),
    consumers: Object.fromEntries(consumers),
  });

  it('nothing changed: no apply, no rollout', () => {
    const plan = decide(desired, live(desired.map((d) => [d.name, d.contentHash])), targets, record(), { prune: true, statusName: 'zeta-provision-status' });
    expect(plan).toEqual({ apply: [], unchanged: desired, prune: [], restart: [] });
  });

  it('one input changed: one apply (with the live resourceVersion), rollouts of exactly its consumers', () => {
    const changed = [desired[0]!, obj('b', 'new'), desired[2]!];
    const plan = decide(changed, live(desired.map((d) => [d.name, d.contentHash])), targets, record(), { prune: false, statusName: 's' });
    expect(plan.apply.map((a) => [a.object.name, a.action, a.resourceVersion])).toEqual([['b', 'update', '7']]);
    expect(plan.restart.map((r) => [r.ref, r.inputs])).toEqual([
      ['deployment/x', ['a', 'b']],
      ['deployment/y', ['b']],
    ]);
  });

  it('an object not ours (no hash) is updated; a missing one created', () => {
    const plan = decide(desired, live([['a', undefined]]), targets, record(), { prune: false, statusName: 's' });
    expect(plan.apply.map((a) => `${a.action} ${a.object.name}`)).toEqual(['update a', 'create b', 'create c']);
  });

  it('prune: labelled ConfigMaps and recorded Secrets the config no longer makes, never the status record', () => {
    const prev = record([...desired, obj('gone-secret', 'x', spec('gone-secret', [], 'Secret'))]);
    const l = live([...desired.map((d) => [d.name, d.contentHash] as [string, string]), ['old', 'sha256:0'], ['zeta-provision-status', undefined]]);
    const plan = decide(desired.slice(0, 2), l, targets.slice(0, 2), prev, { prune: true, statusName: 'zeta-provision-status' });
    expect(plan.prune).toEqual([
      { kind: 'ConfigMap', name: 'c' },
      { kind: 'ConfigMap', name: 'old' },
      { kind: 'Secret', name: 'gone-secret' },
    ]);
    expect(decide(desired.slice(0, 2), l, targets.slice(0, 2), prev, { prune: false, statusName: 'zeta-provision-status' }).prune).toEqual([]);
  });
});
