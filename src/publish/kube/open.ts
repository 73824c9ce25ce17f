/**
 * From the run's settings to a KubeTarget, or the decision what to do without one. Nothing is
 * contacted here; a missing configuration is found before any payload is fetched or written.
 */
import type { Settings } from '../../config/index.js';
import { ConfigError } from '../../errors.js';
import type { Target, TargetFactory } from '../target.js';
import type { Logger } from '../../log.js';
import type { KubeTarget } from './index.js';
import { parseWorkloadRef, type TargetSpec } from './objects.js';

export type KubeTargetChoice = { target: KubeTarget } | { target: undefined; warning?: string };

export function targetSpecs(settings: Settings): TargetSpec[] {
  return settings.config.configMaps.map((cm) => ({
    name: cm.name,
    kind: cm.secret ? 'Secret' : 'ConfigMap',
    // Derived outputs are named by id in messages; their key is settled by the process stage.
    files: cm.files.map((f) => ('output' in f ? { path: `output:${f.output}`, key: f.key } : f)),
    consumers: cm.consumers.map((c) => {
      const w = parseWorkloadRef(c);
      if (typeof w === 'string') throw new ConfigError(`configMaps ${cm.name}: consumers: ${w}`);
      return w;
    }),
  }));
}

/**
 * --kube-out wins (manifests, no API). Otherwise the API: a real run or a server-side dry run without
 * any cluster configuration is a configuration error (exit 2) naming what was tried; a client-side
 * dry run plans as if none of the objects existed and says so.
 */
export async function chooseKubeTarget(
  settings: Settings,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir?: string,
): Promise<KubeTargetChoice> {
  const specs = targetSpecs(settings);
  // --kube-out wins: its own target (kube-out-target.ts) refuses sensitive files.
  if (settings.kubeOut) return { target: undefined };
  if (specs.length === 0) return { target: undefined };
  try {
    // Loaded only for an API target: the HTTP client (node:http, node:https and TLS) is not needed
    // by runs that write a volume or manifests only.
    const { KubeTarget } = await import('./index.js');
    const target = await KubeTarget.open({
      kubeconfig: settings.kube.kubeconfig,
      context: settings.kube.context,
      env,
      serviceAccountDir,
      namespace: settings.namespace,
      instance: settings.kube.instance,
      targets: specs,
      prune: settings.kube.prune,
      forceConflicts: settings.kube.forceConflicts,
      deadlineSeconds: settings.kube.deadlineSeconds,
      log,
    });
    log.info('API target', { server: target.origin, namespace: target.namespace });
    return { target };
  } catch (err) {
    if (err instanceof ConfigError && settings.dryRun === 'client') {
      return { target: undefined, warning: `${err.message}; the dry run plans as if none of the ${specs.length} API object(s) existed` };
    }
    throw err;
  }
}

export const kubeTargetFactory: TargetFactory = {
  id: 'kube',
  async open(settings: Settings, log: Logger, warnings: string[]): Promise<Target | undefined> {
    const choice = await chooseKubeTarget(settings, log);
    if ('warning' in choice && choice.warning) warnings.push(choice.warning);
    return choice.target as Target | undefined;
  },
};
