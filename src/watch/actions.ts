/** Side effects of a reload: run the validator, then the one configured action. */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { errorMessage, ZetaError } from '../errors.js';
import { resolveTarget, signalError } from './procs.js';
import type { WatchAction } from './options.js';

export interface CommandResult {
  ok: boolean;
  /** Exit code, or the signal that ended it. */
  status: string;
  /** Combined stdout and stderr, the last few KiB (what `nginx -t` says is at the end). */
  output: string;
}

const OUTPUT_LIMIT = 4096;
const COMMAND_TIMEOUT_MS = 60_000;
const HTTP_TIMEOUT_MS = 30_000;
/** An OPA policy is kilobytes; a bound keeps a wrong --body-file from being sent whole. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Runs an operator-given command through /bin/sh (it is theirs, from the pod spec, not payload data). */
export function runShell(command: string, env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, status: 'not started', output: errorMessage(err) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, status: signal ? `signal ${signal}` : `exit ${code}`, output: output.trim() });
    });
  });
}

export interface ActionResult {
  ok: boolean;
  detail: string;
  /** What to do about a failure, when we know. */
  hint?: string;
}

export async function performAction(action: WatchAction): Promise<ActionResult> {
  try {
    switch (action.kind) {
      case 'signal': {
        const { pids, origin } = await resolveTarget(action.target);
        for (const pid of pids) {
          try {
            process.kill(pid, action.signal);
          } catch (err) {
            throw signalError(err as NodeJS.ErrnoException, pid, origin);
          }
        }
        return { ok: true, detail: `${action.signal} sent to pid ${pids.join(', ')}` };
      }
      case 'exec': {
        const r = await runShell(action.command);
        return { ok: r.ok, detail: r.ok ? `${action.command}: ${r.status}` : `${action.command}: ${r.status}${r.output ? `: ${r.output}` : ''}` };
      }
      case 'http':
        return await sendHttp(action);
    }
  } catch (err) {
    return { ok: false, detail: errorMessage(err), hint: err instanceof ZetaError ? err.hint : undefined };
  }
}

async function sendHttp(action: Extract<WatchAction, { kind: 'http' }>): Promise<ActionResult> {
  let body: Buffer | undefined;
  if (action.bodyFile) {
    body = await readFile(action.bodyFile);
    if (body.length > MAX_BODY_BYTES) return { ok: false, detail: `${action.bodyFile} is larger than ${MAX_BODY_BYTES} bytes` };
  }
  const target = `${action.method} ${action.url.origin}${action.url.pathname}`;
  const res = await fetch(action.url, {
    method: action.method,
    body,
    headers: body ? { 'content-type': 'text/plain' } : undefined,
    redirect: 'error',
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  // OPA explains a rejected policy (compile error) in the body; a short excerpt goes to the log.
  const text = (await res.text()).slice(0, 1000);
  if (!res.ok) return { ok: false, detail: `${target}: HTTP ${res.status}${text ? `: ${text}` : ''}` };
  return { ok: true, detail: `${target}: HTTP ${res.status}` };
}
