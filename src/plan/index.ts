/**
 * Plan stage: desired outputs + what is there now → what to change. Pure: no I/O, so every decision
 * about "does this run write anything" is unit-testable.
 */
import type { DesiredOutputs } from '../process/types.js';

export interface CurrentState {
  /** Files of the volume's current generation: path → sha256. Undefined when there is no volume target. */
  volume?: Map<string, string>;
  /** ConfigMaps as they exist now: name → content hash (undefined hash = exists but not ours/unreadable). */
  configMaps: Map<string, string | undefined>;
}

export interface VolumePlan {
  changed: boolean;
  added: string[];
  modified: string[];
  removed: string[];
  unchanged: number;
  /** Bytes the new generation must write (added + modified). */
  bytesToWrite: number;
  files: number;
}

export type ConfigMapAction = 'create' | 'update' | 'unchanged';

export interface ConfigMapPlan {
  /** Secret for a target with a sensitive file. */
  kind: 'ConfigMap' | 'Secret';
  name: string;
  action: ConfigMapAction;
  keys: string[];
  bytes: number;
}

export interface Plan {
  volume?: VolumePlan;
  configMaps: ConfigMapPlan[];
  /** True when publishing would write anything. */
  changes: boolean;
}

export function makePlan(desired: DesiredOutputs, current: CurrentState): Plan {
  let volume: VolumePlan | undefined;
  if (current.volume) {
    const now = current.volume;
    const want = new Map(desired.volumeFiles.map((f) => [f.path, f]));
    const added: string[] = [];
    const modified: string[] = [];
    let unchanged = 0;
    let bytesToWrite = 0;
    for (const f of desired.volumeFiles) {
      const had = now.get(f.path);
      if (had === undefined) added.push(f.path);
      else if (had !== f.sha256) modified.push(f.path);
      else {
        unchanged++;
        continue;
      }
      bytesToWrite += f.size;
    }
    const removed = [...now.keys()].filter((p) => !want.has(p)).sort();
    volume = {
      changed: added.length + modified.length + removed.length > 0,
      added,
      modified,
      removed,
      unchanged,
      bytesToWrite,
      files: desired.volumeFiles.length,
    };
  }
  const configMaps: ConfigMapPlan[] = desired.configMaps.map((cm) => {
    const keys = [...Object.keys(cm.data), ...Object.keys(cm.binaryData)].sort();
    const live = current.configMaps;
    const action: ConfigMapAction = !live.has(cm.name) ? 'create' : live.get(cm.name) === cm.contentHash ? 'unchanged' : 'update';
    return { kind: cm.kind, name: cm.name, action, keys, bytes: cm.bytes };
  });
  const changes = (volume?.changed ?? false) || configMaps.some((c) => c.action !== 'unchanged');
  return { volume, configMaps, changes };
}
