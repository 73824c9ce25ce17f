import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'zeta-provision');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stderr as text: JSON log lines (no terminal) turned into `msg` plus `hint: …`, other lines as they are. */
  log: string;
}

export function logText(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => {
      if (!line.startsWith('{')) return line;
      try {
        const j = JSON.parse(line) as { msg?: string; hint?: string };
        return [j.msg ?? '', ...(j.hint ? [`  hint: ${j.hint}`] : [])].join('\n');
      } catch {
        return line;
      }
    })
    .join('\n');
}

/** Runs the built CLI as a user would (a child process); env is exactly what is given plus PATH (and COLUMNS). */
export async function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [BIN, ...args], {
    reject: false,
    cwd: opts.cwd ?? REPO_ROOT,
    // Text reports wrap at 100 columns unless COLUMNS says otherwise; tests read whole lines, so they
    // get a wide "terminal" unless they pass COLUMNS themselves (COLUMNS: '' for the default width).
    env: { PATH: process.env.PATH ?? '', COLUMNS: '10000', ...opts.env },
    extendEnv: false,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), log: logText(String(r.stderr)) };
}
