/** Times as text for messages and reports. */
export const DAY_MS = 24 * 60 * 60 * 1000;

/** `2027-03-01 (in 92 days)` / `(3 days ago)` — for text output. */
export function describeTime(iso: string, now: Date): string {
  const ms = Date.parse(iso) - now.getTime();
  const days = Math.floor(Math.abs(ms) / DAY_MS);
  const rel = days === 0 ? (ms >= 0 ? 'within a day' : 'less than a day ago') : ms >= 0 ? `in ${days} day(s)` : `${days} day(s) ago`;
  return `${iso.slice(0, 10)} (${rel})`;
}

/** Age as text: `3 h 12 min`, `5 days 2 h`. */
export function describeAge(fromIso: string, now: Date): string {
  const minutes = Math.max(0, Math.floor((now.getTime() - Date.parse(fromIso)) / 60000));
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `${days} day(s) ${hours} h`;
  return hours > 0 ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
}
