/**
 * Finding the process to signal. With `shareProcessNamespace: true` every container of the pod sees
 * the others in /proc; `--process-name nginx` picks nginx there without a PID file on a shared volume.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
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
  return matches
    .filter((p) => !matching.has(p.ppid))
    .map((p) => p.pid)
    .sort((a, b) => a - b);
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

/** Who a PID file belongs to, for messages: "nginx" for …/nginx.pid, else "the consumer". */
export function pidFileOwner(file: string): string {
  return /^([\w.-]+)\.pid$/.exec(path.basename(file))?.[1] ?? 'the consumer';
}

export interface Targets {
  pids: number[];
  /** Where the PIDs came from, for messages: "pid file /run/nginx.pid", "--pid", "process name \"nginx\"". */
  origin: string;
}

/**
 * The PID a PID file holds, or an error saying why there is none. `nginx -t` creates an empty PID file
 * when none exists, so an empty file usually means the consumer is not running, not that it is broken.
 */
export function parsePidFile(file: string, text: string): number {
  const who = `${pidFileOwner(file)} (pid file ${file})`;
  if (text.trim() === '') {
    throw new PublishError(
      `${who} is not running: the file is empty`,
      `start the consumer first; an empty file is what "nginx -t" leaves when no nginx runs. Is --pid-file the file the consumer writes (nginx: the pid directive)?`,
    );
  }
  // The file lives on a shared volume; anything but one number is refused rather than guessed at.
  // Its content is not quoted: --pid-file pointed at the wrong file must not copy that file into logs.
  const m = /^\s*([1-9]\d{0,9})\s*$/.exec(text);
  if (!m)
    throw new PublishError(
      `${who} does not hold a process ID (${Buffer.byteLength(text)} bytes, not one number)`,
      'point --pid-file at the file the consumer writes its PID to',
    );
  return Number(m[1]);
}

/**
 * How much later than its PID file's mtime a process must have started to be refused as a stranger.
 * Generous: the mtime may come from another clock (a file server's), and a PID is reused only after
 * the PID space wrapped, which takes far longer than this.
 */
const PID_REUSE_MARGIN_MS = 60_000;

/** PIDs to signal now. A PID file is read each time, because the consumer may have restarted. */
export async function resolveTarget(target: SignalTarget): Promise<Targets> {
  const targets = await findTargets(target);
  // A PID from another PID namespace can name this very sidecar (nginx as PID 1 of its own container):
  // signalling ourselves would end the sidecar, and its start time would pass for the consumer's.
  if (targets.pids.includes(process.pid)) {
    throw new PublishError(
      `process ${process.pid} from ${targets.origin} is this sidecar, not the consumer`,
      'the PID comes from another PID namespace: set shareProcessNamespace: true on the pod',
    );
  }
  return targets;
}

async function findTargets(target: SignalTarget): Promise<Targets> {
  if (target.kind === 'pid') return { pids: [target.pid], origin: '--pid' };
  if (target.kind === 'pid-file') {
    const origin = `pid file ${target.file}`;
    const text = await readFile(target.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new PublishError(
          `${pidFileOwner(target.file)} (${origin}) is not running: the file does not exist`,
          'start the consumer first, or point --pid-file at the file it writes (shared through a volume)',
        );
      }
      throw new PublishError(`cannot read ${origin}: ${err.code ?? err.message}`, 'the sidecar needs read access to the volume holding --pid-file');
    });
    const pid = parsePidFile(target.file, text);
    // A PID file outlives a killed consumer, and its number may since belong to another program: a
    // process that started after the file was written did not write it, and must not get the signal.
    const [written, started] = await Promise.all([
      stat(target.file).then(
        (s) => s.mtimeMs,
        () => undefined,
      ),
      processStartMs(pid),
    ]);
    if (written !== undefined && started !== undefined && started >= written + PID_REUSE_MARGIN_MS) {
      throw new PublishError(
        `process ${pid} from ${origin} is gone: PID ${pid} now belongs to a process started after the file was written`,
        'the consumer exited without removing its PID file (killed, or crashed); check the consumer container, it rewrites the file when it starts',
      );
    }
    return { pids: [pid], origin };
  }
  const pids = selectTargets(await listProcesses(), target.name, process.pid);
  if (pids.length === 0)
    throw new PublishError(
      `no process named "${target.name}" is visible`,
      'is shareProcessNamespace: true set on the pod, and is --process-name the program name?',
    );
  return { pids, origin: `process name "${target.name}"` };
}

/** Why a PID cannot be signalled, as an error an operator can act on. */
export function signalError(err: NodeJS.ErrnoException, pid: number, origin: string): PublishError {
  if (err.code === 'ESRCH') {
    const hint =
      origin === '--pid'
        ? 'the consumer exited or restarted under another PID; --pid-file or --process-name are read at each reload'
        : origin.startsWith('pid file')
          ? 'the consumer exited without removing its PID file (killed, or crashed); check the consumer container, it rewrites the file when it starts'
          : 'it exited while being signalled; the next change or poll tries again';
    return new PublishError(`process ${pid} from ${origin} is gone`, hint);
  }
  if (err.code === 'EPERM')
    return new PublishError(
      `not allowed to signal process ${pid} from ${origin}`,
      "run the sidecar with the consumer's UID (runAsUser): the restricted profile grants no CAP_KILL",
    );
  return new PublishError(`cannot signal process ${pid} from ${origin}: ${err.code ?? err.message}`);
}

/**
 * Linux reports process times in USER_HZ ticks, 100 on every architecture containers run on (only
 * alpha and ia64 differed); a test checks it against `getconf CLK_TCK`.
 */
export const USER_HZ = 100;

/** Field 22 of /proc/PID/stat: start time in ticks since boot. Fields counted after the last ')'. */
export function parseStartTicks(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const ticks = Number(text.slice(close + 2).split(' ')[19]);
  return Number.isSafeInteger(ticks) && ticks >= 0 ? ticks : undefined;
}

/** `btime` of /proc/stat: boot time in whole seconds since the epoch. */
export function parseBootTime(text: string): number | undefined {
  const m = /^btime (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * When a process started, in ms since the epoch, as a lower bound: btime is truncated to the second,
 * so the true start lies up to 1 s after this. Undefined when the process is not visible here.
 */
export async function processStartMs(pid: number, procRoot = '/proc'): Promise<number | undefined> {
  const [stat, bootStat] = await Promise.all([
    readFile(path.join(procRoot, String(pid), 'stat'), 'utf8').catch(() => undefined),
    readFile(path.join(procRoot, 'stat'), 'utf8').catch(() => undefined),
  ]);
  const ticks = stat ? parseStartTicks(stat) : undefined;
  const boot = bootStat ? parseBootTime(bootStat) : undefined;
  if (ticks === undefined || boot === undefined) return undefined;
  return boot * 1000 + Math.floor((ticks * 1000) / USER_HZ);
}
