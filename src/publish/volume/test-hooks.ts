/**
 * Fault injection that exists only for tests. The variables are read once at load and are named
 * ZP_TEST_* on purpose: the CLI rejects unknown ZETA_PROVISION_* variables, and nobody sets ZP_TEST_*
 * by accident in a CronJob.
 *
 * - ZP_TEST_CRASH_AT=<point>       SIGKILL ourselves at that point (no cleanup, no finally blocks run)
 * - ZP_TEST_PAUSE_AT=<point>:<ms>  sleep there (to hold the lock while another run starts)
 * - ZP_TEST_WRITE_ERROR=<CODE>     the first file copy fails with that errno code (e.g. ENOSPC)
 * - ZP_TEST_LOCK_TIMEOUT_MS=<ms>   how long `run` waits for the volume lock
 */
export const CRASH_POINTS = [
  'lock-acquired',
  'recovery-data-tmp-removed',
  'recovery-temp-removed',
  'recovery-generation-removed',
  'recovery-done',
  'state-read',
  'generation-dir-created',
  'first-file-linked',
  'first-file-copied',
  'first-file-synced',
  'files-written',
  'manifest-written',
  'dirs-synced',
  'toplevel-link-created',
  'toplevel-links-ready',
  'data-tmp-created',
  'data-swapped',
  'volume-synced',
  'status-tmp-written',
  'status-written',
  'stale-link-removed',
  'generation-removed',
  'gc-done',
  'done',
  'lock-released',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const env = process.env;
const crashAt = env.ZP_TEST_CRASH_AT;
const pause = /^([a-z-]+):(\d+)$/.exec(env.ZP_TEST_PAUSE_AT ?? '');
const writeError = env.ZP_TEST_WRITE_ERROR;
let writeErrorUsed = false;

export const testLockTimeoutMs: number | undefined = env.ZP_TEST_LOCK_TIMEOUT_MS ? Number(env.ZP_TEST_LOCK_TIMEOUT_MS) : undefined;

export function crashPoint(point: CrashPoint): void {
  if (crashAt === point) process.kill(process.pid, 'SIGKILL');
}

/** Async twin of crashPoint that can also pause. */
export async function checkpoint(point: CrashPoint): Promise<void> {
  crashPoint(point);
  if (pause && pause[1] === point) await new Promise((r) => setTimeout(r, Number(pause[2])));
}

/** Throws the injected write error once, as the kernel would on a full disk. */
export function injectedWriteError(file: string): void {
  if (!writeError || writeErrorUsed) return;
  writeErrorUsed = true;
  const err = new Error(`${writeError}: injected write error, copyfile -> '${file}'`) as NodeJS.ErrnoException;
  err.code = writeError;
  throw err;
}
