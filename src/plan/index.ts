/**
 * Plan stage: desired outputs + what is there now → what to change. Pure: no I/O, so every decision
 * about "does this run write anything" is unit-testable.
 */
import type { DesiredOutputs, VolumeFile } from '../process/types.js';
import type { DriftItem, TargetPlan } from '../publish/target.js';

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
  /** True when publishing would write anything (including drift repairs and pending rollouts). */
  changes: boolean;
  /** Each target's plan in apply order, as the report shows it (the targets' own details stay out: they hold Secret data). */
  targets?: { target: string; changes: boolean; actions: string[] }[];
  /** Live state that differs from what was applied, repaired by this run. */
  drift?: DriftItem[];
  /** Consumers that would be rolled out. */
  rollouts?: string[];
}

/**
 * The run's plan from the targets' plans: the report's volume and ConfigMap views, the drift, the
 * rollouts, and whether anything at all would be written.
 */
export function combinePlans(desired: DesiredOutputs, parts: TargetPlan[], volume?: VolumePlan): Plan {
  const objectAction = new Map<string, ConfigMapAction>();
  for (const p of parts) for (const o of p.objects ?? []) if (objectAction.get(o.name) !== 'create') objectAction.set(o.name, o.action);
  const configMaps: ConfigMapPlan[] = desired.configMaps.map((cm) => ({
    kind: cm.kind,
    name: cm.name,
    action: objectAction.get(cm.name) ?? 'unchanged',
    keys: [...Object.keys(cm.data), ...Object.keys(cm.binaryData)].sort(),
    bytes: cm.bytes,
  }));
  const drift = parts.flatMap((p) => p.drift);
  const rollouts = parts.flatMap((p) => p.actions.filter((a) => a.startsWith('rollout ')).map((a) => a.slice('rollout '.length)));
  const targets = parts.map((p) => ({ target: p.target, changes: p.changes, actions: p.actions }));
  return { volume, configMaps, changes: parts.some((p) => p.changes), targets, drift, rollouts };
}

/** Desired volume files vs the current generation's (path → sha256; undefined = present, hash unknown). */
export function planVolume(files: VolumeFile[], now: Map<string, string | undefined>): VolumePlan {
  const want = new Set(files.map((f) => f.path));
  const added: string[] = [];
  const modified: string[] = [];
  let unchanged = 0;
  let bytesToWrite = 0;
  for (const f of files) {
    if (!now.has(f.path)) added.push(f.path);
    else if (now.get(f.path) !== f.sha256) modified.push(f.path);
    else {
      unchanged++;
      continue;
    }
    bytesToWrite += f.size;
  }
  const removed = [...now.keys()].filter((p) => !want.has(p)).sort();
  return { changed: added.length + modified.length + removed.length > 0, added, modified, removed, unchanged, bytesToWrite, files: files.length };
}

export function makePlan(desired: DesiredOutputs, current: CurrentState): Plan {
  const volume = current.volume ? planVolume(desired.volumeFiles, current.volume) : undefined;
  const configMaps: ConfigMapPlan[] = desired.configMaps.map((cm) => {
    const keys = [...Object.keys(cm.data), ...Object.keys(cm.binaryData)].sort();
    const live = current.configMaps;
    const action: ConfigMapAction = !live.has(cm.name) ? 'create' : live.get(cm.name) === cm.contentHash ? 'unchanged' : 'update';
    return { kind: cm.kind, name: cm.name, action, keys, bytes: cm.bytes };
  });
  const changes = (volume?.changed ?? false) || configMaps.some((c) => c.action !== 'unchanged');
  return { volume, configMaps, changes };
}
