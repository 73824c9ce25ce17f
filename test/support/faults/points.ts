/**
 * Crash points of `zeta-provision run` publishing to a volume and a --kube-out directory, as syscalls
 * seen from outside (faults/preload.mjs kills the process there), in the order a run reaches them.
 * Before `data-swapped` a reader sees the old tree, from it on the new one.
 */
export interface CrashSpec {
  op: string;
  match: string;
  when?: 'before' | 'after';
  nth?: number;
}

const GEN = String.raw`/\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]{8}`;

export const CRASH_POINTS = {
  'staging-created': { op: 'writeFile', match: String.raw`/zeta-provision-[^/]+/\.zeta-provision-owner$` },
  'lock-acquired': { op: 'close', match: String.raw`/\.\.zeta-provision\.lock$` },
  'recovery-data-tmp-removed': { op: 'rm', match: String.raw`/\.\.data_tmp$` },
  'recovery-temp-removed': { op: 'rm', match: String.raw`/\.\.\.zeta-provision\.json\.[0-9a-f]{8}\.tmp$` },
  'recovery-generation-removed': { op: 'rmdir', match: `${GEN}$` },
  'generation-dir-created': { op: 'mkdir', match: `${GEN}$` },
  'first-file-linked': { op: 'linkSync', match: `${GEN}/keycloak-data/` },
  'first-file-copied': { op: 'copyFile', match: `${GEN}/` },
  'first-file-synced': { op: 'sync', match: `${GEN}/nginx/` },
  'manifest-written': { op: 'writeFile', match: `${GEN}/\\.\\.zeta-manifest/` },
  'outputs-written': { op: 'writeFile', match: `${GEN}/\\.\\.zeta-outputs\\.json$` },
  'generation-synced': { op: 'sync', match: `${GEN}$` },
  'toplevel-link-created': { op: 'symlink', match: String.raw`/volume/nginx$` },
  'data-tmp-created': { op: 'symlink', match: String.raw`/\.\.data_tmp$` },
  'data-swapped': { op: 'rename', match: String.raw`/\.\.data$` },
  'volume-synced': { op: 'sync', match: String.raw`/volume$` },
  'status-tmp-written': { op: 'close', match: String.raw`/\.\.\.zeta-provision\.json\.[0-9a-f]{8}\.tmp$` },
  'status-written': { op: 'rename', match: String.raw`/volume/\.\.zeta-provision\.json$` },
  'stale-link-removed': { op: 'rm', match: String.raw`/volume/opa$` },
  'generation-removed': { op: 'rmdir', match: `${GEN}$` },
  'lock-released': { op: 'rm', match: String.raw`/\.\.zeta-provision\.lock$` },
  'manifests-record-written': { op: 'rename', match: String.raw`/manifests/\.zeta-provision\.json$` },
  'volume-record-completed': { op: 'rename', match: String.raw`/volume/\.\.zeta-provision\.json$`, nth: 2 },
} satisfies Record<string, CrashSpec>;

export type CrashPoint = keyof typeof CRASH_POINTS;
export const CRASH_POINT_NAMES = Object.keys(CRASH_POINTS) as CrashPoint[];
