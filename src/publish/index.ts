/**
 * Publish stage: the plan's writes, in the order DESIGN.md fixes — volume, then ConfigMaps, then the
 * status records. A failure later leaves earlier steps whole; the next run converges.
 */
import type { CurrentState, Plan } from '../plan/index.js';
import type { DesiredOutputs } from '../process/types.js';
import type { KubePublishReport, KubeTarget } from './kube/index.js';
import { readKubeOutState, writeKubeOut } from './kube-out.js';
import type { ProvenanceMeta } from './manifest.js';
import { isUpToDate, readStatus, writeStatus, type StatusRecord } from './status.js';
import { publishVolume, readVolumeState, type VolumePublishOptions, type VolumePublishResult } from './volume/index.js';

export { isUpToDate } from './status.js';
export type { StatusRecord } from './status.js';

export interface Targets {
  volumeDir?: string;
  kubeOut?: string;
  /** The API target (ConfigMaps/Secrets through the Kubernetes API) when --kube-out is not given. */
  kube?: KubeTarget;
  /** Modes, group and kept generations of the volume (config `volume:`). */
  volume?: Pick<VolumePublishOptions, 'fileMode' | 'dirMode' | 'gid' | 'keepGenerations' | 'lock'>;
}

export async function readCurrentState(targets: Targets): Promise<CurrentState> {
  return {
    volume: targets.volumeDir ? await readVolumeState(targets.volumeDir) : undefined,
    configMaps: targets.kubeOut ? await readKubeOutState(targets.kubeOut) : targets.kube ? await targets.kube.currentHashes() : new Map(),
  };
}

export async function readLastApplied(targets: Targets): Promise<(StatusRecord | undefined)[]> {
  const records: (StatusRecord | undefined)[] = [];
  if (targets.volumeDir) records.push(await readStatus('volume', targets.volumeDir));
  if (targets.kubeOut) records.push(await readStatus('kube-out', targets.kubeOut));
  if (targets.kube) records.push(await targets.kube.lastApplied());
  return records;
}

export interface PublishResult {
  volume?: VolumePublishResult;
  configMapsWritten: string[];
  statusWritten: boolean;
  kube?: KubePublishReport;
}

export async function publish(
  plan: Plan,
  desired: DesiredOutputs,
  targets: Targets,
  meta: ProvenanceMeta & { configHash: string; provenTime?: string; provenBasis?: string; earliestCertificateExpiry?: string; tslNextUpdate?: string },
): Promise<PublishResult> {
  const result: PublishResult = { configMapsWritten: [], statusWritten: false };
  if (targets.volumeDir && plan.volume && (plan.volume.changed || desired.volumeFiles.length > 0)) {
    // Called even when the plan sees no change: it takes the lock, recovers what a killed run left,
    // and writes the volume's own status record; with identical content it writes nothing at all.
    const { configHash, source, digest, revision, provenTime, provenBasis, earliestCertificateExpiry, tslNextUpdate } = meta;
    const proven = provenTime ? { provenTime, provenBasis } : {};
    const fresh = { ...(earliestCertificateExpiry ? { earliestCertificateExpiry } : {}), ...(tslNextUpdate ? { tslNextUpdate } : {}) };
    const r = await publishVolume(targets.volumeDir, desired.volumeFiles, { ...targets.volume, meta: { source, digest, revision, configHash, ...proven, ...fresh } });
    if (r.changed) result.volume = r;
    result.statusWritten ||= r.recordWritten;
  }
  if (targets.kubeOut) {
    const changed = new Set(plan.configMaps.filter((c) => c.action !== 'unchanged').map((c) => c.name));
    result.configMapsWritten = await writeKubeOut(targets.kubeOut, desired.configMaps.filter((cm) => changed.has(cm.name)), meta);
  }
  if (targets.kube) {
    // Writes its own status record (the zeta-provision-status ConfigMap) and Events.
    result.kube = await targets.kube.publish(desired.configMaps, meta, { dryRun: false });
    result.configMapsWritten.push(...result.kube.applied.map((a) => a.name));
    result.statusWritten ||= result.kube.statusWritten;
  }
  const record: StatusRecord = {
    version: 1,
    source: meta.source,
    digest: meta.digest,
    configHash: meta.configHash,
    revision: meta.revision,
    ...(meta.provenTime ? { provenTime: meta.provenTime, provenBasis: meta.provenBasis } : {}),
    appliedAt: new Date().toISOString(),
    ...(meta.earliestCertificateExpiry ? { earliestCertificateExpiry: meta.earliestCertificateExpiry } : {}),
    ...(meta.tslNextUpdate ? { tslNextUpdate: meta.tslNextUpdate } : {}),
  };
  // A record is rewritten only when something was written or it describes another payload/config,
  // so a run with identical inputs leaves every byte on disk as it was. (The volume's record is
  // written by publishVolume itself, under its lock, right after the swap.)
  if (targets.kubeOut) {
    const previous = await readStatus('kube-out', targets.kubeOut);
    if (result.configMapsWritten.length > 0 || !isUpToDate([previous], meta.digest, meta.configHash)) {
      await writeStatus('kube-out', targets.kubeOut, record);
      result.statusWritten = true;
    }
  }
  return result;
}
