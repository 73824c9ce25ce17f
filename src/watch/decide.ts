/**
 * The sidecar's decisions, as pure functions of its state: when a burst of changes has settled
 * (debounce), and whether the content seen now needs a reload.
 */

export interface DebounceState {
  /** When the first change of the current burst was seen (ms); undefined when nothing is pending. */
  firstChangeAt?: number;
  /** When the latest change of the burst was seen (ms). */
  lastChangeAt?: number;
}

export function noteChange(state: DebounceState, now: number): DebounceState {
  return { firstChangeAt: state.firstChangeAt ?? now, lastChangeAt: now };
}

/**
 * Milliseconds until the pending burst is due (0 = due now), or undefined when nothing is pending.
 * Due after `quietMs` without a new change, but never later than `maxDelayMs` after the burst began,
 * so a directory that keeps changing still gets its reload.
 */
export function dueIn(state: DebounceState, now: number, quietMs: number, maxDelayMs: number): number | undefined {
  if (state.firstChangeAt === undefined || state.lastChangeAt === undefined) return undefined;
  const quietAt = state.lastChangeAt + quietMs;
  const latestAt = state.firstChangeAt + maxDelayMs;
  return Math.max(0, Math.min(quietAt, latestAt) - now);
}

export interface ReloadState {
  /** Content hash the consumer was last (successfully) reloaded with, or started with. */
  applied?: string;
  /** Content hash whose validation failed: not retried until the content changes again. */
  rejected?: string;
}

export type ReloadDecision = 'unchanged' | 'rejected-before' | 'reload';

export function decideReload(state: ReloadState, current: string): ReloadDecision {
  if (current === state.applied) return 'unchanged';
  // A broken config stays broken: re-running `nginx -t` on it every poll would only repeat the error.
  if (current === state.rejected) return 'rejected-before';
  return 'reload';
}

/** State after an attempt: validation failures are remembered; action failures are retried next time. */
export function afterAttempt(state: ReloadState, hash: string, outcome: 'reloaded' | 'validation-failed' | 'action-failed'): ReloadState {
  if (outcome === 'reloaded') return { applied: hash };
  if (outcome === 'validation-failed') return { ...state, rejected: hash };
  return state;
}
