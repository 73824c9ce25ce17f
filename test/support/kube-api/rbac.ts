/**
 * RBAC as the API server evaluates a Role: a request is allowed when one rule matches its API group,
 * resource, verb and — only for requests that name an object — resourceNames. Everything else is
 * denied (no rules = deny all). `create` and `list` requests carry no name, so a rule with
 * resourceNames can never allow them, exactly as in a cluster.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface AuthzRequest {
  verb: string;
  group: string;
  resource: string;
  namespace: string;
  name?: string;
}

/** Rules per namespace (a Role bound in that namespace), or 'allow-all' (cluster-admin). */
export type RbacPolicy = 'allow-all' | Record<string, PolicyRule[]>;

const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes('*') || list.includes(v));

export function ruleAllows(rule: PolicyRule, req: AuthzRequest): boolean {
  if (!has(rule.apiGroups, req.group) || !has(rule.resources, req.resource) || !has(rule.verbs, req.verb)) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0) return req.name !== undefined && rule.resourceNames.includes(req.name);
  return true;
}

export function authorize(policy: RbacPolicy, req: AuthzRequest): boolean {
  if (policy === 'allow-all') return true;
  return (policy[req.namespace] ?? []).some((r) => ruleAllows(r, req));
}

/** The rules of the Role named in a manifest file (e.g. manifests/base/rbac.yaml). */
export async function rulesFromManifest(file: string, roleName?: string): Promise<PolicyRule[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Record<string, any>);
  const role = docs.find((d) => d?.kind === 'Role' && (roleName === undefined || d.metadata?.name === roleName));
  if (!role) throw new Error(`${file}: no Role${roleName ? ` ${roleName}` : ''}`);
  return (role.rules ?? []) as PolicyRule[];
}
