// Shared by the benchmarks: one process under GNU time, and the median of a series.
import { spawnSync } from 'node:child_process';

/**
 * Runs `cmd args` under /usr/bin/time; wall ms (measured here), peak RSS KiB and CPU ms (user + sys,
 * GNU time's 10 ms resolution) of the command, its status and output. Throws unless `check(result)`.
 */
export function timed(cmd, args, { check = (r) => r.status === 0, ...opts } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!check(r)) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout ?? ''}${r.stderr}`);
  // GNU time writes its line last, after whatever the command wrote to stderr.
  const [rssKiB, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { ms, rssKiB, cpuMs: (user + sys) * 1000, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
