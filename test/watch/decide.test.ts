import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { afterAttempt, decideAtStart, decideReload, dueIn, noteChange, START_MARGIN_MS } from '../../src/watch/decide.js';
import { combineDigests, isBookkeeping } from '../../src/watch/hash.js';
import {
  parseBootTime,
  parsePidFile,
  parseProcStat,
  parseStartTicks,
  pidFileOwner,
  processStartMs,
  selectTargets,
  signalError,
  USER_HZ,
  type ProcInfo,
} from '../../src/watch/procs.js';

describe('debounce', () => {
  it('is due quietMs after the last change of a burst', () => {
    let s = noteChange({}, 1000);
    expect(dueIn(s, 1000, 500, 10_000)).toBe(500);
    s = noteChange(s, 1400);
    expect(s.firstChangeAt).toBe(1000);
    expect(dueIn(s, 1400, 500, 10_000)).toBe(500);
    expect(dueIn(s, 1900, 500, 10_000)).toBe(0);
    expect(dueIn(s, 5000, 500, 10_000)).toBe(0);
  });

  it('never waits longer than maxDelayMs after the first change, however often it changes', () => {
    let s = noteChange({}, 0);
    for (let t = 100; t <= 9_900; t += 100) s = noteChange(s, t);
    expect(dueIn(s, 9_900, 500, 10_000)).toBe(100);
  });

  it('has nothing pending without a change', () => {
    expect(dueIn({}, 123, 500, 10_000)).toBeUndefined();
  });

  it('keeps the trigger that noticed the burst first', () => {
    const s = noteChange(noteChange({}, 0, 'poll'), 10, 'fs-event');
    expect(s).toEqual({ firstChangeAt: 0, lastChangeAt: 10, trigger: 'poll' });
  });
});

describe('reload at start', () => {
  const swap = 1_800_000_000_000;
  it('reloads a consumer that started before the current content was swapped in', () => {
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [swap - 60_000] })).toEqual({
      reload: true,
      reason: 'consumer started before the content',
    });
    // Within the margin is not proof: nginx may have read its config just before the PID we see began.
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [swap + START_MARGIN_MS - 1] }).reload).toBe(true);
  });

  it('spares a consumer that provably started after the swap (a fresh pod), but only if all of them did', () => {
    expect(START_MARGIN_MS).toBe(1000); // the README's "at least 1 s after"
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [swap + START_MARGIN_MS] })).toEqual({
      reload: false,
      reason: 'consumer started after the content',
    });
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [swap + 5000, swap - 5000] }).reload).toBe(true);
  });

  it('reloads when it cannot be told: no process (--exec, --http), not found, or no content time', () => {
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap })).toEqual({ reload: true, reason: 'consumer start unknown' });
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [] }).reload).toBe(true);
    expect(decideAtStart({ mode: 'auto', contentTimeMs: swap, consumerStartsMs: [Number.NaN] }).reload).toBe(true);
    expect(decideAtStart({ mode: 'auto', consumerStartsMs: [swap + 60_000] })).toEqual({ reload: true, reason: 'content time unknown' });
  });

  it('always and never override what /proc says', () => {
    expect(decideAtStart({ mode: 'always', contentTimeMs: swap, consumerStartsMs: [swap + 60_000] })).toEqual({ reload: true, reason: 'on-start always' });
    expect(decideAtStart({ mode: 'never', contentTimeMs: swap, consumerStartsMs: [swap - 60_000] })).toEqual({ reload: false, reason: 'on-start never' });
    expect(decideAtStart({ mode: 'never' }).reload).toBe(false);
  });

  it('counts a consumer found current as applied', () => {
    expect(afterAttempt({ rejected: 'b' }, 'a', 'consumer-current')).toEqual({ applied: 'a' });
  });
});

describe('reload decision', () => {
  it('reloads new content, skips applied content and content whose validation failed', () => {
    expect(decideReload({}, 'sha256:a')).toBe('reload');
    expect(decideReload({ applied: 'sha256:a' }, 'sha256:a')).toBe('unchanged');
    expect(decideReload({ applied: 'sha256:a', rejected: 'sha256:b' }, 'sha256:b')).toBe('rejected-before');
    expect(decideReload({ applied: 'sha256:a', rejected: 'sha256:b' }, 'sha256:c')).toBe('reload');
  });

  it('remembers a rejected hash, retries a failed action, and forgets the rejection after a reload', () => {
    const s1 = afterAttempt({ applied: 'a' }, 'b', 'validation-failed');
    expect(s1).toEqual({ applied: 'a', rejected: 'b' });
    expect(afterAttempt(s1, 'c', 'action-failed')).toEqual(s1);
    expect(decideReload(afterAttempt(s1, 'c', 'action-failed'), 'c')).toBe('reload');
    const s2 = afterAttempt(s1, 'c', 'reloaded');
    expect(s2).toEqual({ applied: 'c' });
    // Going back to the once-broken content after a fix is a change like any other.
    expect(decideReload(s2, 'b')).toBe('reload');
  });
});

describe('content hash', () => {
  it('depends on paths and digests, not on listing order', () => {
    const a = { path: 'nginx/nginx.conf', sha256: '11' };
    const b = { path: 'opa/policy.rego', sha256: '22' };
    expect(combineDigests([a, b])).toBe(combineDigests([b, a]));
    expect(combineDigests([a, b])).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(combineDigests([a, b])).not.toBe(combineDigests([a, { ...b, sha256: '23' }]));
    expect(combineDigests([a, b])).not.toBe(combineDigests([a, { ...b, path: 'opa/policy2.rego' }]));
    // The separator keeps "a" + "b/c" and "a/b" + "c" apart.
    expect(combineDigests([{ path: 'x', sha256: '1\n' }])).not.toBe(combineDigests([{ path: 'x\x001', sha256: '' }]));
  });

  it('skips kubelet and publisher bookkeeping', () => {
    expect(['..data', '..2026_01_01_00_00_00.1234abcd', '..zeta-provision.json', 'nginx', '.hidden'].filter(isBookkeeping)).toEqual([
      '..data',
      '..2026_01_01_00_00_00.1234abcd',
      '..zeta-provision.json',
    ]);
  });
});

describe('process selection', () => {
  const procs: ProcInfo[] = [
    { pid: 1, ppid: 0, comm: 'pause', argv0: 'pause' },
    { pid: 7, ppid: 0, comm: 'nginx', argv0: 'nginx:' },
    { pid: 12, ppid: 7, comm: 'nginx', argv0: 'nginx:' },
    { pid: 13, ppid: 7, comm: 'nginx', argv0: 'nginx:' },
    { pid: 20, ppid: 0, comm: 'node', argv0: 'node' },
    { pid: 30, ppid: 0, comm: 'opa', argv0: 'opa' },
  ];

  it('signals the nginx master, not its workers nor itself', () => {
    expect(selectTargets(procs, 'nginx', 20)).toEqual([7]);
    expect(selectTargets(procs, 'node', 20)).toEqual([]);
    expect(selectTargets(procs, 'opa', 20)).toEqual([30]);
    expect(selectTargets(procs, 'nginx-not', 20)).toEqual([]);
  });

  it('matches names longer than comm by argv[0] or the 15-byte prefix', () => {
    const long = [{ pid: 5, ppid: 1, comm: 'keycloak-reload', argv0: 'keycloak-reloader' }];
    expect(selectTargets(long, 'keycloak-reloader', 99)).toEqual([5]);
  });

  it('reads the start time from field 22 of /proc/PID/stat and the boot time from /proc/stat', async () => {
    // A real line's shape: comm with a space and a ')', start time 123456 ticks after boot.
    const line = '4242 (my) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100 18446744073709551615';
    expect(parseStartTicks(line)).toBe(123456);
    expect(parseStartTicks('garbage')).toBeUndefined();
    expect(parseBootTime('cpu  1 2 3\nintr 5\nbtime 1796287018\nprocesses 9\n')).toBe(1796287018);
    expect(parseBootTime('cpu 1 2 3\n')).toBeUndefined();
    expect(USER_HZ).toBe(Number((await execa('getconf', ['CLK_TCK'])).stdout.trim()));
    // This process: a lower bound of its start, at most 1 s (btime's truncation) plus a tick early.
    const started = await processStartMs(process.pid);
    const actual = Date.now() - process.uptime() * 1000;
    expect(started).toBeLessThanOrEqual(actual + 50);
    expect(started).toBeGreaterThan(actual - 1000 - 1000 / USER_HZ - 50);
    expect(await processStartMs(2 ** 30)).toBeUndefined();
  });

  it('says why a PID file holds no PID, naming its owner, without quoting its content', () => {
    expect(pidFileOwner('/run/nginx/nginx.pid')).toBe('nginx');
    expect(pidFileOwner('/run/app/pid')).toBe('the consumer');
    expect(() => parsePidFile('/run/nginx.pid', '')).toThrow('nginx (pid file /run/nginx.pid) is not running: the file is empty');
    expect(() => parsePidFile('/run/nginx.pid', ' \n')).toThrow(/is not running: the file is empty/);
    expect(() => parsePidFile('/run/nginx.pid', 'token=s3cret\n')).toThrow(
      'nginx (pid file /run/nginx.pid) does not hold a process ID (13 bytes, not one number)',
    );
    expect(parsePidFile('/run/nginx.pid', '4242\n')).toBe(4242);
    const gone = signalError(Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' }), 123, 'pid file /run/nginx.pid');
    expect(gone.message).toBe('process 123 from pid file /run/nginx.pid is gone');
    expect(gone.hint).toMatch(/without removing its PID file/);
    expect(signalError(Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' }), 7, '--pid').hint).toMatch(/--pid-file or --process-name/);
    expect(signalError(Object.assign(new Error('kill EPERM'), { code: 'EPERM' }), 7, '--pid').message).toBe('not allowed to signal process 7 from --pid');
  });

  it('parses /proc/PID/stat with spaces and parentheses in comm', () => {
    expect(parseProcStat('4242 (nginx) S 7 4242 4242 0 -1')).toEqual({ comm: 'nginx', ppid: 7 });
    expect(parseProcStat('99 (a) b) (c) R 1 99 99 0')).toEqual({ comm: 'a) b) (c', ppid: 1 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});
