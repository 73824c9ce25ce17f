/**
 * An in-process Kubernetes API server for tests: the subset zeta-provision uses, with the real
 * server's semantics.
 *
 * Served: legacy discovery (/api, /apis, group versions, /version) for kubectl; core/v1 configmaps, secrets, events; apps/v1 deployments, statefulsets, daemonsets —
 * namespaced GET (get/list with labelSelector), POST (create), PATCH (apply-patch+yaml = server-side
 * apply, merge-patch+json; strategic-merge-patch+json only for ConfigMaps/Secrets, where it equals a
 * merge patch), DELETE. Not served: PUT, json-patch, watch, stringData — answered with the Status a
 * server gives for something it does not allow, never accepted silently.
 *
 * Semantics kept: JSON `Status` bodies (reason, code, details); 404 NotFound; 409 AlreadyExists,
 * resourceVersion preconditions and server-side apply field-manager conflicts; 422 Invalid for bad
 * names, keys and payloads over 1048576 bytes; 401 without the bearer token when one is configured;
 * 403 Forbidden unless the RBAC policy allows the request (deny by default; an apply that creates
 * needs `create` as well as `patch`, as in the API server's patch handler); `dryRun=All` validates
 * and answers but writes nothing; apply requires a fieldManager and the apply content type.
 *
 * Namespaces: with `namespaces` set, writes elsewhere get 404 (namespace not found), LISTs an empty list.
 * managedFields: one entry per field manager with its operation (Apply/Update) and FieldsV1.
 *
 * Fault injection: `inject()` answers matching requests with 429 + Retry-After, 500, 503 or drops the
 * connection; `latencyMs` delays every request. `requests` records every request with the
 * authorization checks it needed, so tests can compare the code's behaviour with manifests/.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { authorize, type AuthzRequest, type RbacPolicy } from './rbac.js';
import { ApiError, status, success, type StatusBody } from './status.js';
import { RESOURCES, Store, type ResourceType } from './store.js';
import { discovery } from './discovery.js';
import { namespaceProblem } from './validate.js';

export { rulesFromManifest, type PolicyRule, type RbacPolicy, type AuthzRequest } from './rbac.js';
export { MAX_DATA_BYTES } from './validate.js';

export interface RecordedRequest {
  method: string;
  verb: string;
  group: string;
  resource: string;
  namespace: string;
  name?: string;
  contentType?: string;
  fieldManager?: string;
  force?: boolean;
  dryRun: boolean;
  labelSelector?: string;
  /** Authorization checks the request needed (empty when it failed before authorization). */
  authz: AuthzRequest[];
  status: number;
}

export type Fault = { kind: 'status'; code: 429 | 500 | 503; retryAfterSeconds?: number } | { kind: 'drop' };

export interface FaultRule {
  match?: { method?: string; resource?: string; name?: string };
  fault: Fault;
  /** How many matching requests get the fault (default 1; Infinity = until cleared). */
  times?: number;
  /** Answer only after this many ms: an overloaded server that is slow to say it is unavailable. */
  afterMs?: number;
}

export interface KubeApiOptions {
  rbac?: RbacPolicy;
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** PEM key and certificate: serve HTTPS. */
  tls?: { key: string; cert: string };
  latencyMs?: number;
  user?: string;
  /**
   * Namespaces that exist. When set, a write into another namespace answers 404 `namespaces "x" not
   * found` while a LIST there answers 200 with no items — as the real API server does.
   */
  namespaces?: string[];
  /** Called before each request is served: lets a test act as a concurrent writer. */
  onRequest?: (rec: RecordedRequest, store: Store) => void;
}

export interface KubeApi {
  url: string;
  store: Store;
  requests: RecordedRequest[];
  options: KubeApiOptions;
  inject(rule: FaultRule): void;
  clearFaults(): void;
  /** Look up a resource type by its plural name. */
  type(resource: string): ResourceType;
  stop(): Promise<void>;
}

export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const store = new Store();
  const requests: RecordedRequest[] = [];
  let faults: (FaultRule & { left: number })[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res).catch(() => res.destroy());
  };
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler) : createHttpServer(handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
    const url = new URL(req.url ?? '/', 'http://double');
    const route = parseRoute(url.pathname);
    const method = req.method ?? 'GET';
    const rec: RecordedRequest = {
      method,
      verb: verbOf(method, route?.name),
      group: route?.rt.group ?? '',
      resource: route?.rt.resource ?? url.pathname,
      namespace: route?.namespace ?? '',
      name: route?.name,
      contentType: req.headers['content-type'],
      fieldManager: url.searchParams.get('fieldManager') ?? undefined,
      force: url.searchParams.has('force') ? url.searchParams.get('force') === 'true' : undefined,
      dryRun: url.searchParams.get('dryRun') === 'All',
      labelSelector: url.searchParams.get('labelSelector') ?? undefined,
      authz: [],
      status: 0,
    };
    requests.push(rec);
    options.onRequest?.(rec, store);
    const fault = faults.find((f) => f.left > 0 && matches(f, method, rec));
    if (fault) {
      fault.left--;
      if (fault.afterMs) await new Promise((r) => setTimeout(r, fault.afterMs));
      if (fault.fault.kind === 'drop') {
        rec.status = -1;
        req.socket.destroy();
        return;
      }
      const { code } = fault.fault;
      const err = code === 429 ? status.tooManyRequests(fault.fault.retryAfterSeconds ?? 1) : code === 500 ? status.internal() : status.unavailable();
      return send(res, rec, err.body, code === 429 ? { 'retry-after': String(fault.fault.retryAfterSeconds ?? 1) } : {});
    }
    try {
      if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) throw status.unauthorized();
      const doc = method === 'GET' && !route ? discovery(url.pathname, req.headers.host ?? '') : undefined;
      if (doc) return send(res, rec, doc, {}, 200);
      if (!route)
        throw new ApiError({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'the server could not find the requested resource',
          reason: 'NotFound',
          code: 404,
        });
      const result = serve(route, method, url.searchParams, req.headers['content-type'] ?? '', body, rec);
      send(res, rec, result.body, {}, result.code);
    } catch (err) {
      if (err instanceof ApiError) send(res, rec, err.body);
      else send(res, rec, status.internal(String(err)).body);
    }
  }

  function serve(route: Route, method: string, q: URLSearchParams, contentType: string, raw: Buffer, rec: RecordedRequest): { code: number; body: unknown } {
    const { rt, namespace: ns, name } = route;
    const nsProblem = namespaceProblem(ns);
    if (nsProblem) throw status.badRequest(`namespace: ${nsProblem}`);
    const dryRunValue = q.get('dryRun');
    if (dryRunValue !== null && dryRunValue !== 'All') throw status.badRequest(`Invalid value: "${dryRunValue}": supported values: "All"`);
    const dryRun = dryRunValue === 'All';
    if (options.namespaces && !options.namespaces.includes(ns) && method !== 'GET') {
      throw new ApiError({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `namespaces "${ns}" not found`,
        reason: 'NotFound',
        details: { name: ns, kind: 'namespaces' },
        code: 404,
      });
    }
    if (options.namespaces && !options.namespaces.includes(ns) && method === 'GET' && name)
      throw status.notFound({ group: rt.group, resource: rt.resource, name });
    const need = (verb: string, withName = name): void => {
      const a: AuthzRequest = { verb, group: rt.group, resource: rt.resource, namespace: ns, name: withName };
      rec.authz.push(a);
      if (!authorize(options.rbac ?? {}, a))
        throw status.forbidden(
          options.user ?? 'system:serviceaccount:default:zeta-provision',
          verb,
          { group: rt.group, resource: rt.resource, name: withName },
          ns,
        );
    };
    if (method === 'GET' && name) return (need('get'), { code: 200, body: store.get(rt, ns, name) });
    if (method === 'GET') return (need('list'), { code: 200, body: store.list(rt, ns, q.get('labelSelector') ?? undefined) });
    if (method === 'POST' && !name) {
      need('create', undefined);
      return {
        code: 201,
        body: store.create(rt, ns, parseBody(raw, contentType, ['application/json', 'application/yaml']), {
          dryRun,
          fieldManager: q.get('fieldManager') ?? undefined,
        }),
      };
    }
    if (method === 'DELETE' && name)
      return (need('delete'), store.delete(rt, ns, name, dryRun), { code: 200, body: success({ group: rt.group, resource: rt.resource, name }) });
    if (method === 'PATCH' && name) {
      need('patch');
      const type = contentType.split(';')[0]!.trim();
      const force = q.get('force');
      if (type === 'application/apply-patch+yaml') {
        const fieldManager = q.get('fieldManager');
        if (!fieldManager) throw status.badRequest('PATCH: fieldManager is required for apply requests');
        if (force !== null && force !== 'true' && force !== 'false') throw status.badRequest(`Invalid value: "${force}": force must be true or false`);
        // The patch handler authorizes `create` when the apply would create the object.
        if (!store.peek(rt, ns, name)) need('create', name);
        const r = store.apply(rt, ns, name, parseBody(raw, contentType, [type]), { dryRun, fieldManager, force: force === 'true' });
        return { code: r.created ? 201 : 200, body: r.obj };
      }
      if (force !== null) throw status.badRequest('force is only allowed for apply patches');
      const merge = type === 'application/merge-patch+json' || (type === 'application/strategic-merge-patch+json' && !rt.hasSpec);
      if (!merge) throw status.unsupportedMediaType(type);
      const patch = parseBody(raw, contentType, [type]);
      if (JSON.stringify(patch).includes('"$')) throw status.badRequest('strategic merge directives are not implemented by the test double');
      return { code: 200, body: store.mergePatch(rt, ns, name, patch, { dryRun, fieldManager: q.get('fieldManager') ?? undefined }) };
    }
    throw status.methodNotAllowed(method);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    store,
    requests,
    options,
    inject: (rule) => faults.push({ ...rule, left: rule.times ?? 1 }),
    clearFaults: () => void (faults = []),
    type: (resource) =>
      RESOURCES.find((r) => r.resource === resource) ??
      (() => {
        throw new Error(`unknown resource ${resource}`);
      })(),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Route {
  rt: ResourceType;
  namespace: string;
  name?: string;
}

function parseRoute(pathname: string): Route | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(pathname);
  if (!m) return undefined;
  const group = m[2] ?? '';
  const version = m[1] ?? m[3];
  const rt = RESOURCES.find((r) => r.group === group && r.version === version && r.resource === m[5]);
  if (!rt) return undefined;
  return { rt, namespace: decodeURIComponent(m[4]!), name: m[6] === undefined ? undefined : decodeURIComponent(m[6]) };
}

function verbOf(method: string, name: string | undefined): string {
  if (method === 'GET') return name ? 'get' : 'list';
  return ({ POST: 'create', PATCH: 'patch', DELETE: 'delete', PUT: 'update' } as Record<string, string>)[method] ?? method.toLowerCase();
}

function matches(f: FaultRule, method: string, rec: RecordedRequest): boolean {
  const m = f.match ?? {};
  return (
    (m.method === undefined || m.method === method) &&
    (m.resource === undefined || m.resource === rec.resource) &&
    (m.name === undefined || m.name === rec.name)
  );
}

function parseBody(raw: Buffer, contentType: string, accepted: string[]): any {
  const type = contentType.split(';')[0]!.trim();
  if (!accepted.includes(type)) throw status.unsupportedMediaType(type);
  try {
    // apply-patch+yaml and application/yaml take YAML (JSON is YAML); the rest take JSON only.
    return type.endsWith('yaml') ? parseYaml(raw.toString('utf8')) : JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw status.badRequest(`error decoding body: ${(err as Error).message.split('\n')[0]}`);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, rec: RecordedRequest, body: unknown, headers: Record<string, string> = {}, code?: number): void {
  rec.status = code ?? (body as StatusBody).code;
  res.writeHead(rec.status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
