/**
 * Whose is a lock or a staging directory? Both are marked with `{pid, host, token}`: the token tells
 * this process's own live markers from those an earlier process with a reused pid left behind.
 */
import os from 'node:os';

export interface OwnerMark {
  pid: number;
  host: string;
  token: string;
}

/**
 * True when the owner provably no longer runs: on this host, and either this process without that
 * token among `liveTokens` or a pid that does not exist. Another host's owner cannot be probed: false.
 */
export function ownerGone(owner: OwnerMark, liveTokens: ReadonlySet<string>): boolean {
  if (owner.host !== os.hostname()) return false;
  if (owner.pid === process.pid) return !liveTokens.has(owner.token);
  return !pidAlive(owner.pid);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user, so it is alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
