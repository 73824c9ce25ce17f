/**
 * When to try an API request again, as a pure function: 429 after the server's Retry-After, 5xx,
 * connection resets and timeouts after an exponential backoff with jitter — and never past the run's
 * deadline or the attempt cap. Everything else (4xx) is an answer, not an outage.
 */
import { backoffMs } from '../../util/backoff.js';

export interface RetryPolicy {
  /** First backoff step in ms; doubles per attempt. */
  baseMs: number;
  /** Longest single wait in ms (also caps a server's Retry-After). */
  capMs: number;
  maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 200, capMs: 5_000, maxAttempts: 8 };

export type Failure = { kind: 'status'; status: number; retryAfterSeconds?: number } | { kind: 'transport' };

export function isRetryable(f: Failure): boolean {
  return f.kind === 'transport' || f.status === 429 || f.status === 500 || f.status === 502 || f.status === 503 || f.status === 504;
}

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 0), or undefined to give
 * up. `random` in [0, 1) spreads clients apart ("equal jitter": half fixed, half random), so a
 * fleet of CronJobs does not hammer a recovering API server in lockstep.
 */
export function retryDelay(f: Failure, attempt: number, remainingMs: number, random: number, policy: RetryPolicy = DEFAULT_RETRY): number | undefined {
  if (!isRetryable(f) || attempt + 1 >= policy.maxAttempts) return undefined;
  let delay = backoffMs(attempt, policy.baseMs, policy.capMs, random);
  if (f.kind === 'status' && f.status === 429 && f.retryAfterSeconds !== undefined && f.retryAfterSeconds >= 0) {
    delay = Math.min(policy.capMs, Math.max(delay, f.retryAfterSeconds * 1000));
  }
  return delay < remainingMs ? delay : undefined;
}

/** `Retry-After` as seconds (delta form only; the API server never sends a date). */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && /^\d{1,6}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}
