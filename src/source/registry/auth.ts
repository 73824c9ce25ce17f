/**
 * Registry authentication: parse `WWW-Authenticate`, answer Basic directly, run the Bearer token flow
 * (realm, service, scope; `token` or `access_token`). Credentials go only to the registry host and to
 * the token realm it names; they never appear in an error message.
 */
import { SourceError } from '../../errors.js';

export interface Credentials {
  username: string;
  /** Secret. */
  password: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (quoted or token values). Pure. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2] ?? '';
  let p: RegExpExecArray | null;
  while ((p = re.exec(rest)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    if (re.lastIndex >= rest.length) break;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** Every way to give credentials, for hints: flags and env first, then the login files that are read. */
export const CREDENTIALS_HINT =
  'pass --registry-auth-file FILE, or PROVISIONING_CONTAINER_REGISTRY_USERNAME and PROVISIONING_CONTAINER_REGISTRY_TOKEN; logins are also read from REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json (skopeo/podman login) and $DOCKER_CONFIG/config.json or ~/.docker/config.json (docker login)';

export interface TokenRequest {
  challenge: Challenge;
  registryHost: string;
  credentials?: Credentials & { origin?: string };
  fetchImpl: typeof fetch;
  userAgent?: string;
  /** Allow an http:// realm (only when the registry itself is insecure by configuration). */
  allowHttp: boolean;
}

/** Runs the Bearer token flow and returns the `Authorization` header value. */
export async function fetchBearerToken(req: TokenRequest): Promise<string> {
  const { realm, service, scope } = req.challenge.params;
  if (!realm) throw new SourceError(`registry ${req.registryHost} sent a Bearer challenge without a realm`);
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new SourceError(`registry ${req.registryHost} sent an invalid token realm`);
  }
  // A token realm over plain HTTP would expose the credentials we send to it.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && req.allowHttp)) {
    throw new SourceError(`registry ${req.registryHost} names a token realm over ${url.protocol.replace(':', '')}; refusing to send credentials there`);
  }
  if (service) url.searchParams.set('service', service);
  if (scope) url.searchParams.set('scope', scope);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (req.userAgent) headers['User-Agent'] = req.userAgent;
  if (req.credentials) headers.Authorization = basicHeader(req.credentials);
  const res = await req.fetchImpl(url, { headers, redirect: 'error' });
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    const who = req.credentials
      ? ` as user '${req.credentials.username}'${req.credentials.origin ? ` (credentials from ${req.credentials.origin})` : ''}`
      : ' anonymously';
    throw new SourceError(`authentication at ${url.host} failed${who} (HTTP ${res.status})`, CREDENTIALS_HINT);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new SourceError(`token endpoint ${url.host} answered HTTP ${res.status}`);
  }
  const text = await res.text();
  if (text.length > 1024 * 1024) throw new SourceError(`token endpoint ${url.host} sent more than 1 MiB`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SourceError(`token endpoint ${url.host} did not answer JSON`);
  }
  const token = (body as { token?: unknown; access_token?: unknown }).token ?? (body as { access_token?: unknown }).access_token;
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw new SourceError(`token endpoint ${url.host} sent no usable token`);
  return `Bearer ${token}`;
}
