/** Volume publishing: see layout.ts for the on-disk scheme and publish.ts for the steps. */
import path from 'node:path';
import { currentGeneration } from './layout.js';
import { readGenerationState } from './state.js';

export { DATA_LINK, LOCK_NAME, STATUS_NAME, GENERATION_PATTERN, currentGeneration, newGenerationName, validateVolumePaths } from './layout.js';
export { acquireVolumeLock, type LockInfo, type LockOptions, type VolumeLock } from './lock.js';
export { publishVolume, type VolumePublishOptions, type VolumePublishResult } from './publish.js';
export { rollbackVolume, volumeStatus, renderVolumeStatus, type RollbackResult, type VolumeStatus } from './rollback.js';
export { readVolumeRecord, currentApplied, type VolumeDetail, type VolumeRecord } from './record.js';
export type { VolumeFsOps } from './generation.js';

/** Files of the current generation (path → sha256), or an empty map for a new volume. */
export async function readVolumeState(volumeDir: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  const generation = await currentGeneration(volumeDir);
  if (!generation) return state;
  for (const [p, s] of await readGenerationState(path.join(volumeDir, generation))) state.set(p, s.sha256);
  return state;
}
