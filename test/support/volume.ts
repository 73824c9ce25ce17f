/**
 * Helpers for volume tests: read a volume the way a consumer does (through its top-level links), stage
 * payload files, and run the CLI with extra environment while keeping the signal that ended it.
 */
import { lstat, mkdir, readFile, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { VolumeFile } from '../../src/process/types.js';
import { sha256File } from '../../src/util/fs.js';
import { BIN, REPO_ROOT } from './cli.js';

/**
 * Every file a consumer can reach through the top-level names (path → content). Each top-level name is
 * resolved once with realpath, as a consumer that opens a directory does; a dangling link is absent.
 */
export async function readConsumerTree(volume: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(volume)).sort()) {
    if (name.startsWith('..')) continue;
    let real: string;
    try {
      real = await realpath(path.join(volume, name));
    } catch {
      continue;
    }
    const st = await stat(real);
    if (st.isFile()) out[name] = await readFile(real, 'utf8');
    else for (const [rel, content] of Object.entries(await readDirTree(real))) out[`${name}/${rel}`] = content;
  }
  return out;
}

async function readDirTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const abs = path.join(dir, rel);
    if ((await lstat(abs)).isFile()) out[rel] = await readFile(abs, 'utf8');
  }
  return out;
}

/** Generation directories in a volume. */
export async function generationsIn(volume: string): Promise<string[]> {
  return (await readdir(volume)).filter((n) => /^\.\.\d{4}_/.test(n)).sort();
}

export async function stageFiles(root: string, files: Record<string, string | Buffer>): Promise<VolumeFile[]> {
  const out: VolumeFile[] = [];
  for (const [p, content] of Object.entries(files)) {
    const abs = path.join(root, p);
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content);
    out.push({ path: p, source: abs, size: Buffer.byteLength(content), sha256: await sha256File(abs) });
  }
  return out;
}

export interface CliRun {
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Loaded before the CLI when a ZP_FAULT_* variable asks for fault injection (faults/preload.mjs). */
export const FAULTS_PRELOAD = path.join(REPO_ROOT, 'test', 'support', 'faults', 'preload.mjs');

export async function runCliEnv(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const preload = Object.keys(env).some((k) => k.startsWith('ZP_FAULT_')) ? ['--import', FAULTS_PRELOAD] : [];
  const r = await execa(process.execPath, [...preload, BIN, ...args], {
    reject: false,
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    extendEnv: false,
  });
  return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}
