/**
 * Opens the CoCo initdata target from the run's settings: the API (one connection, the run's
 * deadline) or, with --kube-out, the manifests directory. Registered in src/publish/targets.ts.
 */
import type { Settings } from '../../config/index.js';
import { ConfigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { loadConnection } from '../kube/connection.js';
import type { TargetFactory } from '../target.js';
import type { CocoInitdataTarget } from './index.js';
import type { CocoKubeOutTarget } from './kube-out.js';

export const COCO_TARGET_ID = 'coco-initdata';

export async function openCocoTarget(
  settings: Settings,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir?: string,
): Promise<CocoInitdataTarget | CocoKubeOutTarget | undefined> {
  const config = settings.config.initdata;
  if (!config) return undefined;
  // Loaded only with `initdata:` in the config: the hourly run of every other setup never pays for
  // the TOML renderer, the rotation planner and the RVPS editor.
  if (settings.kubeOut) return new (await import('./kube-out.js')).CocoKubeOutTarget(settings.kubeOut, config);
  const [{ CocoInitdataTarget }, { KubeHttp }] = await Promise.all([import('./index.js'), import('../kube/http.js')]);
  const connection = await loadConnection({ kubeconfig: settings.kube.kubeconfig, context: settings.kube.context, env, serviceAccountDir });
  const http = new KubeHttp(connection, {
    deadline: Date.now() + settings.kube.deadlineSeconds * 1000,
    onSecret: (s) => log.redactor.add(s),
    onRetry: (r) => log.warn('API request failed, retrying', { method: r.method, path: r.path, attempt: r.attempt + 1, delayMs: r.delayMs, error: r.why }),
  });
  const recordObject = { namespace: settings.namespace ?? connection.namespace ?? 'default', name: `${settings.kube.instance}-initdata` };
  return new CocoInitdataTarget(http, { config, recordObject, forceConflicts: settings.kube.forceConflicts, log });
}

/** Registration for src/publish/targets.ts (FACTORIES), after the API target. */
export const cocoTargetFactory: TargetFactory = {
  id: COCO_TARGET_ID,
  open: async (settings, log, warnings) => {
    try {
      return await openCocoTarget(settings, log);
    } catch (err) {
      // A client dry run without a cluster still shows the rendered initdata and its values.
      if (err instanceof ConfigError && settings.dryRun === 'client') {
        warnings.push(`${err.message}; the dry run shows the initdata without comparing it with the cluster`);
        return undefined;
      }
      throw err;
    }
  },
};
