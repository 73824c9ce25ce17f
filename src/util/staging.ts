/**
 * Staging directories in TMPDIR (`zeta-provision-XXXXXX`), each marked with its owner (pid, host, a
 * token), so a later run can tell a dead run's directory — a killed run never reaches its cleanup, and
 * a payload can be hundreds of MB — from one a live run is using. Tidying costs one readdir of TMPDIR
 * and one small read per staging directory; no tree is walked unless it is removed.
 */
import { ownerGone } from './owner.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'zeta-provision-';
export const OWNER_FILE = '.zeta-provision-owner';
/** A staging directory without an owner file is only judged dead after this (a run may be creating it). */
const UNMARKED_GRACE_MS = 60 * 60 * 1000;

export interface Staging {
  dir: string;
  remove(): Promise<void>;
}

/** Tokens of this process: our pid with another token is an earlier incarnation (a restarted container is pid 1 again). */
const ours = new Set<string>();

export async function createStaging(base = os.tmpdir()): Promise<Staging> {
  const dir = await mkdtemp(path.join(base, PREFIX));
  const token = randomBytes(8).toString('hex');
  ours.add(token);
  await writeFile(path.join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), token, started: new Date().toISOString() }) + '\n');
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Removes staging directories of dead runs on this host; returns their names. */
export async function tidyStaging(base = os.tmpdir(), now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(base, name);
    if (await isDead(dir, now)) {
      await rm(dir, { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

async function isDead(dir: string, now: number): Promise<boolean> {
  const text = await readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) {
    const st = await stat(dir).catch(() => undefined);
    return !!st && st.isDirectory() && now - st.mtimeMs > UNMARKED_GRACE_MS;
  }
  let owner: { pid?: unknown; host?: unknown; token?: unknown };
  try {
    owner = JSON.parse(text) as { pid?: unknown; host?: unknown; token?: unknown };
  } catch {
    return false;
  }
  // Another host's run (a shared TMPDIR) cannot be probed: left alone (ownerGone says so).
  if (typeof owner.pid !== 'number' || typeof owner.host !== 'string') return false;
  return ownerGone({ pid: owner.pid, host: owner.host, token: String(owner.token) }, ours);
}
