/**
 * Exponential backoff with "equal jitter": the step doubles from `baseMs` per attempt (attempt 0 waits
 * about baseMs) up to `capMs`; half of it is fixed, half random, so a fleet of CronJobs retrying the same
 * recovering server spreads out instead of hammering it in lockstep. Shared by the registry transport
 * and the Kubernetes API client.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: number = Math.random()): number {
  const step = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(step / 2 + (step / 2) * random);
}
