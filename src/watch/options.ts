/**
 * `zeta-provision watch` options: raw command-line values → a checked WatchOptions. Pure, so every
 * refusal (two actions, a signal without a target, a malformed URL) is unit-tested without processes.
 */
import { constants } from 'node:os';
import { UsageError } from '../errors.js';
import { envNameOfFlag, parseBoolean, refuseUnknownEnv } from '../config/env.js';

/** Where a signal goes. Resolved at reload time: nginx may have restarted and have a new PID. */
export type SignalTarget = { kind: 'pid'; pid: number } | { kind: 'pid-file'; file: string } | { kind: 'process-name'; name: string };

export type WatchAction =
  | { kind: 'signal'; signal: NodeJS.Signals; target: SignalTarget }
  | { kind: 'exec'; command: string }
  | { kind: 'http'; method: string; url: URL; bodyFile?: string };

/**
 * `--on-start`: `always` validates and acts at start (OPA starts without a policy); `never` takes what
 * is on disk as applied (the old behaviour, for consumers that must not be touched at start); `auto`
 * (the default) acts unless the consumer provably has the current content (decideAtStart).
 */
export type StartMode = 'auto' | 'always' | 'never';

export interface WatchOptions {
  dir: string;
  /** Shell command that must exit 0 before the action runs (e.g. `nginx -t -c /etc/nginx/nginx.conf`). */
  validate?: string;
  action: WatchAction;
  /** Quiet time after the last change before reloading: kubelet and the publisher touch several names per swap. */
  debounceMs: number;
  /** Maximum wait while changes keep arriving, so a flapping directory still gets reloaded. */
  maxDelayMs: number;
  /** Poll interval for the content-hash fallback (fs events are not delivered on NFS and some CSI drivers). */
  pollMs: number;
  /**
   * Whether to validate and act at start: `always` (OPA starts without the policy and needs the first
   * PUT), `never` (what is on disk counts as applied), or `auto`: unless the consumer provably started
   * after the current content (decideAtStart), so a sidecar restarted across a change misses nothing.
   */
  onStart: StartMode;
}

export interface RawWatchOptions {
  dir?: string;
  validate?: string;
  signal?: string;
  pid?: string;
  pidFile?: string;
  processName?: string;
  exec?: string;
  http?: string[];
  bodyFile?: string;
  debounceMs?: string;
  pollSeconds?: string;
  /** true from a bare --on-start; auto | always | never (or a boolean word) from --on-start=WHEN or the env. */
  onStart?: boolean | string;
}

export const WATCH_DEFAULTS = { debounceMs: 1000, pollSeconds: 30 } as const;

/** Everything `watch` reads from its command line (log settings included). */
export interface RawWatchCommand extends RawWatchOptions {
  logFormat?: string;
  debug?: boolean;
}

/** Each flag's env twin, ZETA_PROVISION_<FLAG> as for `run` (e.g. --process-name → ZETA_PROVISION_PROCESS_NAME). */
export const WATCH_FLAGS: Record<keyof RawWatchCommand, string> = {
  dir: '--dir',
  validate: '--validate',
  signal: '--signal',
  pid: '--pid',
  pidFile: '--pid-file',
  processName: '--process-name',
  exec: '--exec',
  http: '--http',
  bodyFile: '--body-file',
  debounceMs: '--debounce-ms',
  pollSeconds: '--poll-seconds',
  onStart: '--on-start',
  logFormat: '--log-format',
  debug: '--debug',
};

/**
 * Flags from the environment; the command line wins key by key. `--http` takes "METHOD URL" as one
 * value. An unknown ZETA_PROVISION_* variable is refused, as for `run`: a misspelt setting must not
 * be silently ignored.
 */
export function watchCommandFromEnv(env: NodeJS.ProcessEnv): RawWatchCommand {
  const out: Record<string, unknown> = {};
  const accepted = new Set<string>();
  for (const [key, flag] of Object.entries(WATCH_FLAGS)) {
    const name = envNameOfFlag(flag);
    accepted.add(name);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (key === 'debug') out[key] = parseBoolean(raw, `environment variable ${name}`);
    else if (key === 'onStart') out[key] = parseStartMode(raw, `environment variable ${name}`);
    else if (key === 'http') out[key] = raw.trim().split(/\s+/);
    else out[key] = raw;
  }
  refuseUnknownEnv(env, accepted, 'watch');
  return out as RawWatchCommand;
}

const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

export function parseWatchOptions(raw: RawWatchOptions): WatchOptions {
  if (!raw.dir) throw new UsageError('watch needs --dir DIR', 'the mounted ConfigMap or provisioning volume directory to watch');
  const action = parseAction(raw);
  const debounceMs = parseNumber(raw.debounceMs ?? String(WATCH_DEFAULTS.debounceMs), '--debounce-ms', 0, 600_000);
  const pollSeconds = parseNumber(raw.pollSeconds ?? String(WATCH_DEFAULTS.pollSeconds), '--poll-seconds', 0.1, 86_400);
  if (raw.validate !== undefined && raw.validate.trim() === '') throw new UsageError('--validate is empty', 'give the command, e.g. --validate "nginx -t"');
  return {
    dir: raw.dir,
    validate: raw.validate,
    action,
    debounceMs,
    maxDelayMs: Math.max(debounceMs * 10, 10_000),
    pollMs: Math.round(pollSeconds * 1000),
    onStart: parseStartMode(raw.onStart, '--on-start'),
  };
}

const START_MODES: readonly StartMode[] = ['auto', 'always', 'never'];

/**
 * --on-start: bare means `always`, as it always did; true/false words mean always/never, so an
 * existing ZETA_PROVISION_ON_START=false keeps today's behaviour. Unset is `auto`.
 */
export function parseStartMode(raw: boolean | string | undefined, origin: string): StartMode {
  if (raw === undefined) return 'auto';
  if (typeof raw === 'string' && (START_MODES as readonly string[]).includes(raw.trim().toLowerCase())) return raw.trim().toLowerCase() as StartMode;
  try {
    return parseBoolean(raw, origin) ? 'always' : 'never';
  } catch {
    throw new UsageError(
      `${origin}: expected auto, always or never, got ${JSON.stringify(String(raw))}`,
      'auto (the default) reloads at start unless the consumer started after the current content',
    );
  }
}

export function parseAction(raw: RawWatchOptions): WatchAction {
  const given = [raw.signal !== undefined && '--signal', raw.exec !== undefined && '--exec', raw.http !== undefined && '--http'].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0 ? 'watch needs one action: --signal, --exec or --http' : `watch takes exactly one action, got ${given.join(' and ')}`,
      'e.g. --signal HUP --process-name nginx, --exec "CMD", or --http PUT http://127.0.0.1:8181/v1/policies/zeta --body-file F',
    );
  }
  const targets = [raw.pid !== undefined && '--pid', raw.pidFile !== undefined && '--pid-file', raw.processName !== undefined && '--process-name'].filter(
    Boolean,
  );
  if (raw.signal === undefined && targets.length > 0) throw new UsageError(`${targets.join(', ')} only go with --signal`);
  if (raw.http === undefined && raw.bodyFile !== undefined) throw new UsageError('--body-file only goes with --http');

  if (raw.signal !== undefined) {
    if (targets.length !== 1) {
      throw new UsageError(
        targets.length === 0 ? '--signal needs a target' : `--signal takes one target, got ${targets.join(' and ')}`,
        'add --pid N, --pid-file FILE or --process-name NAME',
      );
    }
    return { kind: 'signal', signal: parseSignal(raw.signal), target: parseTarget(raw) };
  }
  if (raw.exec !== undefined) {
    if (raw.exec.trim() === '') throw new UsageError('--exec is empty');
    return { kind: 'exec', command: raw.exec };
  }
  const http = raw.http ?? [];
  if (http.length !== 2) throw new UsageError(`--http takes METHOD URL, got ${http.length} value(s)`, 'e.g. --http PUT http://127.0.0.1:8181/v1/policies/zeta');
  const method = http[0]!.toUpperCase();
  if (!HTTP_METHODS.has(method)) throw new UsageError(`--http method ${JSON.stringify(http[0])} is not one of ${[...HTTP_METHODS].join(', ')}`);
  let url: URL;
  try {
    url = new URL(http[1]!);
  } catch {
    throw new UsageError(`--http URL ${JSON.stringify(http[1])} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--http URL must be http: or https:, got ${url.protocol}`);
  // Credentials in the URL would end up in logs; OPA on localhost needs none.
  if (url.username || url.password) throw new UsageError('--http URL must not contain credentials');
  return { kind: 'http', method, url, bodyFile: raw.bodyFile };
}

export function parseSignal(value: string): NodeJS.Signals {
  const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  // SIGKILL/SIGSTOP cannot be a reload; refusing them stops a typo from killing the consumer.
  if (!(name in constants.signals) || name === 'SIGKILL' || name === 'SIGSTOP') {
    throw new UsageError(`--signal ${JSON.stringify(value)} is not a reload signal`, 'e.g. HUP (nginx), USR1, USR2');
  }
  return name;
}

function parseTarget(raw: RawWatchOptions): SignalTarget {
  if (raw.pid !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(raw.pid)) throw new UsageError(`--pid ${JSON.stringify(raw.pid)} is not a process ID`);
    return { kind: 'pid', pid: Number(raw.pid) };
  }
  if (raw.pidFile !== undefined) {
    if (raw.pidFile === '') throw new UsageError('--pid-file is empty');
    return { kind: 'pid-file', file: raw.pidFile };
  }
  const name = raw.processName ?? '';
  // A bare program name (matched against /proc/PID/comm and argv[0]), never a path or a pattern.
  if (!/^[^/\s]{1,255}$/.test(name)) throw new UsageError(`--process-name ${JSON.stringify(name)} is not a program name`);
  return { kind: 'process-name', name };
}

function parseNumber(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`${flag} ${JSON.stringify(value)} must be a number from ${min} to ${max}`);
  return n;
}

/** One line for logs: what a reload does, without request bodies. */
export function describeAction(action: WatchAction): string {
  switch (action.kind) {
    case 'signal': {
      const t = action.target;
      const to = t.kind === 'pid' ? `pid ${t.pid}` : t.kind === 'pid-file' ? `pid from ${t.file}` : `process "${t.name}"`;
      return `${action.signal} to ${to}`;
    }
    case 'exec':
      return `exec ${action.command}`;
    case 'http':
      return `${action.method} ${action.url.origin}${action.url.pathname}`;
  }
}
