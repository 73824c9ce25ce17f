/**
 * Helpers for the sidecar tests: a real nginx in its own prefix on a free 127.0.0.1 port, the built
 * `zeta-provision watch` as a child process with its JSON log lines collected, and publishing into a
 * volume through the volume publisher's public entry point.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { publishVolume } from '../../src/publish/volume/index.js';
import { BIN } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { stageFiles } from '../support/volume.js';

/** Upper bound for waiting on a child process; a bound for a hang, not a performance assertion. */
const WAIT_MS = 20_000;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Publishes files into the volume as `zeta-provision run` would (new generation, ..data swap). */
export async function publish(volume: string, files: Record<string, string>): Promise<void> {
  const staging = await mkdtemp(path.join(os.tmpdir(), 'zp-watch-stage-'));
  try {
    await publishVolume(volume, await stageFiles(staging, files));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function httpGet(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Waits until nginx on `port` answers exactly `body` (a reload takes effect when new workers run). */
export function servesEventually(port: number, body: string): Promise<string> {
  return waitFor(`nginx to serve ${JSON.stringify(body)}`, async () => ((await httpGet(port)) === body ? body : undefined));
}

export interface Nginx {
  pidFile: string;
  errorLog: string;
  /** The `nginx -t` command for --validate: same prefix, config, pid and error log as the server. */
  testCommand: string;
  pid(): Promise<number>;
  stop(): Promise<void>;
}

export async function nginxBinary(): Promise<string> {
  await requireProgram('nginx', 'nginx-light');
  return (await execa('sh', ['-c', 'command -v nginx'])).stdout.trim();
}

/**
 * nginx in the foreground with everything under `prefix`: pid, error log. The config is read from
 * `config` (a path through the volume's top-level link), exactly what a consumer pod does.
 */
export async function startNginx(prefix: string, config: string): Promise<Nginx> {
  const bin = await nginxBinary();
  await mkdir(prefix, { recursive: true });
  const pidFile = path.join(prefix, 'nginx.pid');
  const errorLog = path.join(prefix, 'error.log');
  const args = ['-p', `${prefix}/`, '-c', config, '-e', errorLog];
  const child: ChildProcess = spawn(bin, [...args, '-g', `daemon off; pid ${pidFile};`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = async () => Number((await readFile(pidFile, 'utf8')).trim());
  await waitFor('nginx to write its pid file', () =>
    readFile(pidFile, 'utf8').then(
      (t) => (t.trim() ? t : undefined),
      () => undefined,
    ),
  );
  return {
    pidFile,
    errorLog,
    testCommand: [bin, '-t', ...args, '-g', `pid ${pidFile};`].map(shellQuote).join(' '),
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** nginx's directives for temp files default to /var/lib/nginx; tests keep them in the prefix. */
export function nginxConfig(prefix: string, port: number, body: string, extra = ''): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${prefix}/${t};`).join(' ');
  // notice: nginx logs each "signal 1 (SIGHUP) received" at that level, which is how tests count reloads.
  return `error_log ${prefix}/error.log notice;\nevents {}\nhttp {\n  access_log off;\n  ${temp}\n  server {\n    listen 127.0.0.1:${port};\n    ${extra}\n    location / { return 200 "${body}"; }\n  }\n}\n`;
}

/** Reloads nginx itself saw: the SIGHUPs its error log (notice level, see nginxConfig) records. */
export async function hupsReceived(nginx: Nginx): Promise<number> {
  return ((await readFile(nginx.errorLog, 'utf8').catch(() => '')).match(/signal 1 \(SIGHUP\) received/g) ?? []).length;
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface WatchProcess {
  lines: LogLine[];
  /** Resolves with the first log line (from `from` on) matching. */
  line(msg: string, match?: (l: LogLine) => boolean, from?: number): Promise<LogLine>;
  /** SIGTERM, then the exit code. */
  terminate(): Promise<number | null>;
}

/** `viaShell`: a shell prefix run before `exec`-ing the sidecar in the same process (e.g. to learn its PID). */
export function startWatch(args: string[], opts: { viaShell?: string } = {}): WatchProcess {
  const argv = [BIN, 'watch', '--log-format', 'json', ...args];
  const child = opts.viaShell
    ? spawn('/bin/sh', ['-c', `${opts.viaShell} ${[process.execPath, ...argv].map(shellQuote).join(' ')}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: LogLine[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as LogLine);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    lines,
    line: (msg, match = () => true, from = 0) =>
      waitFor(`watch to log "${msg}" (stderr so far: ${stderr.slice(-500)})`, () => {
        if (child.exitCode !== null) throw new Error(`watch exited with ${child.exitCode}: ${stderr}`);
        return lines.slice(from).find((l) => l.msg === msg && match(l));
      }),
    terminate: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
