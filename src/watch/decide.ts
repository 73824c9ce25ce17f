/**
 * The sidecar's decisions, as pure functions of its state: when a burst of changes has settled
 * (debounce), whether the content seen now needs a reload, and whether the consumer already has it
 * when the sidecar starts.
 */

import type { StartMode } from './options.js';

/** What made the sidecar look: its own start, a file event, or the content-hash poll. */
export type Trigger = 'start' | 'fs-event' | 'poll';

export interface DebounceState {
  /** When the first change of the current burst was seen (ms); undefined when nothing is pending. */
  firstChangeAt?: number;
  /** When the latest change of the burst was seen (ms). */
  lastChangeAt?: number;
  /** What noticed the burst first; reported with the reload. */
  trigger?: Trigger;
}

/** A change noticed by any trigger: a file event and a poll that found new content count alike. */
export function noteChange(state: DebounceState, now: number, trigger: Trigger = 'fs-event'): DebounceState {
  return { firstChangeAt: state.firstChangeAt ?? now, lastChangeAt: now, trigger: state.trigger ?? trigger };
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
export function afterAttempt(state: ReloadState, hash: string, outcome: 'reloaded' | 'validation-failed' | 'action-failed' | 'consumer-current'): ReloadState {
  if (outcome === 'reloaded' || outcome === 'consumer-current') return { applied: hash };
  if (outcome === 'validation-failed') return { ...state, rejected: hash };
  return state;
}

/**
 * How much later than the swap a consumer must have started to count as having read the new content.
 * The start-time estimate is already a lower bound (boot time is truncated to whole seconds); the
 * margin covers a filesystem's coarse ctime clock (a few ms behind) and programs that read their
 * config before forking the process whose PID we see (nginx with `daemon on`).
 */
export const START_MARGIN_MS = 1000;

export interface StartFacts {
  mode: StartMode;
  /** When the content on disk now became current (ms since the epoch); undefined when unknown. */
  contentTimeMs?: number;
  /**
   * Earliest possible start of each consumer process (ms since the epoch). Undefined when there is no
   * process to look at (--exec, --http) or it cannot be found or read (not running, other namespace).
   */
  consumerStartsMs?: number[];
}

export interface StartDecision {
  reload: boolean;
  /** For the log: why. */
  reason:
    | 'on-start always'
    | 'on-start never'
    | 'content time unknown'
    | 'consumer start unknown'
    | 'consumer started before the content'
    | 'consumer started after the content';
}

/**
 * Whether to reload when the sidecar (re)starts. A sidecar restarted while the ConfigMap changed must
 * not leave the consumer on the old content, so anything not proven current is reloaded; only a
 * consumer that started after the current content was swapped in (a freshly started pod) is spared.
 */
export function decideAtStart(f: StartFacts): StartDecision {
  if (f.mode === 'always') return { reload: true, reason: 'on-start always' };
  if (f.mode === 'never') return { reload: false, reason: 'on-start never' };
  if (f.contentTimeMs === undefined || !Number.isFinite(f.contentTimeMs)) return { reload: true, reason: 'content time unknown' };
  const starts = f.consumerStartsMs ?? [];
  if (starts.length === 0 || starts.some((s) => !Number.isFinite(s))) return { reload: true, reason: 'consumer start unknown' };
  const current = starts.every((s) => s >= f.contentTimeMs! + START_MARGIN_MS);
  return current ? { reload: false, reason: 'consumer started after the content' } : { reload: true, reason: 'consumer started before the content' };
}
