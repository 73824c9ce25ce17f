/**
 * Legacy discovery documents (/api, /apis, /api/v1, /apis/apps/v1, /version) for the resources the
 * double serves — what kubectl reads before it sends a request. No OpenAPI: kubectl runs with
 * --validate=false against the double.
 */
import { RESOURCES } from './store.js';

const VERBS = ['create', 'delete', 'get', 'list', 'patch'];

export function discovery(pathname: string, host: string): unknown | undefined {
  if (pathname === '/version') return { major: '1', minor: '32', gitVersion: 'v1.32.0-zeta-double', platform: 'linux/amd64' };
  if (pathname === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }] };
  if (pathname === '/apis') {
    const gv = { groupVersion: 'apps/v1', version: 'v1' };
    return { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'apps', versions: [gv], preferredVersion: gv }] };
  }
  const m = /^\/(?:api\/(v1)|apis\/(apps)\/(v1))$/.exec(pathname);
  if (!m) return undefined;
  const group = m[2] ?? '';
  const resources = RESOURCES.filter((r) => r.group === group).map((r) => ({
    name: r.resource,
    singularName: r.kind.toLowerCase(),
    namespaced: true,
    kind: r.kind,
    verbs: VERBS,
  }));
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/v1` : 'v1', resources };
}
