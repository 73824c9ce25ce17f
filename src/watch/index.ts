/**
 * `zeta-provision watch`: the reload sidecar. Watches a directory that is swapped atomically (a
 * ConfigMap mount or our provisioning volume, both switching `..data`), and after each settled change
 * validates the new content and reloads the consumer — signal, command or HTTP request. fs events make
 * it fast; a poll with a content hash makes it correct where events do not arrive (NFS, some CSI
 * drivers). Ends cleanly (exit 0) on SIGTERM.
 */
import { watch as watchDir, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { performAction, runShell } from './actions.js';
import { afterAttempt, decideAtStart, decideReload, type ReloadState, type StartFacts, type Trigger } from './decide.js';
import { DirectoryHasher } from './hash.js';
import { describeAction, type WatchOptions, type WatchAction } from './options.js';
import { processStartMs, resolveTarget } from './procs.js';
import { Settler } from './settle.js';

export async function runWatch(opts: WatchOptions, log: Logger, stop: AbortSignal): Promise<number> {
  const hint = 'mount the ConfigMap or provisioning volume there (the directory, never a subPath)';
  const st = await stat(opts.dir).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(
      err.code === 'ENOENT' ? `--dir ${opts.dir} does not exist` : `cannot access --dir ${opts.dir}: ${err.code ?? errorMessage(err)}`,
      hint,
    );
  });
  if (!st.isDirectory()) throw new UsageError(`--dir ${opts.dir} is not a directory`, hint);

  if (!(await stat(path.join(opts.dir, '..data')).catch(() => undefined)) && (await stat(path.join(opts.dir, '..', '..data')).catch(() => undefined))) {
    // A subdirectory of a swapped volume resolves to one generation when watched: its events stop at
    // the first swap, and only the poll would notice. The mount root is where the swap happens.
    log.warn('--dir is inside a directory that swaps ..data; watch the mount root instead, or changes are seen only by the poll', {
      dir: opts.dir,
      root: path.dirname(path.resolve(opts.dir)),
    });
  }
  const hasher = new DirectoryHasher(opts.dir);
  let reload: ReloadState = {};
  /** The hash the last look (check or poll) saw: a poll seeing another one has found a change. */
  let lastSeen: string | undefined;
  let running: Promise<void> = Promise.resolve();
  const action = describeAction(opts.action);

  /** One check at a time: a poll during a reload waits instead of racing it. */
  const enqueue = (work: () => Promise<void>): Promise<void> => (running = running.then(() => (stop.aborted ? undefined : work())));
  // Every trigger that sees a change goes through the same settle window before anything is checked.
  const settler = new Settler(opts.debounceMs, opts.maxDelayMs, (trigger) => void enqueue(() => check(trigger)));

  const check = async (trigger: Trigger): Promise<void> => {
    let hash: string;
    try {
      hash = await hasher.hash();
    } catch (err) {
      log.error('cannot read the watched directory; will try again', { dir: opts.dir, error: errorMessage(err) });
      return;
    }
    lastSeen = hash;
    const decision = decideReload(reload, hash);
    if (decision !== 'reload') {
      log.debug('no reload', { trigger, hash, decision });
      return;
    }
    // Nothing is known to be applied yet (start, or every attempt since failed): the consumer may
    // already run this content. Asked again at each retry, since a consumer may start meanwhile.
    let reason: string | undefined;
    if (reload.applied === undefined) {
      const start = decideAtStart(await startFacts(opts.onStart, opts.action, hasher));
      if (!start.reload) {
        log.info('not reloaded at start: the consumer runs the current content', { hash, trigger, reason: start.reason });
        reload = afterAttempt(reload, hash, 'consumer-current');
        return;
      }
      reason = start.reason;
    }
    if (opts.validate) {
      const v = await runShell(opts.validate);
      if (!v.ok) {
        log.error('validation failed; consumer not reloaded, it keeps its current config', {
          hash,
          trigger,
          reason,
          validate: opts.validate,
          status: v.status,
          output: v.output,
        });
        reload = afterAttempt(reload, hash, 'validation-failed');
        return;
      }
      // A swap during validation would reload content that was never validated: start over instead.
      if ((await hasher.hash().catch(() => undefined)) !== hash) {
        log.info('content changed during validation; checking again', { hash, trigger });
        settler.note(trigger);
        return;
      }
    }
    const result = await performAction(opts.action);
    if (!result.ok) {
      log.error('reload failed; will retry on the next change or poll', { hash, trigger, reason, action, error: result.detail, hint: result.hint });
      reload = afterAttempt(reload, hash, 'action-failed');
      return;
    }
    log.info('reloaded', { hash, previous: reload.applied, trigger, reason, action, result: result.detail, validated: opts.validate !== undefined });
    reload = afterAttempt(reload, hash, 'reloaded');
  };

  /**
   * The poll is a change detector like the file events: new content starts or extends the settle
   * window. Content seen before but still not applied (a failed action) is retried the same way.
   */
  let pollQueued = false;
  const poll = async (): Promise<void> => {
    pollQueued = false;
    const hash = await hasher.hash().catch(() => undefined);
    if (hash === undefined) return settler.note('poll');
    const changed = hash !== lastSeen;
    lastSeen = hash;
    if (changed || (!settler.pending && decideReload(reload, hash) === 'reload')) settler.note('poll');
    else log.debug('no reload', { trigger: 'poll', hash, decision: decideReload(reload, hash) });
  };

  let watcher: FSWatcher | undefined;
  try {
    // Non-recursive on purpose: the swap renames `..data` in this directory, which is one event here.
    watcher = watchDir(opts.dir, { persistent: true }, () => settler.note('fs-event'));
    watcher.on('error', (err) => log.warn('file events stopped; relying on the poll', { dir: opts.dir, error: errorMessage(err) }));
  } catch (err) {
    log.warn('file events unavailable; relying on the poll', { dir: opts.dir, error: errorMessage(err) });
  }
  let pollTimer: NodeJS.Timeout | undefined;
  try {
    const initial = await hasher.hash().catch((err: unknown) => {
      throw new UsageError(`cannot read --dir ${opts.dir}: ${errorMessage(err)}`);
    });
    lastSeen = initial;
    log.info('watching', {
      dir: opts.dir,
      hash: initial,
      action,
      validate: opts.validate,
      onStart: opts.onStart,
      debounceMs: opts.debounceMs,
      pollSeconds: opts.pollMs / 1000,
    });
    if (opts.onStart === 'never') reload = { applied: initial };
    else await enqueue(() => check('start'));
    pollTimer = setInterval(() => {
      // A slow validator must not let polls pile up behind it.
      if (pollQueued) return;
      pollQueued = true;
      void enqueue(poll);
    }, opts.pollMs);
    await new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
  } finally {
    // Also on an error: an open watcher or timer would keep the process alive after main returned.
    watcher?.close();
    if (pollTimer) clearInterval(pollTimer);
    settler.stop();
  }
  // A reload in flight finishes: half a PUT or a validator killed midway helps nobody.
  await running;
  log.info('stopped', { dir: opts.dir, hash: reload.applied });
  return 0;
}

/** What decideAtStart needs: the content's time and, for a signal, when each target process started. */
async function startFacts(mode: StartFacts['mode'], action: WatchAction, hasher: DirectoryHasher): Promise<StartFacts> {
  if (mode === 'always') return { mode };
  const contentTimeMs = await hasher.contentTime().catch(() => undefined);
  // --exec and --http have no process to look at: the consumer's state cannot be told, so it reloads.
  if (action.kind !== 'signal') return { mode, contentTimeMs };
  const targets = await resolveTarget(action.target).catch(() => undefined);
  if (!targets) return { mode, contentTimeMs };
  const starts = await Promise.all(targets.pids.map((pid) => processStartMs(pid)));
  return { mode, contentTimeMs, consumerStartsMs: starts.some((s) => s === undefined) ? undefined : (starts as number[]) };
}

/** Runs the sidecar until SIGTERM (what the kubelet sends) or SIGINT. */
export async function runWatchUntilSignalled(opts: WatchOptions, log: Logger): Promise<number> {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    return await runWatch(opts, log, ac.signal);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
