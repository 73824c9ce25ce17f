/**
 * One writer per volume: a lock file created with O_EXCL that names its holder (pid, host, time, a
 * random token). A lock is taken over when it is stale: its pid is dead on this host, it is an earlier
 * incarnation of our own pid (a restarted container is pid 1 again), or it was not refreshed for
 * `staleMs` (holders on other nodes of a shared volume cannot be probed). The holder touches the file
 * periodically so a long publish never looks stale.
 */
import { ownerGone } from '../../util/owner.js';
import { randomBytes } from 'node:crypto';
import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PublishError, errorMessage } from '../../errors.js';
import { LOCK_NAME } from './layout.js';

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const DEFAULT_LOCK_STALE_MS = 10 * 60_000;
/** A lock file that is still empty or garbled after this long was left by a crash mid-create. */
const GARBLED_GRACE_MS = 5_000;
const BREAK_SUFFIX = '.break';

export interface LockInfo {
  pid: number;
  host: string;
  time: string;
  token: string;
}

export interface LockOptions {
  timeoutMs?: number;
  staleMs?: number;
  pollMs?: number;
}

export interface VolumeLock {
  info: LockInfo;
  release(): Promise<void>;
}

/** Tokens this process holds: a lock with our pid but another token is a dead earlier incarnation. */
const heldTokens = new Set<string>();

export function lockFile(volumeDir: string): string {
  return path.join(volumeDir, LOCK_NAME);
}

export async function acquireVolumeLock(volumeDir: string, opts: LockOptions = {}): Promise<VolumeLock> {
  const file = lockFile(volumeDir);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const staleMs = opts.staleMs ?? DEFAULT_LOCK_STALE_MS;
  const deadline = Date.now() + timeoutMs;
  const info: LockInfo = { pid: process.pid, host: os.hostname(), time: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  for (;;) {
    if (await tryCreate(file, info)) break;
    const holder = await readHolder(file);
    if (holder && isStale(holder, staleMs)) {
      await breakStale(file, holder.raw);
      continue;
    }
    if (Date.now() >= deadline) {
      const who = holder?.info ? `pid ${holder.info.pid} on host ${holder.info.host} since ${holder.info.time}` : 'an unknown holder';
      throw new PublishError(
        `volume ${volumeDir} is locked by ${who}; gave up after ${Math.round(timeoutMs / 1000)} s`,
        `another zeta-provision run is publishing; if none is, remove ${file}`,
      );
    }
    await sleep(Math.min(opts.pollMs ?? 100, Math.max(1, deadline - Date.now())));
  }
  heldTokens.add(info.token);
  // Refresh mtime so other nodes never judge a long publish stale; unref: never keeps the process alive.
  const beat = setInterval(() => void utimes(file, new Date(), new Date()).catch(() => undefined), Math.max(1000, staleMs / 3));
  beat.unref();
  return {
    info,
    release: async () => {
      clearInterval(beat);
      heldTokens.delete(info.token);
      // Remove only our own lock: if it was (wrongly) broken, the file is someone else's now.
      const holder = await readHolder(file);
      if (holder?.info?.token === info.token) await rm(file, { force: true });
    },
  };
}

async function tryCreate(file: string, info: LockInfo): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'wx', 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    const hint = code === 'EACCES' || code === 'EPERM' ? 'the volume is not writable for this user; check fsGroup / ownership' : undefined;
    throw new PublishError(`cannot create lock ${file}: ${errorMessage(err)}`, hint);
  }
  // Not fsynced: exclusion comes from O_EXCL on the live filesystem, and a lock that does not survive a
  // power cut is exactly right (one that does, or comes back empty, is stale and taken over).
  try {
    await fh.writeFile(JSON.stringify(info) + '\n');
  } finally {
    await fh.close();
  }
  return true;
}

interface Holder {
  raw: string;
  info?: LockInfo;
  ageMs: number;
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    const [raw, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    let info: LockInfo | undefined;
    try {
      const parsed = JSON.parse(raw) as Partial<LockInfo>;
      if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.token === 'string') info = parsed as LockInfo;
    } catch {
      info = undefined;
    }
    return { raw, info, ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PublishError(`cannot read lock ${file}: ${errorMessage(err)}`);
  }
}

function isStale(h: Holder, staleMs: number): boolean {
  if (!h.info) return h.ageMs > GARBLED_GRACE_MS;
  if (h.ageMs > staleMs) return true;
  return ownerGone(h.info, heldTokens);
}

/**
 * Two waiters may both find the same stale lock; without care the slower one would delete the fresh
 * lock the faster one just created. So breaking is itself serialised by an O_EXCL `.break` file, and
 * the lock is removed only if it still holds exactly the content that was judged stale.
 */
async function breakStale(file: string, staleRaw: string): Promise<void> {
  const breaker = file + BREAK_SUFFIX;
  let fh;
  try {
    fh = await open(breaker, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new PublishError(`cannot create ${breaker}: ${errorMessage(err)}`);
    // A breaker that crashed mid-break leaves the file; it only ever lives for a few syscalls.
    const st = await stat(breaker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > GARBLED_GRACE_MS) await rm(breaker, { force: true });
    else await sleep(20);
    return;
  }
  try {
    await fh.close();
    const now = await readFile(file, 'utf8').catch(() => undefined);
    if (now === staleRaw) await rm(file, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
