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
import { afterAttempt, decideReload, dueIn, noteChange, type DebounceState, type ReloadState } from './decide.js';
import { DirectoryHasher } from './hash.js';
import { describeAction, type WatchOptions } from './options.js';

export { parseWatchOptions, WATCH_DEFAULTS, type RawWatchOptions, type WatchOptions, type WatchAction } from './options.js';

type Trigger = 'start' | 'fs-event' | 'poll';

export async function runWatch(opts: WatchOptions, log: Logger, stop: AbortSignal): Promise<number> {
  const hint = 'mount the ConfigMap or provisioning volume there (the directory, never a subPath)';
  const st = await stat(opts.dir).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(err.code === 'ENOENT' ? `--dir ${opts.dir} does not exist` : `cannot access --dir ${opts.dir}: ${err.code ?? errorMessage(err)}`, hint);
  });
  if (!st.isDirectory()) throw new UsageError(`--dir ${opts.dir} is not a directory`, hint);

  if (!(await stat(path.join(opts.dir, '..data')).catch(() => undefined)) && (await stat(path.join(opts.dir, '..', '..data')).catch(() => undefined))) {
    // A subdirectory of a swapped volume resolves to one generation when watched: its events stop at
    // the first swap, and only the poll would notice. The mount root is where the swap happens.
    log.warn('--dir is inside a directory that swaps ..data; watch the mount root instead, or changes are seen only by the poll', { dir: opts.dir, root: path.dirname(path.resolve(opts.dir)) });
  }
  const hasher = new DirectoryHasher(opts.dir);
  let reload: ReloadState = {};
  let debounce: DebounceState = {};
  let debounceTimer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const action = describeAction(opts.action);

  /** One check at a time: a poll during a reload waits instead of racing it. */
  const enqueue = (trigger: Trigger): Promise<void> => (running = running.then(() => (stop.aborted ? undefined : check(trigger))));

  const check = async (trigger: Trigger): Promise<void> => {
    let hash: string;
    try {
      hash = await hasher.hash();
    } catch (err) {
      log.error('cannot read the watched directory; will try again', { dir: opts.dir, error: errorMessage(err) });
      return;
    }
    const decision = decideReload(reload, hash);
    if (decision !== 'reload') {
      log.debug('no reload', { trigger, hash, decision });
      return;
    }
    if (opts.validate) {
      const v = await runShell(opts.validate);
      if (!v.ok) {
        log.error('validation failed; consumer not reloaded, it keeps its current config', { hash, trigger, validate: opts.validate, status: v.status, output: v.output });
        reload = afterAttempt(reload, hash, 'validation-failed');
        return;
      }
      // A swap during validation would reload content that was never validated: start over instead.
      if ((await hasher.hash().catch(() => undefined)) !== hash) {
        log.info('content changed during validation; checking again', { hash, trigger });
        return enqueueLater();
      }
    }
    const result = await performAction(opts.action);
    if (!result.ok) {
      log.error('reload failed; will retry on the next change or poll', { hash, trigger, action, error: result.detail });
      reload = afterAttempt(reload, hash, 'action-failed');
      return;
    }
    log.info('reloaded', { hash, previous: reload.applied, trigger, action, result: result.detail, validated: opts.validate !== undefined });
    reload = afterAttempt(reload, hash, 'reloaded');
  };
  const enqueueLater = (): void => {
    void enqueue('fs-event');
  };

  const scheduleDebounced = (): void => {
    if (debounceTimer) clearTimeout(debounceTimer);
    const wait = dueIn(debounce, Date.now(), opts.debounceMs, opts.maxDelayMs);
    if (wait === undefined) return;
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      debounce = {};
      void enqueue('fs-event');
    }, wait);
  };

  let watcher: FSWatcher | undefined;
  try {
    // Non-recursive on purpose: the swap renames `..data` in this directory, which is one event here.
    watcher = watchDir(opts.dir, { persistent: true }, () => {
      debounce = noteChange(debounce, Date.now());
      scheduleDebounced();
    });
    watcher.on('error', (err) => log.warn('file events stopped; relying on the poll', { dir: opts.dir, error: errorMessage(err) }));
  } catch (err) {
    log.warn('file events unavailable; relying on the poll', { dir: opts.dir, error: errorMessage(err) });
  }
  let poll: NodeJS.Timeout | undefined;
  try {
    const initial = await hasher.hash().catch((err: unknown) => {
      throw new UsageError(`cannot read --dir ${opts.dir}: ${errorMessage(err)}`);
    });
    log.info('watching', { dir: opts.dir, hash: initial, action, validate: opts.validate, debounceMs: opts.debounceMs, pollSeconds: opts.pollMs / 1000 });
    if (opts.onStart) await enqueue('start');
    else reload = { applied: initial };
    poll = setInterval(() => void enqueue('poll'), opts.pollMs);
    await new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
  } finally {
    // Also on an error: an open watcher or timer would keep the process alive after main returned.
    watcher?.close();
    if (poll) clearInterval(poll);
    if (debounceTimer) clearTimeout(debounceTimer);
  }
  // A reload in flight finishes: half a PUT or a validator killed midway helps nobody.
  await running;
  log.info('stopped', { dir: opts.dir, hash: reload.applied });
  return 0;
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
