/**
 * Test scaffolding around the double: a payload directory, a config with API targets, a kubeconfig
 * pointing at the double, and seeded consumer workloads.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeApi } from './index.js';

export const NS = 'zeta';

export function workload(kind: 'Deployment' | 'StatefulSet' | 'DaemonSet', name: string): Record<string, unknown> {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name, image: `${name}:1` }] } } },
  };
}

/** Creates the workloads directly in the store (as an operator's own manifests would have). */
export function seedWorkloads(api: KubeApi, refs: string[]): void {
  for (const ref of refs) {
    const [kind, name] = ref.split('/') as [string, string];
    const k = ({ deployment: 'Deployment', statefulset: 'StatefulSet', daemonset: 'DaemonSet' } as const)[kind as 'deployment']!;
    api.store.create(api.type(`${kind}s`), NS, workload(k, name), { dryRun: false, fieldManager: 'kubectl-client-side-apply' });
  }
}

export async function writeKubeconfig(dir: string, server: string, opts: { namespace?: string; token?: string; context?: string } = {}): Promise<string> {
  const file = path.join(dir, 'kubeconfig');
  const ctx = opts.context ?? 'test';
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: double-${ctx}`,
      `  cluster: { server: "${server}", insecure-skip-tls-verify: true }`,
      'users:',
      `- name: tester-${ctx}`,
      `  user: { token: "${opts.token ?? 'test-token'}" }`,
      'contexts:',
      `- name: ${ctx}`,
      `  context: { cluster: double-${ctx}, user: tester-${ctx}${opts.namespace ? `, namespace: ${opts.namespace}` : ''} }`,
      `current-context: ${ctx}`,
      '',
    ].join('\n'),
  );
  return file;
}

export async function writePayload(dir: string, files: Record<string, string | Buffer>): Promise<string> {
  const root = path.join(dir, 'payload');
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), content);
  }
  return root;
}

export async function writeConfig(dir: string, yaml: string): Promise<string> {
  const file = path.join(dir, 'zeta-provision.yaml');
  await writeFile(file, yaml);
  return file;
}

/** Requests that changed something in the cluster (not dry runs, not reads). */
export function writes(api: KubeApi): { verb: string; resource: string; name?: string }[] {
  return api.requests
    .filter((r) => ['create', 'patch', 'delete', 'update'].includes(r.verb) && !r.dryRun && r.status >= 200 && r.status < 300)
    .map((r) => ({ verb: r.verb, resource: r.resource, name: r.name }));
}
