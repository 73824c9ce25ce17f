/**
 * The CoCo target's two kinds of write as API requests (see index.ts for the order and ownership rules):
 * the RVPS reference values as a merge patch under a resourceVersion precondition, and INITDATA as a
 * server-side apply of one key (peer-pods-cm) or a template-annotation patch (Deployments).
 */
import type { InitdataConfig } from '../../config/initdata.js';
import type { RotationDecision } from '../../plan/initdata.js';
import type { InitdataOutput } from '../../process/initdata/index.js';
import type { RequestSpec } from '../kube/http.js';
import { MANAGER } from '../manifest.js';
import type { CocoOptions } from './index.js';
import { cmPath, deploymentPath, INITDATA_ID_ANNOTATION, readRvps, ROTATION_ANNOTATION, type CocoLive } from './observe.js';
import { spliceReferenceValues } from './rvps-json.js';

export interface Write {
  ref: string;
  what: string;
  spec: RequestSpec;
  retryOnConflict?: boolean;
}

export function rvpsRequest(config: InitdataConfig, decision: RotationDecision, live: CocoLive['rvps']): Write {
  const rv = config.referenceValues;
  const text = spliceReferenceValues(live.list, decision.rvps!.set);
  // Checked before it is sent: our edit must leave a list RVPS can read, with foreign entries intact.
  readRvps({ data: { [rv.key]: text } }, config);
  return {
    ref: `ConfigMap/${rv.namespace}/${rv.name}`,
    what: `update ConfigMap ${rv.namespace}/${rv.name}`,
    spec: {
      method: 'PATCH',
      path: cmPath(rv.namespace, rv.name),
      query: { fieldManager: MANAGER },
      contentType: 'application/merge-patch+json',
      body: JSON.stringify({
        metadata: { resourceVersion: live.resourceVersion, annotations: { [ROTATION_ANNOTATION]: JSON.stringify(decision.rvps!.state) } },
        data: { [rv.key]: text },
      }),
    },
    retryOnConflict: true,
  };
}

export function initdataRequest(options: Pick<CocoOptions, 'config' | 'forceConflicts'>, ref: string, initdata: InitdataOutput): Write {
  const c = options.config;
  const [kind, namespace, name] = ref.split('/') as [string, string, string];
  if (kind === 'ConfigMap') {
    const p = c.peerPodsConfigMap!;
    return {
      ref,
      what: `set ${p.key} of ConfigMap ${namespace}/${name}`,
      spec: {
        method: 'PATCH',
        path: cmPath(namespace, name),
        query: { fieldManager: MANAGER, force: String(options.forceConflicts) },
        contentType: 'application/apply-patch+yaml',
        body: JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name, namespace, annotations: { [INITDATA_ID_ANNOTATION]: initdata.id } },
          data: { [p.key]: initdata.encoded },
        }),
      },
    };
  }
  const annotations: Record<string, string> = { [INITDATA_ID_ANNOTATION]: initdata.id };
  for (const k of c.annotations) annotations[k] = initdata.encoded;
  return {
    ref,
    what: `annotate Deployment ${namespace}/${name}`,
    spec: {
      method: 'PATCH',
      path: deploymentPath(namespace, name),
      query: { fieldManager: MANAGER },
      contentType: 'application/merge-patch+json',
      body: JSON.stringify({ spec: { template: { metadata: { annotations } } } }),
    },
  };
}
