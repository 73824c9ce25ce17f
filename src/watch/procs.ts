/**
 * Finding the process to signal. With `shareProcessNamespace: true` every container of the pod sees
 * the others in /proc; `--process-name nginx` picks nginx there without a PID file on a shared volume.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PublishError } from '../errors.js';
import type { SignalTarget } from './options.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** /proc/PID/comm: the kernel's name of the program (at most 15 bytes). */
  comm: string;
  /** Base name of argv[0]; may be rewritten by the program (nginx: "nginx: master process …"). */
  argv0: string;
}

/**
 * The processes to signal: those matching `name` whose parent does not match too. For nginx that is
 * the master only — workers ignore HUP, and a signal per worker would be noise in their logs.
 */
export function selectTargets(procs: ProcInfo[], name: string, selfPid: number): number[] {
  const matches = procs.filter((p) => p.pid !== selfPid && (p.comm === name || p.argv0 === name || (name.length > 15 && p.comm === name.slice(0, 15))));
  const matching = new Set(matches.map((p) => p.pid));
  return matches.filter((p) => !matching.has(p.ppid)).map((p) => p.pid).sort((a, b) => a - b);
}

/** /proc/PID/stat: "pid (comm) state ppid …"; comm may contain spaces and parentheses, so split at the last ')'. */
export function parseProcStat(text: string): { comm: string; ppid: number } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? { comm: text.slice(open + 1, close), ppid } : undefined;
}

export async function listProcesses(procRoot = '/proc'): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    // Processes come and go while we read; a vanished one is skipped, not an error.
    const stat = await readFile(path.join(procRoot, entry, 'stat'), 'utf8').catch(() => undefined);
    const parsed = stat ? parseProcStat(stat) : undefined;
    if (!parsed) continue;
    const cmdline = await readFile(path.join(procRoot, entry, 'cmdline')).catch(() => Buffer.alloc(0));
    const argv0 = cmdline.subarray(0, cmdline.indexOf(0) >= 0 ? cmdline.indexOf(0) : cmdline.length).toString('utf8');
    out.push({ pid: Number(entry), ppid: parsed.ppid, comm: parsed.comm, argv0: path.basename(argv0.split(' ')[0] ?? '') });
  }
  return out;
}

/** PIDs to signal now. A PID file is read each time, because the consumer may have restarted. */
export async function resolveTarget(target: SignalTarget): Promise<number[]> {
  if (target.kind === 'pid') return [target.pid];
  if (target.kind === 'pid-file') {
    const text = await readFile(target.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new PublishError(`cannot read PID file ${target.file}: ${err.code ?? err.message}`);
    });
    // The file lives on a shared volume; anything but one number is refused rather than guessed at.
    const m = /^\s*([1-9]\d{0,9})\s*$/.exec(text);
    if (!m) throw new PublishError(`PID file ${target.file} does not hold a process ID`);
    return [Number(m[1])];
  }
  const pids = selectTargets(await listProcesses(), target.name, process.pid);
  if (pids.length === 0) throw new PublishError(`no process named "${target.name}" is visible`, 'is shareProcessNamespace: true set on the pod?');
  return pids;
}
