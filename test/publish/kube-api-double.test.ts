/** The API test double refuses what a real API server refuses; these pin its semantics. */
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApi, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.js';

let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

async function start(opts: KubeApiOptions = { rbac: 'allow-all' }): Promise<KubeApi> {
  api = await startKubeApi(opts);
  return api;
}

const CM = '/api/v1/namespaces/ns/configmaps';
const cm = (name: string, data: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...extra },
  data,
});

async function call(
  a: KubeApi,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(a.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}
const apply = (a: KubeApi, name: string, body: unknown, query = 'fieldManager=zeta-provision') =>
  call(a, 'PATCH', `${CM}/${name}?${query}`, body, 'application/apply-patch+yaml');

describe('kube-api double', () => {
  it('creates with 201, refuses a second create with 409 AlreadyExists, 404 NotFound with a Status body', async () => {
    const a = await start();
    const created = await call(a, 'POST', CM, cm('a', { k: 'v' }));
    expect(created.status).toBe(201);
    expect(created.body.metadata.resourceVersion).toMatch(/^\d+$/);
    const again = await call(a, 'POST', CM, cm('a', { k: 'v' }));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409, message: 'configmaps "a" already exists' });
    const missing = await call(a, 'GET', `${CM}/nope`);
    expect(missing.body).toMatchObject({ reason: 'NotFound', code: 404, details: { name: 'nope', kind: 'configmaps' } });
  });

  it('server-side apply: creates, bumps resourceVersion only on change, removes fields the manager dropped', async () => {
    const a = await start();
    const first = await apply(a, 'x', cm('x', { one: '1', two: '2' }));
    expect(first.status).toBe(201);
    const same = await apply(a, 'x', cm('x', { one: '1', two: '2' }));
    expect(same.status).toBe(200);
    expect(same.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    const dropped = await apply(a, 'x', cm('x', { one: '1' }));
    expect(Number(dropped.body.metadata.resourceVersion)).toBeGreaterThan(Number(first.body.metadata.resourceVersion));
    expect(dropped.body.data).toEqual({ one: '1' });
  });

  it("apply conflicts with another manager's field unless forced; a stale resourceVersion is a 409 Conflict", async () => {
    const a = await start();
    await apply(a, 'x', cm('x', { k: 'mine' }), 'fieldManager=kubectl');
    const conflict = await apply(a, 'x', cm('x', { k: 'theirs' }));
    expect(conflict.status).toBe(409);
    expect(conflict.body.reason).toBe('Conflict');
    expect(conflict.body.details.causes).toEqual([{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl"', field: '.data.k' }]);
    // Same value: shared ownership, no conflict.
    expect((await apply(a, 'x', cm('x', { k: 'mine' }))).status).toBe(200);
    const forced = await apply(a, 'x', cm('x', { k: 'theirs' }), 'fieldManager=zeta-provision&force=true');
    expect(forced.status).toBe(200);
    expect(forced.body.data.k).toBe('theirs');
    const stale = await apply(a, 'x', cm('x', { k: 'z' }, { resourceVersion: '1' }));
    expect(stale.body).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(stale.body.message).toContain('the object has been modified');
  });

  it('refuses apply without the apply content type, without fieldManager, or with a name mismatch', async () => {
    const a = await start();
    expect((await call(a, 'PATCH', `${CM}/x?fieldManager=m`, cm('x', {}), 'application/json')).status).toBe(415);
    expect((await call(a, 'PATCH', `${CM}/x`, cm('x', {}), 'application/apply-patch+yaml')).body).toMatchObject({
      code: 400,
      message: expect.stringContaining('fieldManager is required'),
    });
    expect((await apply(a, 'x', cm('y', {}))).status).toBe(400);
    expect((await apply(a, 'x', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } })).status).toBe(400);
  });

  it('422 for invalid names, keys and for data over 1048576 bytes (exactly the limit passes)', async () => {
    const a = await start();
    expect((await apply(a, 'Bad_Name', cm('Bad_Name', {}))).body).toMatchObject({ code: 422, reason: 'Invalid' });
    const badKey = await apply(a, 'x', cm('x', { 'a/b': 'v' }));
    expect(badKey.body).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(badKey.body.message).toContain('a valid config key');
    expect((await apply(a, 'x', cm('x', { k: 'a'.repeat(1048576) }))).status).toBe(201);
    const over = await apply(a, 'y', { ...cm('y', { k: 'a'.repeat(1048000) }), binaryData: { b: Buffer.alloc(577).toString('base64') } });
    expect(over.body).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(over.body.message).toContain('Too long: must have at most 1048576 bytes');
    const secret = await call(
      a,
      'PATCH',
      '/api/v1/namespaces/ns/secrets/s?fieldManager=m',
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: 'not base64!' } },
      'application/apply-patch+yaml',
    );
    expect(secret.body).toMatchObject({ code: 422 });
  });

  it('refuses updates the real server refuses: Secret type, immutable data, namespace', async () => {
    const a = await start();
    const S = '/api/v1/namespaces/ns/secrets';
    const secret = (type: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type, data: { k: 'dg==' } });
    expect((await call(a, 'PATCH', `${S}/s?fieldManager=m`, secret('Opaque'), 'application/apply-patch+yaml')).status).toBe(201);
    expect((await call(a, 'PATCH', `${S}/s?fieldManager=m`, secret('kubernetes.io/tls'), 'application/apply-patch+yaml')).body).toMatchObject({
      code: 422,
      message: expect.stringContaining('type: field is immutable'),
    });
    await apply(a, 'frozen', { ...cm('frozen', { k: 'v' }), immutable: true });
    expect((await apply(a, 'frozen', { ...cm('frozen', { k: 'w' }), immutable: true })).body).toMatchObject({ code: 422, reason: 'Invalid' });
    expect((await apply(a, 'frozen', { ...cm('frozen', { k: 'v' }), immutable: true })).status).toBe(200);
    expect((await call(a, 'PATCH', `${CM}/frozen`, { metadata: { namespace: 'other' } }, 'application/merge-patch+json')).body).toMatchObject({ code: 422 });
  });

  it('serves the discovery documents kubectl reads, and 404 for what it does not serve', async () => {
    const a = await start();
    expect((await call(a, 'GET', '/api')).body).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const core = await call(a, 'GET', '/api/v1');
    expect(core.body.resources.map((r: any) => r.name)).toEqual(['configmaps', 'secrets', 'events']);
    expect((await call(a, 'GET', '/apis/apps/v1')).body.resources.map((r: any) => r.kind)).toEqual(['Deployment', 'StatefulSet', 'DaemonSet']);
    expect((await call(a, 'GET', '/openapi/v3')).status).toBe(404);
    expect((await call(a, 'GET', '/api/v1/namespaces/ns/pods')).body).toMatchObject({ code: 404, reason: 'NotFound' });
    expect((await call(a, 'PUT', `${CM}/x`, cm('x', {}))).status).toBe(405);
  });

  it('dryRun=All validates and answers but stores nothing; other dryRun values are refused', async () => {
    const a = await start();
    const dry = await apply(a, 'x', cm('x', { k: 'v' }), 'fieldManager=m&dryRun=All');
    expect(dry.status).toBe(201);
    expect(dry.body.data).toEqual({ k: 'v' });
    expect((await call(a, 'GET', `${CM}/x`)).status).toBe(404);
    expect((await apply(a, 'x', cm('x', { 'a b': 'v' }), 'fieldManager=m&dryRun=All')).status).toBe(422);
    expect((await apply(a, 'x', cm('x', {}), 'fieldManager=m&dryRun=true')).status).toBe(400);
  });

  it('RBAC denies by default, honours resourceNames, and an apply that creates needs create too', async () => {
    const a = await start({ rbac: {} });
    const denied = await call(a, 'GET', `${CM}/x`);
    expect(denied.body).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(denied.body.message).toBe(
      'configmaps "x" is forbidden: User "system:serviceaccount:default:zeta-provision" cannot get resource "configmaps" in API group "" in the namespace "ns"',
    );
    a.options.rbac = { ns: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch'], resourceNames: ['x'] }] };
    const needsCreate = await apply(a, 'x', cm('x', {}));
    expect(needsCreate.body.message).toContain('cannot create resource "configmaps"');
    a.options.rbac.ns!.push({ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] });
    expect((await apply(a, 'x', cm('x', {}))).status).toBe(201);
    expect((await apply(a, 'y', cm('y', {}))).body.message).toContain('cannot patch resource "configmaps"');
    expect((await call(a, 'GET', CM)).status).toBe(403);
    expect(a.requests.find((r) => r.name === 'x' && r.status === 201)!.authz.map((z) => z.verb)).toEqual(['patch', 'create']);
  });

  it('lists by label selector; merge patch bumps a workload generation only when its spec changes', async () => {
    const a = await start();
    await apply(a, 'a', cm('a', {}, { labels: { app: 'z' } }));
    await apply(a, 'b', cm('b', {}, { labels: { app: 'other' } }));
    const list = await call(a, 'GET', `${CM}?labelSelector=${encodeURIComponent('app=z')}`);
    expect(list.body.kind).toBe('ConfigMapList');
    expect(list.body.items.map((i: any) => i.metadata.name)).toEqual(['a']);
    const dep = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'opa' },
      spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    };
    const D = '/apis/apps/v1/namespaces/ns/deployments';
    expect((await call(a, 'POST', D, dep)).body.metadata.generation).toBe(1);
    const patch = { spec: { template: { metadata: { annotations: { 'zeta-provision/inputs-hash': 'h1' } } } } };
    expect((await call(a, 'PATCH', `${D}/opa`, patch, 'application/merge-patch+json')).body.metadata.generation).toBe(2);
    expect((await call(a, 'PATCH', `${D}/opa`, patch, 'application/merge-patch+json')).body.metadata.generation).toBe(2);
    expect((await call(a, 'PATCH', `${D}/opa`, { spec: { selector: null } }, 'application/merge-patch+json')).status).toBe(422);
  });

  it('injects 429 with Retry-After, 500, 503 and dropped connections, and records every request', async () => {
    const a = await start();
    a.inject({ match: { method: 'GET' }, fault: { kind: 'status', code: 429, retryAfterSeconds: 3 } });
    a.inject({ match: { method: 'GET' }, fault: { kind: 'status', code: 503 } });
    a.inject({ match: { method: 'GET' }, fault: { kind: 'status', code: 500 } });
    a.inject({ match: { method: 'GET' }, fault: { kind: 'drop' } });
    const r429 = await call(a, 'GET', `${CM}/x`);
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('3');
    expect(r429.body.details.retryAfterSeconds).toBe(3);
    expect((await call(a, 'GET', `${CM}/x`)).status).toBe(503);
    expect((await call(a, 'GET', `${CM}/x`)).status).toBe(500);
    await expect(call(a, 'GET', `${CM}/x`)).rejects.toThrow();
    expect((await call(a, 'GET', `${CM}/x`)).status).toBe(404);
    expect(a.requests.map((r) => [r.verb, r.resource, r.name, r.status])).toEqual([
      ['get', 'configmaps', 'x', 429],
      ['get', 'configmaps', 'x', 503],
      ['get', 'configmaps', 'x', 500],
      ['get', 'configmaps', 'x', -1],
      ['get', 'configmaps', 'x', 404],
    ]);
  });

  it('requires the bearer token when one is configured', async () => {
    const a = await start({ rbac: 'allow-all', token: 'tok-1' });
    expect((await call(a, 'GET', `${CM}/x`)).status).toBe(401);
    const ok = await fetch(`${a.url}${CM}/x`, { headers: { authorization: 'Bearer tok-1' } });
    expect(ok.status).toBe(404);
  });
});
